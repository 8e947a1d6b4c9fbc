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
    private let admitted: Gauge
    private let admissionLimit: Gauge
    private let memoryBytes: Gauge

    init() {
        let buckets: [Duration] = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000].map { .milliseconds($0) }
        upstreamLatency = [
            .cache: registry.makeDurationHistogram(
                name: "icbd_gateway_upstream_read_seconds", labels: [("kind", "cache")], buckets: buckets),
            .repository: registry.makeDurationHistogram(
                name: "icbd_gateway_upstream_read_seconds", labels: [("kind", "repository")], buckets: buckets),
        ]
        failovers = registry.makeCounter(name: "icbd_gateway_failovers_total")
        rejected = registry.makeCounter(name: "icbd_gateway_admissions_rejected_total")
        bytesSent = registry.makeCounter(name: "icbd_gateway_body_bytes_total")
        memoryHits = registry.makeCounter(name: "icbd_gateway_memory_chunk_reads_total", labels: [("result", "hit")])
        memoryMisses = registry.makeCounter(name: "icbd_gateway_memory_chunk_reads_total", labels: [("result", "miss")])
        admitted = registry.makeGauge(name: "icbd_gateway_upstream_responses_in_flight")
        admissionLimit = registry.makeGauge(name: "icbd_gateway_admission_limit")
        memoryBytes = registry.makeGauge(name: "icbd_gateway_memory_chunk_bytes")
    }

    func request(route: String, status: Int) {
        registry.makeCounter(name: "icbd_gateway_requests_total", labels: [("route", route), ("status", "\(status)")]).increment()
    }

    func upstreamRead(_ upstream: Upstream, duration: Duration) {
        upstreamLatency[upstream.kind]?.record(duration)
        registry.makeCounter(name: "icbd_gateway_upstream_chunks_total", labels: [("node", upstream.name), ("kind", upstream.kind.rawValue)])
            .increment()
    }

    func failover(from upstream: Upstream) {
        failovers.increment()
        registry.makeCounter(name: "icbd_gateway_upstream_errors_total", labels: [("node", upstream.name)]).increment()
    }

    func admissionRejected() { rejected.increment() }
    func sent(bytes: Int) { bytesSent.increment(by: Int64(bytes)) }
    func memoryRead(hit: Bool) { hit ? memoryHits.increment() : memoryMisses.increment() }

    /// Prometheus text exposition.
    func render(admission: AdmissionGate, memory: ChunkMemoryCache) -> [UInt8] {
        admitted.set(to: Double(admission.inUse))
        admissionLimit.set(to: Double(admission.limit))
        memoryBytes.set(to: Double(memory.statistics.bytes))
        return registry.emitToBuffer()
    }
}
