import CBtrfsUtil
import Crypto
import Foundation
import Glibc
import ICBDCore
import NIOCore
import NIOPosix

/// Builds the chunk manifest of a file on disk (docs/architecture.md "Data model (catalog)", ``ChunkManifest``).
///
/// Chunks are read and hashed on `parallelism` threads of NIO's blocking-I/O pool, each with one
/// reusable chunk buffer, so memory stays at `parallelism × chunkSize` whatever the file's size.
/// Holes of a sparse file are found with `SEEK_DATA` and never read: they are zero chunks.
public struct ManifestBuilder: Sendable {
    /// A finished manifest.
    public struct Manifest: Sendable, Equatable {
        public let fileSize: Int64
        public let chunkSize: Int64
        /// 32 bytes per chunk: its SHA-256, or all zeros for an all-zero chunk.
        public let entries: [UInt8]
        /// The manifest's digest: the file's ETag.
        public let digest: [UInt8]
        public let zeroChunks: Int

        public var chunkCount: Int { entries.count / ChunkManifest.entrySize }
    }

    public var chunkSize: Int64 = ChunkManifest.defaultChunkSize
    public var parallelism: Int = max(1, System.coreCount)
    public var threadPool: NIOThreadPool = .singleton

    /// Entries known without reading: chunk `i` with `keep[i]` true takes entry `i` of
    /// `entries` (a verified manifest of the same bytes, e.g. the parent version's).
    public struct Reuse: Sendable {
        public let entries: [UInt8]
        public let keep: [Bool]

        public init(entries: [UInt8], keep: [Bool]) {
            self.entries = entries
            self.keep = keep
        }

        func keeps(_ index: Int64) -> Bool {
            index < Int64(keep.count) && keep[Int(index)] && (Int(index) + 1) * ChunkManifest.entrySize <= entries.count
        }
    }

    public init() {}

    /// The manifest of the file at `path`; chunks that `reuse` keeps are not read.
    public func build(path: String, reusing reuse: Reuse? = nil) async throws -> Manifest {
        // O_NONBLOCK: a fifo must not block the open (it is refused just below).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { throw ManifestError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var size: Int64 = 0
        var isRegular: Int32 = 0
        guard icbd_fstat(fd, &size, &isRegular) == 0 else {
            throw ManifestError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard isRegular != 0 else { throw ManifestError("\(path) is not a regular file") }
        let fileSize = size
        let count = ChunkManifest.chunkCount(fileSize: fileSize, chunkSize: chunkSize)
        guard count <= ChunkManifest.maximumChunkCount else {
            throw ManifestError("\(path) has \(count) chunks, more than the \(ChunkManifest.maximumChunkCount) a manifest may hold")
        }
        var entries = [UInt8](repeating: 0, count: Int(count) * ChunkManifest.entrySize)
        var zeroChunks = 0
        var toRead: [Int64] = []
        for index in 0..<count {
            guard let reuse, reuse.keeps(index) else {
                toRead.append(index)
                continue
            }
            let start = Int(index) * ChunkManifest.entrySize
            let entry = reuse.entries[start..<start + ChunkManifest.entrySize]
            entries.replaceSubrange(start..<start + ChunkManifest.entrySize, with: entry)
            if entry.elementsEqual(ChunkManifest.zeroEntry) { zeroChunks += 1 }
        }
        let workers = max(1, min(parallelism, toRead.count))
        let chunkSize = self.chunkSize
        let chunkList = toRead
        let parts = try await withThrowingTaskGroup(of: WorkerResult.self) { group in
            for worker in 0..<workers {
                group.addTask {
                    try await threadPool.runIfActive {
                        try Self.hash(
                            fd: fd, fileSize: fileSize, chunkSize: chunkSize,
                            chunks: stride(from: worker, to: chunkList.count, by: workers).map { chunkList[$0] })
                    }
                }
            }
            return try await group.reduce(into: [WorkerResult]()) { $0.append($1) }
        }
        for part in parts {
            zeroChunks += part.zeroChunks
            for (index, digest) in part.digests {
                let start = Int(index) * ChunkManifest.entrySize
                entries.replaceSubrange(start..<start + ChunkManifest.entrySize, with: digest)
            }
        }
        return Manifest(
            fileSize: fileSize, chunkSize: chunkSize, entries: entries,
            digest: ChunkManifest.digest(fileSize: fileSize, chunkSize: chunkSize, entries: entries),
            zeroChunks: zeroChunks)
    }

    private struct WorkerResult: Sendable {
        var digests: [(Int64, [UInt8])] = []
        var zeroChunks = 0
    }

    /// Hashes the given chunks with one reusable buffer (runs on a blocking-I/O thread).
    private static func hash(fd: Int32, fileSize: Int64, chunkSize: Int64, chunks: [Int64]) throws -> WorkerResult {
        var result = WorkerResult()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(chunkSize), alignment: 4096)
        defer { buffer.deallocate() }
        for index in chunks {
            let offset = index * chunkSize
            let length = Int(min(chunkSize, fileSize - offset))
            if isHole(fd: fd, offset: offset, length: length) {
                result.zeroChunks += 1
                continue
            }
            var done = 0
            while done < length {
                let read = pread(fd, buffer.baseAddress! + done, length - done, off_t(offset) + off_t(done))
                if read < 0 && errno == EINTR { continue }
                guard read > 0 else {
                    throw ManifestError("cannot read chunk \(index) at offset \(offset + Int64(done)): \(read == 0 ? "the file shrank" : String(cString: strerror(errno)))")
                }
                done += read
            }
            let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
            if ZeroDetector.isZero(chunk) {
                result.zeroChunks += 1
            } else {
                result.digests.append((index, Array(SHA256.hash(data: chunk))))
            }
        }
        return result
    }

    /// Whether `offset..<offset+length` lies in a hole (no data), by `SEEK_DATA`.
    private static func isHole(fd: Int32, offset: Int64, length: Int) -> Bool {
        let data = lseek(fd, off_t(offset), 3)  // SEEK_DATA (not exported by Glibc's module)
        if data < 0 { return errno == ENXIO }  // no data after offset at all
        return Int64(data) >= offset + Int64(length)
    }
}

/// Finds all-zero chunks, a word at a time.
enum ZeroDetector {
    static func isZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let words = bytes.count / 8
        var index = 0
        while index < words {
            if bytes.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self) != 0 { return false }
            index += 1
        }
        for byte in bytes[(words * 8)...] where byte != 0 { return false }
        return true
    }
}

/// A file whose manifest cannot be built.
public struct ManifestError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
