import Foundation
import Glibc
import ICBDCore
import ICBDRPC
import Logging

/// What a transfer of one version received so far, kept beside the repository
/// (`<root>/.replication/<image>.v<N>.stream`, on the same filesystem) so that a transfer cut at
/// any byte resumes from there instead of starting over. The parent the stream was sent against
/// is kept beside it (`.parent`): a resume must ask for the same stream.
///
/// The spool holds the stream's verified segments as ``SpoolRecord``s: commands, and references
/// to the write data that `btrfs receive` put into the partly received subvolume, not the data
/// itself (which would write every image twice). A cut leaves that subvolume, writable and
/// without a received UUID (never a version); the next attempt moves it aside
/// (`<image>.v<N>.partial`), rebuilds the spooled segments from the records and the data read
/// back from it, feeds them to a fresh `btrfs receive`, and deletes it (``SpoolRebuild``).
struct ReceiveSpool: Sendable {
    let path: String
    let parentPath: String
    /// Where a cut transfer's partly received subvolume waits for the next attempt.
    let partialPath: String

    init(directory: String, image: Name, version: Int64) {
        path = "\(directory)/\(image).v\(version).stream"
        parentPath = "\(directory)/\(image).v\(version).parent"
        partialPath = "\(directory)/\(image).v\(version).partial"
    }

    static func directory(root: String) -> String { root + "/.replication" }

    /// The stream bytes the spool holds and the stream's parent (0: full), or nil when there is
    /// no usable spool.
    func held() -> (length: Int64, parent: Int64)? {
        guard let parent = parent(), let reader = SpoolReader(path: path) else { return nil }
        var length: Int64 = 0
        while let record = reader.next() { length += Int64(record.rawLength) }
        return length > 0 ? (length, parent) : nil
    }

    /// The parent the spooled stream was sent against.
    func parent() -> Int64? {
        guard let text = try? String(contentsOfFile: parentPath, encoding: .utf8) else { return nil }
        return Int64(text.trimmingCharacters(in: .whitespacesAndNewlines))
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
        let writer = try SpoolWriter(path: path, fileLength: 0, streamLength: 0)
        try writer.write(SpoolRecord.magic)
        return writer
    }

    /// Continues a spool whose first `fileLength` bytes hold `streamLength` stream bytes
    /// (anything after them is dropped).
    func resume(fileLength: Int64, streamLength: Int64) throws(ReplicationError) -> SpoolWriter {
        try SpoolWriter(path: path, fileLength: fileLength, streamLength: streamLength)
    }

    /// Moves a writable, not received `v<N>` at `versionPath` (what a cut receive leaves) aside
    /// for the next attempt to read its data back, replacing an older one. Returns whether it
    /// did; false when there is nothing to keep (no spool, or the subvolume is a finished receive).
    @discardableResult
    func keepPartial(from versionPath: String) -> Bool {
        guard Subvolume.exists(at: versionPath), let info = try? Subvolume.info(at: versionPath), !info.isReadOnly,
            info.receivedUUID == nil, parent() != nil, SpoolReader(path: path)?.next() != nil
        else { return false }
        removePartialCopy()
        return rename(versionPath, partialPath) == 0
    }

    /// Deletes the subvolume kept aside by ``keepPartial(from:)``, if any.
    func removePartialCopy() {
        if Subvolume.exists(at: partialPath) { try? Subvolume.delete(at: partialPath) }
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

    /// Removes the spool, and the partial subvolume kept aside for it.
    func discard() {
        try? FileManager.default.removeItem(atPath: path)
        try? FileManager.default.removeItem(atPath: parentPath)
        removePartialCopy()
    }
}

/// Appends the records of verified segments to a spool file.
final class SpoolWriter: @unchecked Sendable {
    private let fd: Int32
    let path: String
    /// Bytes in the file.
    private(set) var fileLength: Int64
    /// Stream bytes the records hold.
    private(set) var length: Int64

    init(path: String, fileLength: Int64, streamLength: Int64) throws(ReplicationError) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ReplicationError(.internal, "cannot open the receive spool \(path): \(String(cString: strerror(errno)))") }
        // Truncated only when it must be: BTRFS marks a file truncated to 0 for a flush on
        // close, which would start writing back the whole spool when the transfer ends.
        guard lseek(fd, 0, SEEK_END) == off_t(fileLength) || ftruncate(fd, off_t(fileLength)) == 0 else {
            let error = errno
            close(fd)
            throw ReplicationError(.internal, "cannot truncate the receive spool \(path): \(String(cString: strerror(error)))")
        }
        self.path = path
        self.fileLength = fileLength
        self.length = streamLength
    }

    deinit { close(fd) }

    /// Appends the record of one verified segment.
    func append(_ record: SpoolRecord) throws(ReplicationError) {
        try write(record.encoded())
        length += Int64(record.rawLength)
    }

    fileprivate func write(_ bytes: [UInt8]) throws(ReplicationError) {
        var failure: Int32 = 0
        bytes.withUnsafeBytes { bytes in
            var done = 0
            while done < bytes.count {
                let written = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(fileLength) + off_t(done))
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
        fileLength += Int64(bytes.count)
    }
}

/// Reads a spool's records in order, up to the first torn or damaged one.
final class SpoolReader {
    private let fd: Int32
    /// The end of the last whole record read (where a resumed spool continues).
    private(set) var validEnd: Int64 = 0
    private var ended = false

    /// Nil when there is no spool of this format at `path`.
    init?(path: String) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        self.fd = fd
        guard Self.read(fd, at: 0, count: SpoolRecord.magic.count) == SpoolRecord.magic else {
            close(fd)
            return nil
        }
        validEnd = Int64(SpoolRecord.magic.count)
    }

    deinit { close(fd) }

    /// The next whole record; nil at the end (or where the file is torn: a crash mid-append).
    func next() -> SpoolRecord? {
        guard !ended else { return nil }
        guard let header = Self.read(fd, at: validEnd, count: 4), case let length = Int(SpoolRecord.le32(header)),
            length <= SpoolRecord.maximumBodyLength, let body = Self.read(fd, at: validEnd + 4, count: length),
            let record = SpoolRecord.decode(body: body)
        else {
            ended = true
            return nil
        }
        validEnd += 4 + Int64(length)
        return record
    }

    /// Exactly `count` bytes at `offset`, or nil.
    private static func read(_ fd: Int32, at offset: Int64, count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        let done = bytes.withUnsafeMutableBytes { readFully(fd, into: $0, at: offset) }
        return done == count ? bytes : nil
    }
}
