import Prometheus

/// The Prometheus figures of boots, in the gateway's registry: phase durations, outcomes and
/// failures per site and version, and the workstations waiting per site.
final class BootMetrics: Sendable {
    private struct VersionKey: Hashable, Sendable {
        let site: String
        let image: String
        let version: Int64
        let label: String

        /// Prometheus labels, the last one named `name`.
        func labels(_ name: String) -> [(String, String)] {
            [("site", site), ("image", image), ("version", "\(version)"), (name, label)]
        }
    }

    private let seconds: LabeledMetrics<VersionKey, DurationHistogram>
    private let outcomes: LabeledMetrics<VersionKey, Counter>
    private let failures: LabeledMetrics<VersionKey, Counter>
    private let waiting: LabeledMetrics<String, Gauge>

    init(registry: PrometheusCollectorRegistry) {
        let buckets: [Duration] = [0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600].map { .seconds($0) }
        seconds = LabeledMetrics { key in
            registry.makeDurationHistogram(name: "icbd_boot_seconds", labels: key.labels("phase"), buckets: buckets)
        }
        outcomes = LabeledMetrics { key in registry.makeCounter(name: "icbd_boots_total", labels: key.labels("outcome")) }
        failures = LabeledMetrics { key in registry.makeCounter(name: "icbd_boot_failures_total", labels: key.labels("reason")) }
        waiting = LabeledMetrics { site in registry.makeGauge(name: "icbd_boots_waiting", labels: [("site", site)]) }
    }

    func apply(_ action: BootTracker.Action) {
        switch action {
        case .waitingBegan(let record): waiting[record.site].increment()
        case .waitingEnded(let record): waiting[record.site].decrement()
        case .finished(let record):
            guard let target = record.target else { return }  // it only waited: no version to count against
            func key(_ label: String) -> VersionKey { VersionKey(site: record.site, image: target.image, version: target.version, label: label) }
            for (phase, duration) in record.phases { seconds[key(phase.rawValue)].record(duration) }
            switch record.outcome {
            case .failed(let failure):
                outcomes[key("failed")].increment()
                failures[key(failure.rawValue)].increment()
            case .booted: outcomes[key("booted")].increment()
            case .settled: outcomes[key("settled")].increment()
            case .unsettled: outcomes[key("unsettled")].increment()
            case .waiting, .inProgress, .abandoned: break
            }
        }
    }
}
