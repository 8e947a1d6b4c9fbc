import CoreMetrics
import Synchronization

/// What the cache counts: exported through swift-metrics (Prometheus when the binary bootstraps
/// it) and kept as plain numbers for heartbeats, health and tests.
public final class CacheMetrics: Sendable {
    /// Chunks served from disk.
    public let hits = Atomic<Int64>(0)
    /// Chunks that had to come from upstream (or were in flight already).
    public let misses = Atomic<Int64>(0)
    public let bytesServed = Atomic<Int64>(0)
    /// Verified bytes received from repositories.
    public let upstreamBytes = Atomic<Int64>(0)
    /// Chunks asked of repositories (one per chunk per upstream call).
    public let upstreamChunks = Atomic<Int64>(0)
    public let evictions = Atomic<Int64>(0)
    /// Misses that joined a fetch in flight instead of starting one.
    public let singleFlightJoins = Atomic<Int64>(0)
    /// Entries on disk whose bytes no longer matched their name, dropped.
    public let corruptEntries = Atomic<Int64>(0)
    /// Chunks from a repository whose bytes did not match their hash.
    public let upstreamMismatches = Atomic<Int64>(0)
    /// Chunks a gateway on this host read from the store's files itself (counted as hits too).
    public let sameHostReads = Atomic<Int64>(0)

    private let hitCounter: Counter
    private let missCounter: Counter
    private let servedCounter: Counter
    private let upstreamCounter: Counter
    private let evictionCounter: Counter
    private let joinCounter: Counter
    private let corruptCounter: Counter
    private let mismatchCounter: Counter
    private let sameHostCounter: Counter
    private let fillTimer: Timer
    private let verifyTimer: Timer

    public init(node: String) {
        let dimensions = [("node", node)]
        hitCounter = Counter(label: "icbd_cache_hits_total", dimensions: dimensions)
        missCounter = Counter(label: "icbd_cache_misses_total", dimensions: dimensions)
        servedCounter = Counter(label: "icbd_cache_served_bytes_total", dimensions: dimensions)
        upstreamCounter = Counter(label: "icbd_cache_upstream_bytes_total", dimensions: dimensions)
        evictionCounter = Counter(label: "icbd_cache_evictions_total", dimensions: dimensions)
        joinCounter = Counter(label: "icbd_cache_single_flight_joins_total", dimensions: dimensions)
        corruptCounter = Counter(label: "icbd_cache_corrupt_entries_total", dimensions: dimensions)
        mismatchCounter = Counter(label: "icbd_cache_upstream_mismatches_total", dimensions: dimensions)
        sameHostCounter = Counter(label: "icbd_cache_same_host_reads_total", dimensions: dimensions)
        fillTimer = Timer(label: "icbd_cache_fill_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
        verifyTimer = Timer(label: "icbd_cache_verify_seconds", dimensions: dimensions, preferredDisplayUnit: .seconds)
    }

    func hit(bytes: Int) {
        hits.add(1, ordering: .relaxed)
        hitCounter.increment()
    }

    /// A gateway on this host read a held chunk from its file (a hit the node did not serve).
    func sameHostRead() {
        sameHostReads.add(1, ordering: .relaxed)
        sameHostCounter.increment()
        hit(bytes: 0)
    }

    func miss() {
        misses.add(1, ordering: .relaxed)
        missCounter.increment()
    }

    func served(bytes: Int) {
        bytesServed.add(Int64(bytes), ordering: .relaxed)
        servedCounter.increment(by: bytes)
    }

    func upstream(bytes: Int) {
        upstreamBytes.add(Int64(bytes), ordering: .relaxed)
        upstreamCounter.increment(by: bytes)
    }

    func askedUpstream(chunks: Int) {
        upstreamChunks.add(Int64(chunks), ordering: .relaxed)
    }

    func evicted(_ count: Int) {
        guard count > 0 else { return }
        evictions.add(Int64(count), ordering: .relaxed)
        evictionCounter.increment(by: count)
    }

    func joined() {
        singleFlightJoins.add(1, ordering: .relaxed)
        joinCounter.increment()
    }

    func corruptEntry() {
        corruptEntries.add(1, ordering: .relaxed)
        corruptCounter.increment()
    }

    func upstreamMismatch() {
        upstreamMismatches.add(1, ordering: .relaxed)
        mismatchCounter.increment()
    }

    func filled(after duration: Duration) {
        fillTimer.recordNanoseconds(duration.nanoseconds)
    }

    func verified(after duration: Duration) {
        verifyTimer.recordNanoseconds(duration.nanoseconds)
    }

    /// hits / (hits + misses); 0 before the first read.
    public var hitRatio: Double {
        let hits = hits.load(ordering: .relaxed)
        let total = hits + misses.load(ordering: .relaxed)
        return total == 0 ? 0 : Double(hits) / Double(total)
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
