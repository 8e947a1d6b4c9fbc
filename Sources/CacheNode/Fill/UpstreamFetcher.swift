import Foundation
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import ReplicatorClient

/// Fetches a batch of chunks from the repositories, one `ReadChunks` call per repository tried:
/// this site's first, then others, each asked only for what the previous ones did not deliver.
/// Every chunk is verified against its hash before it is delivered; a repository sending bytes
/// that do not match is logged and the chunk asked of the next one.
struct UpstreamFetcher: Sendable {
    let directory: UpstreamDirectory
    let metrics: CacheMetrics
    let logger: Logger
    /// How long one upstream call may take.
    var timeout: Duration = .seconds(60)

    /// What a batch's calls have achieved so far.
    private struct Progress {
        var remaining: [ChunkDigest: ChunkWant] = [:]
        var mismatched: [ChunkDigest: String] = [:]
        var lastError: RPCError?
        var allNotFound = true
    }

    /// Fetches `batch`; `deliver` is called once per chunk with its verified bytes or the error
    /// that ends its flight.
    func fetch(_ batch: FillBatch, deliver: (ChunkDigest, Result<ByteBuffer, RPCError>) async -> Void) async {
        var progress = Progress()
        for want in batch.wants { progress.remaining[want.digest] = want }
        let sources: [UpstreamSource]
        do {
            sources = try await directory.sources(for: batch.group)
        } catch {
            sources = []
            progress.lastError = RPCError(code: .unavailable, message: "the catalog did not say which repositories to ask: \(error)")
            progress.allNotFound = false
        }
        for source in sources where !progress.remaining.isEmpty {
            switch batch.group {
            case .file:
                await ask(source, group: batch.group, wants: batch.wants, progress: &progress, deliver: deliver)
            case .image(let image):
                // By hash: one unknown hash fails the whole call, so a failed call is retried
                // chunk by chunk; without an image, each image the catalog lists is searched.
                let images = image.isEmpty ? ((try? await directory.images()) ?? []) : [image]
                for image in images where !progress.remaining.isEmpty {
                    let group = FillGroup.image(image)
                    let asked = batch.wants.filter { progress.remaining[$0.digest] != nil }.count
                    let failed = await ask(source, group: group, wants: batch.wants, progress: &progress, deliver: deliver)
                    guard failed?.code == .notFound, asked > 1 else { continue }
                    for want in batch.wants where progress.remaining[want.digest] != nil {
                        await ask(source, group: group, wants: [want], progress: &progress, deliver: deliver)
                    }
                }
            }
        }
        for want in batch.wants where progress.remaining[want.digest] != nil {
            let error: RPCError
            if let node = progress.mismatched[want.digest] {
                error = RPCError(code: .dataLoss, message: "chunk \(want.digest): the bytes from repository \(node) do not match its hash")
            } else if sources.isEmpty {
                error = progress.lastError ?? RPCError(code: .unavailable, message: "no repository is registered to fetch chunk \(want.digest) from")
            } else if progress.allNotFound {
                error = RPCError(
                    code: .notFound,
                    message: "chunk \(want.digest) is held by no repository (asked: \(sources.map(\.node).joined(separator: ", ")))")
            } else {
                error = RPCError(
                    code: .unavailable,
                    message: "chunk \(want.digest) could not be fetched: \(progress.lastError?.message ?? "every repository failed")")
            }
            await deliver(want.digest, .failure(error))
        }
    }

    /// One ReadChunks call for the wants still missing; returns its error, if it failed.
    @discardableResult
    private func ask(
        _ source: UpstreamSource, group: FillGroup, wants allWants: [ChunkWant], progress: inout Progress,
        deliver: (ChunkDigest, Result<ByteBuffer, RPCError>) async -> Void
    ) async -> RPCError? {
        let wants = allWants.filter { progress.remaining[$0.digest] != nil }
        guard !wants.isEmpty, let request = Self.request(for: group, wants: wants) else { return nil }
        metrics.askedUpstream(chunks: wants.count)
        do {
            try await source.client.serverStreaming(ReplicatorMethods.readChunks, request, options: RPCCallOptions(timeout: timeout)) {
                chunks in
                for try await chunk in chunks.withPayloads {
                    guard let digest = Self.expectedDigest(of: chunk.message, in: wants) else {
                        logger.warning("a repository sent a chunk not asked for", metadata: ["source": "\(source.node)"])
                        continue
                    }
                    guard progress.remaining[digest] != nil else { continue }
                    guard ChunkDigest(of: chunk.payload) == digest else {
                        metrics.upstreamMismatch()
                        progress.mismatched[digest] = source.node
                        progress.allNotFound = false
                        logger.error(
                            "bytes from a repository do not match the chunk's hash; not stored",
                            metadata: ["chunk": "\(digest)", "source": "\(source.node)", "site": "\(source.site)"])
                        continue
                    }
                    progress.remaining[digest] = nil
                    progress.mismatched[digest] = nil
                    metrics.upstream(bytes: chunk.payload.readableBytes)
                    await deliver(digest, .success(chunk.payload))
                }
            }
            return nil
        } catch let error as RPCError {
            if error.code != .notFound { progress.allNotFound = false }
            progress.lastError = error
            // Not holding a chunk is normal (other sites, other images); anything else is worth a warning.
            logger.log(
                level: error.code == .notFound ? .debug : .warning,
                "repository did not deliver",
                metadata: [
                    "source": "\(source.node)", "code": "\(error.code)", "error": "\(error.message)", "missing": "\(progress.remaining.count)",
                ])
            return error
        } catch {
            progress.allNotFound = false
            let failure = RPCError(code: .unavailable, message: "\(error)")
            progress.lastError = failure
            logger.warning("repository did not deliver", metadata: ["source": "\(source.node)", "error": "\(error)"])
            return failure
        }
    }

    private static func request(for group: FillGroup, wants: [ChunkWant]) -> Icbd_Replicator_V1_ReadChunksRequest? {
        var request = Icbd_Replicator_V1_ReadChunksRequest()
        switch group {
        case .file(let image, let version, let path):
            request.image = image
            request.version = version
            request.path = path
            request.chunks = wants.compactMap {
                if case .position(_, _, _, let index) = $0.source { return index }
                return nil
            }
        case .image(let image):
            request.image = image
            request.hashes = wants.map { Data($0.digest.bytes) }
        }
        return request
    }

    /// The digest the chunk was asked for under: by its index, or by the hash it names.
    private static func expectedDigest(of chunk: Icbd_Replicator_V1_Chunk, in wants: [ChunkWant]) -> ChunkDigest? {
        for want in wants {
            switch want.source {
            case .position(_, _, _, let index) where index == chunk.index: return want.digest
            case .content where ChunkDigest(bytes: chunk.sha256) == want.digest: return want.digest
            default: continue
            }
        }
        return nil
    }
}
