import CFileStatus
import CacheClient
import Foundation
import Glibc
import NIOCore

/// The cache directory on disk (``CacheDirectoryLayout``: a gateway on the same host reads the
/// chunk files too), with blocking calls only (run them on a thread pool). A chunk is written to
/// `tmp/`, fsynced, then renamed into `chunks/`: a file under `chunks/` is always whole, so a
/// crash mid-write leaves only a temporary file, which the next start removes.
struct ChunkFiles: Sendable {
    let layout: CacheDirectoryLayout

    init(directory: String) {
        layout = CacheDirectoryLayout(directory: directory)
    }

    var directory: String { layout.directory }
    var chunksDirectory: String { layout.chunksDirectory }
    var temporaryDirectory: String { layout.temporaryDirectory }

    func path(of digest: ChunkDigest) -> String {
        layout.chunkPath(hex: digest.hex)
    }

    /// Creates the layout and empties `tmp/`.
    func prepare() throws(ChunkFileError) {
        for path in [directory, chunksDirectory, temporaryDirectory] {
            if mkdir(path, 0o755) != 0 && errno != EEXIST {
                throw ChunkFileError(errno: errno, operation: "create directory", path: path)
            }
        }
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporaryDirectory)) ?? [] {
            unlink(temporaryDirectory + "/" + name)
        }
    }

    /// Every chunk file with its size; files whose name is not a digest are removed.
    func scan() throws(ChunkFileError) -> [(ChunkDigest, Int64)] {
        var found: [(ChunkDigest, Int64)] = []
        let prefixes: [String]
        do { prefixes = try FileManager.default.contentsOfDirectory(atPath: chunksDirectory) } catch {
            throw ChunkFileError(errno: EIO, operation: "list", path: chunksDirectory)
        }
        for prefix in prefixes {
            let folder = chunksDirectory + "/" + prefix
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
                var info = stat()
                guard let digest = ChunkDigest(hex: name), name.hasPrefix(prefix), stat(folder + "/" + name, &info) == 0,
                    info.st_mode & S_IFMT == S_IFREG
                else {
                    unlink(folder + "/" + name)
                    continue
                }
                found.append((digest, Int64(info.st_size)))
            }
        }
        return found
    }

    /// The chunk's bytes, or those of `part` (cut at the chunk's end); nil when there is no
    /// such file.
    func read(_ digest: ChunkDigest, part: ChunkPart? = nil) throws(ChunkFileError) -> ByteBuffer? {
        let path = path(of: digest)
        // Not following a link, not waiting on a FIFO: only a regular file is a chunk.
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            if errno == ENOENT { return nil }
            throw ChunkFileError(errno: errno, operation: "open", path: path)
        }
        defer { close(fd) }
        var status = icbd_file_status()
        guard icbd_file_status_of(fd, &status) == 0 else { throw ChunkFileError(errno: errno, operation: "stat", path: path) }
        guard status.is_regular != 0 else { throw ChunkFileError(errno: EINVAL, operation: "read a regular file", path: path) }
        let size = Int(status.size)
        let start = min(part?.offset ?? 0, size)
        let length = part.map { $0.length == 0 ? size - start : min($0.length, size - start) } ?? size
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        var done = 0
        while done < length {
            let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - done) { pointer in
                pread(fd, pointer.baseAddress, length - done, off_t(start + done))
            }
            guard count > 0 else {
                if count < 0 && errno == EINTR { continue }
                throw ChunkFileError(errno: count < 0 ? errno : EIO, operation: "read", path: path)
            }
            done += count
        }
        return buffer
    }

    /// Writes the chunk to a temporary file, fsyncs it and renames it into place.
    func write(_ digest: ChunkDigest, _ bytes: ByteBuffer) throws(ChunkFileError) {
        let folder = chunksDirectory + "/" + digest.hex.prefix(2)
        if mkdir(folder, 0o755) != 0 && errno != EEXIST {
            throw ChunkFileError(errno: errno, operation: "create directory", path: folder)
        }
        let temporary = "\(temporaryDirectory)/\(digest.hex).\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw ChunkFileError(errno: errno, operation: "create", path: temporary) }
        var closed = false
        defer {
            if !closed { close(fd) }
        }
        do throws(ChunkFileError) {
            var done = 0
            let length = bytes.readableBytes
            while done < length {
                let count = bytes.withUnsafeReadableBytes { pointer in
                    Glibc.write(fd, pointer.baseAddress.map { $0 + done }, length - done)
                }
                guard count > 0 else {
                    if count < 0 && errno == EINTR { continue }
                    throw ChunkFileError(errno: count < 0 ? errno : EIO, operation: "write", path: temporary)
                }
                done += count
            }
            guard fsync(fd) == 0 else { throw ChunkFileError(errno: errno, operation: "fsync", path: temporary) }
            closed = true
            guard close(fd) == 0 else { throw ChunkFileError(errno: errno, operation: "close", path: temporary) }
            let target = path(of: digest)
            guard rename(temporary, target) == 0 else { throw ChunkFileError(errno: errno, operation: "rename", path: target) }
        } catch {
            unlink(temporary)
            throw error
        }
    }

    func remove(_ digest: ChunkDigest) {
        unlink(path(of: digest))
    }

    /// Writes and removes a small file: whether the directory takes writes again.
    func probeWritable() -> Bool {
        let probe = "\(temporaryDirectory)/probe.\(UInt64.random(in: 0...UInt64.max))"
        let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { return false }
        let ok = Glibc.write(fd, "x", 1) == 1 && fsync(fd) == 0
        close(fd)
        unlink(probe)
        return ok
    }
}

/// A failed file operation in the cache directory.
struct ChunkFileError: Error, CustomStringConvertible {
    let errno: Int32
    let operation: String
    let path: String

    /// The directory cannot take writes (full, read-only, no permission): serve as a pass-through.
    var meansNoWrites: Bool {
        [ENOSPC, EROFS, EACCES, EPERM, EDQUOT].contains(errno)
    }

    var description: String {
        "\(operation) \(path): \(String(cString: strerror(errno)))"
    }
}
