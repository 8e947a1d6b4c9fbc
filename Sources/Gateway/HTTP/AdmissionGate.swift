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

    /// A slot, or nil when `limit` responses hold one already. The slot is released by
    /// ``AdmissionTicket/release()`` or, at the latest, when the ticket is dropped (a response
    /// whose body never ran because the client went away must not keep its slot).
    func tryEnter() -> AdmissionTicket? {
        let entered = active.withLock { active in
            guard active < limit else { return false }
            active += 1
            return true
        }
        return entered ? AdmissionTicket(gate: self) : nil
    }

    fileprivate func leave() {
        active.withLock { $0 = max(0, $0 - 1) }
    }

    var inUse: Int { active.withLock { $0 } }
}

/// One admitted response's slot; released once, explicitly or when dropped.
final class AdmissionTicket: Sendable {
    private let gate: AdmissionGate
    private let released = Atomic<Bool>(false)

    fileprivate init(gate: AdmissionGate) {
        self.gate = gate
    }

    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        gate.leave()
    }

    deinit { release() }
}
