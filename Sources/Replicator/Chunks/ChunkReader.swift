import CBtrfsUtil
import Crypto
import Foundation
import Glibc
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf

/// Serves chunks of a version's file, each read from the read-only snapshot and verified
/// against the version's manifest; a chunk that does not match is reported, never served.
struct ChunkReader: Sendable {
    let repository: ImageRepository
    let manifests: ManifestCache
    let logger: Logger
    var threadPool: NIOThreadPool = .singleton

    /// The most chunks one call may ask for.
    static let maximumChunksPerCall = 1024

    func serve(_ request: Icbd_Replicator_V1_ReadChunksRequest, to writer: RPCResponseWriter<Icbd_Replicator_V1_Chunk>)
        async throws
    {
        let image: Name
        let path: VersionFilePath
        do {
            image = try Name(request.image)
            path = try VersionFilePath(request.path)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        guard request.chunks.count <= Self.maximumChunksPerCall else {
            throw RPCError(code: .invalidArgument, message: "at most \(Self.maximumChunksPerCall) chunks per call, \(request.chunks.count) asked")
        }
        let manifest = try await manifests.manifest(.init(image: image, version: request.version, path: path))
        let count = manifest.entries.count / ChunkManifest.entrySize
        let file = repository.versionPath(of: image, request.version) + "/" + path.rawValue
        let fd = open(file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else {
            throw RPCError(code: .notFound, message: "version \(request.version) of image '\(image)' has no file '\(path)' on this repository")
        }
        defer { close(fd) }
        for index in request.chunks {
            guard Int(index) < count else {
                throw RPCError(code: .invalidArgument, message: "'\(path)' has \(count) chunks; there is no chunk \(index)")
            }
            let expected = Array(manifest.entries[Int(index) * 32..<Int(index) * 32 + 32])
            if expected == ChunkManifest.zeroEntry { continue }
            let offset = Int64(index) * manifest.chunkSize
            let length = Int(min(manifest.chunkSize, manifest.fileSize - offset))
            let (chunk, actual) = try await threadPool.runIfActive {
                let chunk = try Self.read(fd: fd, offset: offset, length: length)
                return (chunk, chunk.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) })
            }
            guard actual == expected else {
                logger.error(
                    "chunk on disk does not match its manifest; not served",
                    metadata: ["image": "\(image)", "version": "\(request.version)", "path": "\(path)", "chunk": "\(index)"])
                throw RPCError(
                    code: .dataLoss,
                    message: "chunk \(index) of '\(path)' in version \(request.version) of image '\(image)' is corrupt on this repository")
            }
            try await writer.write(.with { $0.index = index; $0.sha256 = Data(actual) }, payload: chunk)
        }
    }

    private static func read(fd: Int32, offset: Int64, length: Int) throws -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: length)
        var done = 0
        while done < length {
            let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: length - done) { pointer in
                max(0, pread(fd, pointer.baseAddress, length - done, off_t(offset) + off_t(done)))
            }
            guard read > 0 else { throw RPCError(code: .dataLoss, message: "the file ended before chunk at offset \(offset)") }
            done += read
        }
        return buffer
    }
}

extension Icbd_Replicator_V1_Chunk: RPCPayloadCarrying {
    /// `data`: chunk bytes travel uncopied.
    public static var payloadField: Int { 3 }
}
