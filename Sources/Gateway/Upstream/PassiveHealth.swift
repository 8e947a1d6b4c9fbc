import Synchronization

/// Nodes that failed a read recently, ejected from first choice for `ejection` (passive
/// health, on top of the catalog's heartbeats). Bounded by the number of nodes.
final class PassiveHealth: Sendable {
    private let ejectedUntil = Mutex<[String: ContinuousClock.Instant]>([:])
    let ejection: Duration

    init(ejection: Duration) {
        self.ejection = ejection
    }

    func eject(_ node: String) {
        let until = ContinuousClock.now + ejection
        ejectedUntil.withLock { $0[node] = until }
    }

    func readmit(_ node: String) {
        _ = ejectedUntil.withLock { $0.removeValue(forKey: node) }
    }

    func isEjected(_ node: String) -> Bool {
        let now = ContinuousClock.now
        return ejectedUntil.withLock { ejected in
            guard let until = ejected[node] else { return false }
            if until <= now {
                ejected[node] = nil
                return false
            }
            return true
        }
    }

    /// Nodes ejected now.
    var ejected: Set<String> {
        let now = ContinuousClock.now
        return ejectedUntil.withLock { Set($0.filter { $0.value > now }.keys) }
    }
}
