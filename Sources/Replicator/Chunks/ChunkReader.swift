import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf

/// Serves chunks of ready versions, by position (a file and chunk indexes) or by content (chunk
/// hashes), each read from the read-only snapshot and verified against the version's manifest;
/// a chunk that does not match is reported, never served.
struct ChunkReader: Sendable {
    let repository: ImageRepository
    let manifests: ManifestCache
    let locator: ChunkLocator
    let logger: Logger
    var threadPool: NIOThreadPool = .singleton

    /// The most chunks one call may ask for.
    static let maximumChunksPerCall = 1024

    func serve(_ request: Icbd_Replicator_V1_ReadChunksRequest, to writer: RPCResponseWriter<Icbd_Replicator_V1_Chunk>)
        async throws
    {
        let image: Name
        do {
            image = try Name(request.image)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
        let asked = max(request.chunks.count, request.hashes.count)
        guard asked <= Self.maximumChunksPerCall else {
            throw RPCError(code: .invalidArgument, message: "at most \(Self.maximumChunksPerCall) chunks per call, \(asked) asked")
        }
        if request.hashes.isEmpty {
            try await serveByPosition(request, image: image, to: writer)
        } else {
            try await serveByHash(request, image: image, to: writer)
        }
    }

    private func serveByPosition(
        _ request: Icbd_Replicator_V1_ReadChunksRequest, image: Name, to writer: RPCResponseWriter<Icbd_Replicator_V1_Chunk>
    ) async throws {
        let key = ManifestCache.Key(image: image, version: request.version, path: try Self.path(request.path))
        let file = try VersionFile(key, manifest: try await manifests.manifest(key), in: repository)
        for index in request.chunks {
            guard Int(index) < file.chunkCount else {
                throw RPCError(code: .invalidArgument, message: "'\(key.path)' has \(file.chunkCount) chunks; there is no chunk \(index)")
            }
            guard let chunk = try await file.readVerified(Int(index), threadPool: threadPool, logger: logger) else { continue }
            try await writer.write(.with { $0.index = index; $0.sha256 = Data(chunk.sha256) }, payload: chunk.bytes)
        }
    }

    private func serveByHash(
        _ request: Icbd_Replicator_V1_ReadChunksRequest, image: Name, to writer: RPCResponseWriter<Icbd_Replicator_V1_Chunk>
    ) async throws {
        guard request.chunks.isEmpty else {
            throw RPCError(code: .invalidArgument, message: "ask for chunks by position (path, chunks) or by hash (hashes), not both")
        }
        var wanted: [[UInt8]] = []
        var seen: Set<[UInt8]> = []
        for hash in request.hashes {
            guard hash.count == 32 else {
                throw RPCError(code: .invalidArgument, message: "a chunk hash is 32 bytes (SHA-256); one of \(hash.count) bytes was asked")
            }
            if seen.insert(Array(hash)).inserted { wanted.append(Array(hash)) }
        }
        let path = request.path.isEmpty ? nil : try Self.path(request.path)
        let places = try await locator.locate(seen, image: image, version: request.version, path: path)
        if let missing = wanted.first(where: { places[$0] == nil }) {
            throw RPCError(
                code: .notFound,
                message: "no ready version of image '\(image)' on this repository holds chunk \(missing.hexString)")
        }
        var open: VersionFile?
        for hash in wanted {
            guard let place = places[hash] else { continue }
            if open?.key != place.file {
                open = try VersionFile(place.file, manifest: try await manifests.manifest(place.file), in: repository)
            }
            guard let file = open, let chunk = try await file.readVerified(place.index, threadPool: threadPool, logger: logger)
            else { continue }
            try await writer.write(
                .with {
                    $0.index = UInt32(place.index)
                    $0.path = place.file.path.rawValue
                    $0.sha256 = Data(chunk.sha256)
                }, payload: chunk.bytes)
        }
    }

    private static func path(_ text: String) throws -> VersionFilePath {
        do {
            return try VersionFilePath(text)
        } catch {
            throw RPCError(code: .invalidArgument, message: "\(error)")
        }
    }
}
