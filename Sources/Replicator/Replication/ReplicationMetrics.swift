import ICBDCore
import Metrics

/// Replication counters (swift-metrics; exported where the process bootstraps a backend, e.g.
/// Prometheus at `--metrics-listen`).
struct ReplicationMetrics: Sendable {
    private let sentRaw = Counter(label: "icbd_replication_sent_raw_bytes_total")
    private let sentWire = Counter(label: "icbd_replication_sent_wire_bytes_total")
    private let receivedRaw = Counter(label: "icbd_replication_received_raw_bytes_total")
    private let receivedWire = Counter(label: "icbd_replication_received_wire_bytes_total")
    private let transfers = Counter(label: "icbd_replication_transfers_total")
    private let failures = Counter(label: "icbd_replication_failures_total")
    /// Versions this repository should hold and does not yet (as of its last scan), and when
    /// the oldest of them was created (Unix seconds; 0: none missing): a version missing at a
    /// site for long is what an operator alerts on, whether its transfers fail or never start.
    private let missing = Gauge(label: "icbd_replication_versions_missing")
    private let oldestMissingCreated = Gauge(label: "icbd_replication_oldest_missing_created_seconds")
    /// Chunks of received versions read back and hashed, and chunks whose entries came from the
    /// parent's manifest because the incremental stream did not touch them.
    private let chunksRead = Counter(label: "icbd_replication_verified_chunks_read_total")
    private let chunksReused = Counter(label: "icbd_replication_verified_chunks_reused_total")

    init() {}

    func sent(raw: Int, wire: Int) {
        sentRaw.increment(by: raw)
        sentWire.increment(by: wire)
    }

    func received(raw: Int, wire: Int) {
        receivedRaw.increment(by: raw)
        receivedWire.increment(by: wire)
    }

    func verified(chunksRead read: Int, reused: Int) {
        chunksRead.increment(by: read)
        chunksReused.increment(by: reused)
    }

    /// What a scan found to pull: the versions' creation times (Unix milliseconds).
    func scanned(missingCreatedMs created: [Int64]) {
        missing.record(created.count)
        oldestMissingCreated.record((created.min() ?? 0) / 1000)
    }

    func transferSucceeded() { transfers.increment() }
    func transferFailed() { failures.increment() }
}
