import CBtrfsUtil
import Crypto
import Glibc
import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import NIOPosix

/// One file of a ready version, open for chunk reads that are verified against its manifest.
final class VersionFile {
    let key: ManifestCache.Key
    let manifest: ManifestCache.Manifest
    private let fd: Int32

    var chunkCount: Int { manifest.entries.count / ChunkManifest.entrySize }

    /// Opens the file in the version's read-only snapshot; NOT_FOUND when this repository lacks it.
    init(_ key: ManifestCache.Key, manifest: ManifestCache.Manifest, in repository: ImageRepository) throws {
        let file = repository.versionPath(of: key.image, key.version) + "/" + key.path.rawValue
        // O_NONBLOCK: a fifo must not block the open (it is refused just below).
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else {
            throw RPCError(
                code: .notFound, message: "version \(key.version) of image '\(key.image)' has no file '\(key.path)' on this repository")
        }
        var size: Int64 = 0
        var isRegular: Int32 = 0
        guard icbd_fstat(fd, &size, &isRegular) == 0, isRegular != 0 else {
            close(fd)
            throw RPCError(
                code: .dataLoss, message: "'\(key.path)' of version \(key.version) of image '\(key.image)' is not a regular file on this repository")
        }
        self.key = key
        self.manifest = manifest
        self.fd = fd
    }

    deinit { close(fd) }

    /// The manifest's hash of chunk `index`.
    func expectedHash(_ index: Int) -> [UInt8] {
        Array(manifest.entries[index * ChunkManifest.entrySize..<(index + 1) * ChunkManifest.entrySize])
    }

    /// Chunk `index` read from disk and checked against the manifest; nil for an all-zero chunk.
    /// A chunk that does not match is logged loudly and reported DATA_LOSS, never returned.
    func readVerified(_ index: Int, threadPool: NIOThreadPool, logger: Logger) async throws -> (bytes: ByteBuffer, sha256: [UInt8])? {
        let expected = expectedHash(index)
        if expected == ChunkManifest.zeroEntry { return nil }
        let offset = Int64(index) * manifest.chunkSize
        let length = Int(min(manifest.chunkSize, manifest.fileSize - offset))
        let fd = self.fd
        let (chunk, actual) = try await threadPool.runIfActive {
            let chunk = try Self.read(fd: fd, offset: offset, length: length)
            return (chunk, chunk.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) })
        }
        guard actual == expected else {
            logger.error(
                "chunk on disk does not match its manifest; not served",
                metadata: ["image": "\(key.image)", "version": "\(key.version)", "path": "\(key.path)", "chunk": "\(index)"])
            throw RPCError(
                code: .dataLoss,
                message: "chunk \(index) of '\(key.path)' in version \(key.version) of image '\(key.image)' is corrupt on this repository")
        }
        return (chunk, actual)
    }

    private static func read(fd: Int32, offset: Int64, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { pointer in
            readFully(fd, into: UnsafeMutableRawBufferPointer(rebasing: pointer[0..<length]), at: offset)
        }
        guard read == length else { throw RPCError(code: .dataLoss, message: "the file ended before chunk at offset \(offset)") }
        return buffer
    }
}
