import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

/// Follows the catalog (``CatalogFollower``) for the changes that can give a replicator
/// something to pull (versions, placements of other nodes, replicator nodes, policies) and
/// signals a wakeup for each revision that holds one. A watch that cannot resume starts again
/// from a fresh listing after `retryDelay`; the scheduler's periodic re-list covers the gap.
struct CatalogChangeFollower: Sendable {
    let catalog: RPCClient
    /// This replicator's node name: its own placement reports are not news to it.
    let node: String
    let wakeup: ReplicationWakeup
    let retryDelay: Duration
    let logger: Logger

    static let kinds: [EntityKind] = [.version, .placement, .node, .policy]

    var follower: CatalogFollower {
        CatalogFollower(
            catalog: catalog, kinds: Self.kinds, retryDelay: retryDelay, logger: logger,
            list: { [catalog, wakeup] in
                let revision = try await catalog.allPages(CatalogMethods.listNodes, .init()).revision
                // Changes before the watch began are seen by the scan this wakes.
                wakeup.signal()
                return Revision(revision)
            },
            apply: { [self] change in
                if change.events.contains(where: { matters($0.entity) }) { wakeup.signal() }
            })
    }

    /// Whether a change to `entity` can change what this replicator should pull, or from where.
    func matters(_ entity: CatalogEntity) -> Bool {
        switch entity {
        case .version, .policy: true
        case .placement(let placement): placement.node.rawValue != node
        case .node(let other): other.role == .replicator
        default: false
        }
    }
}
