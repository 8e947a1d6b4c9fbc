import Synchronization

/// Boot-storm admission: at most `limit` responses read from upstreams at once; beyond that a
/// new one is refused (503 + Retry-After, which iPXE retries) instead of every boot slowing to a
/// timeout. Responses served from memory or needing no chunk bypass the gate.
final class AdmissionGate: Sendable {
    let limit: Int
    private let active = Mutex(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// A slot, or nil when `limit` responses hold one already. Release it with ``leave()``.
    func tryEnter() -> Bool {
        active.withLock { active in
            guard active < limit else { return false }
            active += 1
            return true
        }
    }

    func leave() {
        active.withLock { $0 = max(0, $0 - 1) }
    }

    var inUse: Int { active.withLock { $0 } }
}
