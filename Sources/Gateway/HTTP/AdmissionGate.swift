import ICBDCore
import Synchronization

/// Boot-storm admission: at most `limit` responses read from upstreams at once; beyond that a
/// new one is refused (503 + Retry-After, which iPXE retries) instead of every boot slowing to a
/// timeout. Responses served from memory or needing no chunk bypass the gate.
final class AdmissionGate: Sendable {
    private let active: BoundedCount

    init(limit: Int) {
        active = BoundedCount(limit: limit)
    }

    var limit: Int { active.limit }

    /// A slot, or nil when `limit` responses hold one already. The slot is released by
    /// ``AdmissionTicket/release()`` or, at the latest, when the ticket is dropped (a response
    /// whose body never ran because the client went away must not keep its slot).
    func tryEnter() -> AdmissionTicket? {
        active.take() ? AdmissionTicket(gate: self) : nil
    }

    fileprivate func leave() {
        active.giveBack()
    }

    var inUse: Int { active.taken }
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
