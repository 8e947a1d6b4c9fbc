import ICBDCore
import Prometheus
import Synchronization

/// The gateway's Prometheus figures, in its own registry (served at `/metrics`).
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let upstreamLatency: [Upstream.Kind: DurationHistogram]
    private let failovers: Counter
    private let rejected: Counter
    private let bytesSent: Counter
    private let memoryHits: Counter
    private let memoryMisses: Counter
    private let sameHostReads: [SameHostRead: Counter]
    private let admitted: Gauge
    private let admissionLimit: Gauge
    private let memoryBytes: Gauge
    /// Chunks each upstream node served to this gateway and reads it failed (status page).
    private let perNode = Mutex<[String: (served: Int, failed: Int)]>([:])
    // Labelled counters are made once per label set: the registry validates names and labels
    // on every make, a cost paid per request otherwise.
    private let requests: LabeledMetrics<RequestKey, Counter>
    private let upstreamChunks: LabeledMetrics<Upstream, Counter>
    private let upstreamErrors: LabeledMetrics<String, Counter>
    private let corruptChunks: LabeledMetrics<String, Counter>
    private let slowReadersClosed: Counter
    private let immediateResponses: Counter
    /// Boots by site and version (docs/gateway.md "Boots").
    let boots: BootMetrics

    /// What a read of the local cache node's file found (``SameHostChunks``).
    enum SameHostRead: String, CaseIterable {
        /// The bytes, verified.
        case hit
        /// No file for the chunk.
        case absent
        /// A file that is not the chunk.
        case refused
    }

    private struct RequestKey: Hashable {
        let route: String
        let status: Int
    }

    init() {
        let buckets: [Duration] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000].map { .milliseconds($0) }
        upstreamLatency = [
            .cache: registry.makeDurationHistogram(
                name: "icbd_gateway_upstream_read_seconds", labels: [("kind", "cache")], buckets: buckets),
            .repository: registry.makeDurationHistogram(
                name: "icbd_gateway_upstream_read_seconds", labels: [("kind", "repository")], buckets: buckets),
        ]
        failovers = registry.makeCounter(name: "icbd_gateway_failovers_total")
        slowReadersClosed = registry.makeCounter(name: "icbd_gateway_slow_readers_closed_total")
        immediateResponses = registry.makeCounter(name: "icbd_gateway_immediate_responses_total")
        boots = BootMetrics(registry: registry)
        rejected = registry.makeCounter(name: "icbd_gateway_admissions_rejected_total")
        bytesSent = registry.makeCounter(name: "icbd_gateway_body_bytes_total")
        memoryHits = registry.makeCounter(name: "icbd_gateway_memory_chunk_reads_total", labels: [("result", "hit")])
        memoryMisses = registry.makeCounter(name: "icbd_gateway_memory_chunk_reads_total", labels: [("result", "miss")])
        sameHostReads = Dictionary(
            uniqueKeysWithValues: SameHostRead.allCases.map { [registry] result in
                (result, registry.makeCounter(name: "icbd_gateway_same_host_chunk_reads_total", labels: [("result", result.rawValue)]))
            })
        admitted = registry.makeGauge(name: "icbd_gateway_upstream_responses_in_flight")
        admissionLimit = registry.makeGauge(name: "icbd_gateway_admission_limit")
        memoryBytes = registry.makeGauge(name: "icbd_gateway_memory_chunk_bytes")
        requests = LabeledMetrics { [registry] key in
            registry.makeCounter(name: "icbd_gateway_requests_total", labels: [("route", key.route), ("status", "\(key.status)")])
        }
        upstreamChunks = LabeledMetrics { [registry] upstream in
            registry.makeCounter(name: "icbd_gateway_upstream_chunks_total", labels: [("node", upstream.name), ("kind", upstream.kind.rawValue)])
        }
        upstreamErrors = LabeledMetrics { [registry] node in
            registry.makeCounter(name: "icbd_gateway_upstream_errors_total", labels: [("node", node)])
        }
        corruptChunks = LabeledMetrics { [registry] node in
            registry.makeCounter(name: "icbd_gateway_upstream_corrupt_chunks_total", labels: [("node", node)])
        }
    }

    func request(route: String, status: Int) {
        requests[RequestKey(route: route, status: status)].increment()
    }

    func upstreamRead(_ upstream: Upstream, duration: Duration) {
        upstreamLatency[upstream.kind]?.record(duration)
        perNode.withLock { $0[upstream.name, default: (0, 0)].served += 1 }
        upstreamChunks[upstream].increment()
    }

    func failover(from upstream: Upstream) {
        failovers.increment()
        perNode.withLock { $0[upstream.name, default: (0, 0)].failed += 1 }
        upstreamErrors[upstream.name].increment()
    }

    /// `upstream` sent bytes that are not the chunk (wrong hash or length): counted on top of the failover.
    func corruptChunk(from upstream: Upstream) {
        corruptChunks[upstream.name].increment()
    }

    /// A connection closed because its client took response bytes slower than the minimum rate.
    func slowReaderClosed() { slowReadersClosed.increment() }

    /// Chunks served by and reads failed at `node`, as seen by this gateway.
    func reads(of node: String) -> (served: Int, failed: Int) {
        perNode.withLock { $0[node] ?? (0, 0) }
    }

    /// A file response answered on the event loop that read the request (``ImmediateReadHandler``).
    func immediateResponse() { immediateResponses.increment() }

    func admissionRejected() { rejected.increment() }
    func sent(bytes: Int) { bytesSent.increment(by: Int64(bytes)) }
    func memoryRead(hit: Bool, chunks: Int = 1) {
        (hit ? memoryHits : memoryMisses).increment(by: Int64(chunks))
    }

    func sameHostRead(_ result: SameHostRead) {
        sameHostReads[result]?.increment()
    }

    /// Prometheus text exposition.
    func render(admission: AdmissionGate, memory: ChunkMemoryCache) -> [UInt8] {
        admitted.set(to: Double(admission.inUse))
        admissionLimit.set(to: Double(admission.limit))
        memoryBytes.set(to: Double(memory.statistics.bytes))
        return registry.emitToBuffer()
    }
}

/// The counters (gauges, histograms) of one metric, one per label set, made on first use and kept.
final class LabeledMetrics<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
    private let metrics = Mutex<[Key: Metric]>([:])
    private let make: @Sendable (Key) -> Metric

    init(make: @escaping @Sendable (Key) -> Metric) {
        self.make = make
    }

    subscript(key: Key) -> Metric {
        metrics.withLock { metrics in
            if let metric = metrics[key] { return metric }
            let metric = make(key)
            metrics[key] = metric
            return metric
        }
    }
}
