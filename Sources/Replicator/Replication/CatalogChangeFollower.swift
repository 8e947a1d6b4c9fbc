import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

/// Follows the catalog's Watch for the changes that can give a replicator something to pull
/// (versions, placements of other nodes, replicator nodes, policies) and signals a wakeup for
/// each revision that holds one. A watch that ends (compacted log, catalog gone for longer than
/// ``CatalogWatch`` resumes) starts again from a fresh listing after `retryDelay`; the
/// scheduler's periodic re-list covers the gap.
struct CatalogChangeFollower: Sendable {
    let catalog: RPCClient
    /// This replicator's node name: its own placement reports are not news to it.
    let node: String
    let wakeup: ReplicationWakeup
    let retryDelay: Duration
    let logger: Logger

    static let kinds: [Icbd_Catalog_V1_EntityKind] = [.version, .placement, .node, .policy]

    /// Runs until cancelled.
    func run() async {
        while !Task.isCancelled {
            do {
                let revision = try await catalog.allPages(CatalogMethods.listNodes, .init()).revision
                // Changes before the watch began are seen by the scan this wakes.
                wakeup.signal()
                try await CatalogWatch.follow(catalog, from: revision, kinds: Self.kinds, logger: logger) { response in
                    if response.events.contains(where: matters) { wakeup.signal() }
                    return !Task.isCancelled
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("catalog watch ended; re-listing periodically until it is back", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: retryDelay)
        }
    }

    /// Whether an event can change what this replicator should pull, or from where.
    func matters(_ event: Icbd_Catalog_V1_WatchEvent) -> Bool {
        guard let entity = event.entity else { return false }
        return switch entity {
        case .version, .policy: true
        case .placement(let placement): placement.node != node
        case .node(let other): other.role == .replicator
        default: false
        }
    }
}
