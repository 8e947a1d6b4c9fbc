import ICBDCore
import ICBDRPC
import Synchronization

/// Whether start-up recovery has cleaned the repository yet. Until it has, writes to the
/// repository (a publish, a receive) are refused: recovery would take their `work` or their new
/// snapshot for the leftovers of an interrupted one.
final class RecoveryGate: Sendable {
    private let done = Atomic<Bool>(false)

    func markDone() { done.store(true, ordering: .releasing) }

    /// Returns once recovery has run (or the task is cancelled).
    func waitUntilDone() async {
        while !done.load(ordering: .acquiring) && !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Throws UNAVAILABLE until recovery has run.
    func check() throws(RPCError) {
        guard done.load(ordering: .acquiring) else {
            throw RPCError(
                code: .unavailable,
                message: "the replicator is still recovering its repository (it needs the catalog for that); try again shortly")
        }
    }
}
