import Synchronization

/// Sources whose stream was refused lately (it broke the rules of a send stream or failed its
/// digest): for ``period`` after that they are tried after every other source, and still tried
/// when no other can serve.
final class SuspectSources: Sendable {
    let period: Duration
    private let until = Mutex<[String: ContinuousClock.Instant]>([:])

    init(period: Duration) {
        self.period = period
    }

    /// Marks the source named `name` as suspect from `now` on.
    func suspect(_ name: String, at now: ContinuousClock.Instant = .now) {
        until.withLock { $0[name] = now + period }
    }

    /// `sources` in their order, the suspect ones last.
    func ordered<Source>(_ sources: [Source], name: (Source) -> String, at now: ContinuousClock.Instant = .now) -> [Source] {
        let suspects = until.withLock { until in
            until = until.filter { $0.value > now }
            return Set(until.keys)
        }
        return sources.filter { !suspects.contains(name($0)) } + sources.filter { suspects.contains(name($0)) }
    }
}
