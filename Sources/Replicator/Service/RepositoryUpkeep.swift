import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle
import SwiftProtobuf

/// Keeps the repository consistent with the catalog: at start, removes what an interrupted
/// publish or receive left (then opens the ``RecoveryGate``), and applies retention every
/// `retentionInterval`, looking every `retryInterval` (also the retry of a catalog that is
/// down). A `Service`: it stops at graceful shutdown.
struct RepositoryUpkeep: Service {
    let repository: ImageRepository
    let catalog: RPCClient
    let node: String
    let recovery: RecoveryGate
    let retentionInterval: Duration
    let retryInterval: Duration
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            var recovered = false
            var nextRetention = ContinuousClock.now
            while !Task.isCancelled {
                do {
                    if !recovered {
                        try await recover()
                        recovered = true
                    }
                    if ContinuousClock.now >= nextRetention {
                        try await RetentionPass(repository: repository, catalog: catalog, node: node, logger: logger).run()
                        nextRetention = ContinuousClock.now + retentionInterval
                    }
                } catch {
                    if Task.isCancelled { return }
                    logger.warning("catalog unreachable", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: retryInterval)
            }
        }
    }

    /// Removes every `v<N>` the catalog does not know as ready (and writable ones), and any `work`.
    private func recover() async throws {
        var ready: [Name: Set<Int64>] = [:]
        for image in try repository.versions().keys {
            do {
                let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
                ready[image] = Set(answer.versions.filter { $0.state == .ready }.map(\.number))
            } catch let error as RPCError where error.code == .notFound {
                ready[image] = []
            }
        }
        let spools = ReceiveSpool.directory(root: repository.root)
        let salvage = { (image: Name, version: Int64, path: String) in
            ReceiveSpool(directory: spools, image: image, version: version).keepPartial(from: path)
        }
        for path in try repository.recover(ready: ready, salvage: salvage) {
            logger.warning("removed what an interrupted publish or receive left", metadata: ["path": "\(path)"])
        }
        recovery.markDone()
    }
}
