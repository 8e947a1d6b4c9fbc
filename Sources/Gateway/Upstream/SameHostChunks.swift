import CFileStatus
import CacheClient
import Crypto
import Foundation
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// The same-host path: chunk files read straight from the directory of the cache node running on
/// this host (`icbd gateway --local-cache DIR`), with `pread` from the page cache: no TLS, no RPC,
/// no copy through the node. docs/gateway.md "The same-host path".
///
/// The directory is the node's, and the node is as untrusted as any other: a file is served only
/// as the chunk its bytes hash to. The first read of a chunk's file hashes it whole; the file's
/// identity (device, inode, size, change time) is then remembered (``VerifiedFiles``), and later
/// reads of the same, unchanged file read only the bytes they need. A file that is not a regular
/// file of the chunk's length, or whose bytes are not the chunk, is refused (``Outcome/wrong``) and
/// the read goes to the nodes over mutual TLS. A file removed while it is read (evicted) is read
/// to its end through the open descriptor: its bytes do not change.
final class SameHostChunks: Sendable {
    /// What a read found.
    enum Outcome: Sendable {
        /// Exactly the bytes asked for, of a file verified to hold the chunk.
        case bytes(ByteBuffer)
        /// The node holds no file for the chunk (yet).
        case absent
        /// The file is not the chunk (or could not be read): what is wrong with it.
        case wrong(String)
    }

    let layout: CacheDirectoryLayout
    private let verified: VerifiedFiles
    private let threadPool: NIOThreadPool
    /// The owner as last read from the directory, and when: read again after ``ownerRefresh``
    /// (the node may start after the gateway, or be replaced by another).
    private let owner = Mutex<(node: CacheNodeIdentity?, readAt: ContinuousClock.Instant?)>((nil, nil))
    static let ownerRefresh: Duration = .seconds(10)

    init(directory: String, verified: VerifiedFiles, threadPool: NIOThreadPool = .singleton) {
        layout = CacheDirectoryLayout(directory: directory)
        self.verified = verified
        self.threadPool = threadPool
    }

    /// The name of the node that owns the directory, as it says (nil before it first started).
    var nodeName: String? {
        let now = ContinuousClock.now
        let cached = owner.withLock { owner -> CacheNodeIdentity?? in
            guard let readAt = owner.readAt, now - readAt < Self.ownerRefresh else { return .none }
            return .some(owner.node)
        }
        if let cached { return cached?.name }
        let node = CacheNodeIdentity.read(from: layout)
        owner.withLock { $0 = (node, now) }
        return node?.name
    }

    /// Bytes `part` of the chunk `hash` of `length` bytes, from the node's file of it.
    func read(_ hash: [UInt8], length: Int, part: Range<Int>) async -> Outcome {
        let path = layout.chunkPath(sha256: hash)
        let verified = verified
        do {
            return try await threadPool.runIfActive { Self.read(path, hash: hash, length: length, part: part, verified: verified) }
        } catch {
            return .wrong("\(error)")
        }
    }

    /// Bytes `part` of the chunk `hash` of `length` bytes when the node's file of it is the very
    /// file verified before and every byte asked for is in the page cache: read without waiting
    /// for the disk (`preadv2` with `RWF_NOWAIT`), so the event loop may answer with them. Nil in
    /// every other case, which ``read(_:length:part:)`` then handles (and explains).
    func readResident(_ hash: [UInt8], length: Int, part: Range<Int>) -> ByteBuffer? {
        guard verified.remembers(hash) else { return nil }
        let fd = Self.openChunkFile(layout.chunkPath(sha256: hash))
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let before = Self.identity(fd), before.isRegular, before.file.size == Int64(length),
            verified.isVerified(hash, file: before.file)
        else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: part.count)
        let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: part.count) { pointer in
            max(0, icbd_read_resident(fd, pointer.baseAddress, part.count, off_t(part.lowerBound)))
        }
        // Changed while it was read: the long way hashes it again.
        guard count == part.count, Self.identity(fd)?.file == before.file else { return nil }
        return buffer
    }

    /// The blocking read: open without following a link or waiting on a FIFO, check what the file
    /// is, hash it unless this very file was verified, read the part.
    private static func read(_ path: String, hash: [UInt8], length: Int, part: Range<Int>, verified: VerifiedFiles) -> Outcome {
        let fd = openChunkFile(path)
        guard fd >= 0 else {
            return errno == ENOENT ? .absent : .wrong("cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard let before = identity(fd) else { return .wrong("cannot stat \(path): \(String(cString: strerror(errno)))") }
        guard before.isRegular else { return .wrong("\(path) is not a regular file") }
        guard before.file.size == Int64(length) else {
            return .wrong("\(path) has \(before.file.size) bytes; the chunk has \(length)")
        }
        if verified.isVerified(hash, file: before.file) {
            guard let bytes = pread(fd, part) else { return .wrong("cannot read \(path): \(String(cString: strerror(errno)))") }
            // Changed while it was read: hash it all (below) rather than trust these bytes.
            if identity(fd)?.file == before.file { return .bytes(bytes) }
        }
        guard let whole = pread(fd, 0..<length) else { return .wrong("cannot read \(path): \(String(cString: strerror(errno)))") }
        let digest = whole.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard digest == hash else {
            verified.forget(hash)
            return .wrong("\(path) does not hash to the chunk's SHA-256")
        }
        guard let after = identity(fd), after.file == before.file else {
            verified.forget(hash)
            return .wrong("\(path) changed while it was verified")
        }
        verified.record(hash, file: after.file, wallClock: Date().timeIntervalSince1970)
        guard let bytes = whole.getSlice(at: whole.readerIndex + part.lowerBound, length: part.count) else {
            return .wrong("the chunk of \(length) bytes has no bytes \(part)")
        }
        return .bytes(bytes)
    }

    /// Opens a chunk file of the node's directory read-only, without following a link and
    /// without waiting on a FIFO (the node may have planted either); -1 with errno set.
    private static func openChunkFile(_ path: String) -> Int32 {
        open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)
    }

    private static func identity(_ fd: Int32) -> (file: VerifiedFiles.FileIdentity, isRegular: Bool)? {
        var status = icbd_file_status()
        guard icbd_file_status_of(fd, &status) == 0 else { return nil }
        return (VerifiedFiles.FileIdentity(status), status.is_regular != 0)
    }

    /// Exactly the bytes `range` of the file; nil on an error or a short file.
    private static func pread(_ fd: Int32, _ range: Range<Int>) -> ByteBuffer? {
        var buffer = ByteBufferAllocator().buffer(capacity: range.count)
        var done = 0
        while done < range.count {
            var failure: Int32 = 0
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: range.count - done) { pointer in
                let result = Glibc.pread(fd, pointer.baseAddress, range.count - done, off_t(range.lowerBound + done))
                if result < 0 { failure = errno }
                return max(0, result)
            }
            if failure == EINTR { continue }
            guard failure == 0, count > 0 else { return nil }
            done += count
        }
        return buffer
    }
}
