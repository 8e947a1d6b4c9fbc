import Foundation
import ICBDCore
import Logging

/// The catalog's background work: marks nodes down when their heartbeats stop, and trims the
/// change log to its retention.
struct CatalogMaintenance: Sendable {
    let store: any CatalogStore
    let sweepInterval: Duration
    let changeLogRetention: Int
    let now: @Sendable () -> Date
    let logger: Logger
    /// A restarted catalog counts its start as every node's heartbeat: nodes get a full TTL
    /// to reach it again before they are marked down.
    let graceStart: Date

    init(
        store: any CatalogStore, sweepInterval: Duration, changeLogRetention: Int, now: @escaping @Sendable () -> Date, logger: Logger
    ) {
        self.store = store
        self.sweepInterval = sweepInterval
        self.changeLogRetention = changeLogRetention
        self.now = now
        self.logger = logger
        self.graceStart = now()
    }

    /// Sweeps every interval until cancelled; compacts the log about once a minute.
    func run() async {
        let sweepsPerCompaction = max(1, Int(Duration.seconds(60) / sweepInterval))
        var sweeps = 0
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: sweepInterval)
            } catch {
                return
            }
            do {
                try await sweepExpiredNodes()
            } catch is CancellationError {
                return
            } catch {
                logger.warning("heartbeat sweep failed", metadata: ["error": "\(error)"])
            }
            sweeps += 1
            if sweeps % sweepsPerCompaction == 0 {
                do {
                    let compacted = try await store.compactChanges(retaining: changeLogRetention)
                    logger.debug("change log compacted", metadata: ["after": "\(compacted)"])
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("change log compaction failed", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    @discardableResult
    func sweepExpiredNodes() async throws -> [NodeRecord] {
        let expired = try await store.markExpiredNodesDown(at: now(), graceStart: graceStart)
        for node in expired.value {
            logger.warning(
                "node down: no heartbeat within its TTL",
                metadata: [
                    "node": "\(node.name)", "role": "\(node.role)", "site": "\(node.site)",
                    "ttl_ms": "\(node.heartbeatTTLMilliseconds)", "revision": "\(expired.revision)",
                ])
        }
        return expired.value
    }
}
