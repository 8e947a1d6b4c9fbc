import ICBDCore
import ICBDProto
import ReplicatorClient
import ICBDRPC
import Logging
import NIOCore

/// The replicator's RPC methods.
struct ReplicatorRPCService: RPCService {
    let repository: ImageRepository
    let catalog: RPCClient
    let manifests: ManifestCache
    let node: String
    let recovery: RecoveryGate
    let logger: Logger

    func register(into router: inout RPCRouter) {
        let reader = ChunkReader(
            repository: repository, manifests: manifests,
            locator: ChunkLocator(repository: repository, catalog: catalog, manifests: manifests), logger: logger)
        router.serverStreaming(ReplicatorMethods.readChunks) { request, writer, context in
            // One line per call: what a cache's single-flight is checked against.
            logger.debug(
                "read chunks",
                metadata: [
                    "caller": "\(context.peer.name)", "image": "\(request.image)", "version": "\(request.version)",
                    "chunks": "\(request.chunks.count + request.hashes.count)",
                    "indexes": "\(request.chunks.prefix(64).map(String.init).joined(separator: ","))",
                ])
            try await reader.serve(request, to: writer)
        }
        router.clientStreaming(ReplicatorMethods.publish) { requests, _ in
            try recovery.check()
            var messages = requests.withPayloads.makeAsyncIterator()
            guard let first = try await messages.next(), first.message.hasStart else {
                throw RPCError(code: .invalidArgument, message: "the first message of a publish must carry `start`")
            }
            guard first.payload.readableBytes == 0 else {
                throw RPCError(code: .invalidArgument, message: "the first message of a publish carries `start` only, no data")
            }
            let plan = try PublishPlan(first.message.start)
            let published = try await Publisher(repository: repository, catalog: catalog, node: node, logger: logger)
                .publish(plan, data: RemainingMessages(iterator: messages))
            // A new version may push an old one past what the site keeps.
            do {
                try await RetentionPass(repository: repository, catalog: catalog, node: node, logger: logger).run()
            } catch {
                logger.warning("retention after publish failed", metadata: ["error": "\(error)"])
            }
            return published
        }
    }
}

/// The rest of a stream whose first message was read already.
struct RemainingMessages<Iterator: AsyncIteratorProtocol>: AsyncSequence {
    typealias Element = Iterator.Element
    let iterator: Iterator

    func makeAsyncIterator() -> Iterator { iterator }
}
