import Crypto
import Foundation
import Glibc
import ICBDCore
import NIOCore
import ICBDRPC
import Logging

/// The bytes of one version's send stream received so far, kept in a file beside the
/// repository (`<root>/.replication/<image>.v<N>.stream`, on the same filesystem) so that a
/// transfer cut at any byte resumes from there instead of starting over. The parent the stream
/// was sent against is kept beside it (`.parent`): a resume must ask for the same stream.
///
/// The spool only ever holds bytes whose segment SHA-256 verified, in stream order.
struct ReceiveSpool: Sendable {
    let path: String
    let parentPath: String

    init(directory: String, image: Name, version: Int64) {
        path = "\(directory)/\(image).v\(version).stream"
        parentPath = "\(directory)/\(image).v\(version).parent"
    }

    static func directory(root: String) -> String { root + "/.replication" }

    /// The bytes held and the stream's parent (0: full), or nil when there is no usable spool.
    func held() -> (length: Int64, parent: Int64)? {
        guard let text = try? String(contentsOfFile: parentPath, encoding: .utf8),
            let parent = Int64(text.trimmingCharacters(in: .whitespacesAndNewlines)),
            let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber, size.int64Value > 0
        else { return nil }
        return (size.int64Value, parent)
    }

    /// Starts a new spool for a stream sent against `parent`.
    func begin(parent: Int64) throws(ReplicationError) -> SpoolWriter {
        discard()
        do {
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try "\(parent)\n".write(toFile: parentPath, atomically: true, encoding: .utf8)
        } catch {
            throw ReplicationError(.internal, "cannot create the receive spool \(path): \(error)")
        }
        return try SpoolWriter(path: path, truncateTo: 0)
    }

    /// Continues a spool at `length` (anything after it is dropped).
    func resume(at length: Int64) throws(ReplicationError) -> SpoolWriter {
        try SpoolWriter(path: path, truncateTo: length)
    }

    /// A spool is removed only once its version was reported present *and* committed to disk
    /// (see ``ReplicationScheduler``). A held, received version whose spool is still there at
    /// start may therefore have lost data that was still in the page cache when the machine
    /// went down, behind a subvolume that looks whole (read-only, with its received UUID): it
    /// is deleted, with its spool, and received again. Returns the versions deleted.
    @discardableResult
    static func dropUndurable(root: String, held: [Name: [Int64: Subvolume.Info]], versionPath: (Name, Int64) -> String, logger: Logger)
        -> [(image: Name, version: Int64)]
    {
        let directory = directory(root: root)
        guard let names = try? Set(FileManager.default.contentsOfDirectory(atPath: directory)), !names.isEmpty else { return [] }
        var dropped: [(image: Name, version: Int64)] = []
        for (image, versions) in held {
            for (version, info) in versions where info.isReadOnly && info.receivedUUID != nil {
                let spool = ReceiveSpool(directory: directory, image: image, version: version)
                guard names.contains((spool.path as NSString).lastPathComponent) else { continue }
                do {
                    try Subvolume.delete(at: versionPath(image, version))
                    spool.discard()
                    dropped.append((image, version))
                    logger.warning(
                        "received again: a version reported present may not have reached the disk before the replicator stopped",
                        metadata: ["image": "\(image)", "version": "\(version)"])
                } catch {
                    logger.error(
                        "cannot delete a version that may not have reached the disk",
                        metadata: ["image": "\(image)", "version": "\(version)", "error": "\(error)"])
                }
            }
        }
        return dropped
    }

    /// Removes the spool.
    func discard() {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: parentPath)
    }
}

/// Appends verified segments to a spool file.
final class SpoolWriter: @unchecked Sendable {
    private let fd: Int32
    let path: String
    private(set) var length: Int64

    init(path: String, truncateTo length: Int64) throws(ReplicationError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ReplicationError(.internal, "cannot open the receive spool \(path): \(String(cString: strerror(errno)))") }
        // Truncated only when it must be: BTRFS marks a file truncated to 0 for a flush on
        // close, which would start writing back the whole spool (hundreds of MiB, ~0.2 s of
        // CPU for 640 MiB here) when the transfer ends.
        guard lseek(fd, 0, SEEK_END) == off_t(length) || ftruncate(fd, off_t(length)) == 0 else {
            let error = errno
            close(fd)
            throw ReplicationError(.internal, "cannot truncate the receive spool \(path): \(String(cString: strerror(error)))")
        }
        self.path = path
        self.length = length
    }

    deinit { close(fd) }

    func append(_ buffer: ByteBuffer) throws(ReplicationError) {
        var failure: Int32 = 0
        buffer.withUnsafeReadableBytes { bytes in
            var done = 0
            while done < bytes.count {
                let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(length) + off_t(done))
                if written < 0 && errno == EINTR { continue }
                guard written > 0 else {
                    failure = errno
                    return
                }
                done += written
            }
        }
        guard failure == 0 else {
            if failure == ENOSPC {
                throw ReplicationError(.resourceExhausted, "the repository's filesystem is full (spooling the stream at byte \(length))")
            }
            throw ReplicationError(.internal, "cannot write the receive spool \(path): \(String(cString: strerror(failure)))")
        }
        length += Int64(buffer.readableBytes)
    }

    /// Reads the spool's bytes `[offset, offset + count)`.
    func read(at offset: Int64, count: Int) throws(ReplicationError) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: count)
        var failure: Int32 = 0
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { pointer in
            var done = 0
            while done < count {
                let read = pread(fd, pointer.baseAddress! + done, count - done, off_t(offset) + off_t(done))
                if read < 0 && errno == EINTR { continue }
                if read < 0 { failure = errno }
                guard read > 0 else { break }
                done += read
            }
            return done
        }
        guard failure == 0, buffer.readableBytes == count else {
            throw ReplicationError(.internal, "cannot read the receive spool \(path) at \(offset)")
        }
        return buffer
    }
}
