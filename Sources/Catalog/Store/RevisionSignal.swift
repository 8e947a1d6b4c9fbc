import ICBDCore
import Synchronization

/// The latest committed revision, and the tasks waiting for it to pass a point (watchers).
/// A commit wakes every waiter at once; nothing is queued per waiter.
final class RevisionSignal: Sendable {
    private struct State {
        var revision: Revision
        var waiters: [Int: (after: Revision, continuation: CheckedContinuation<Revision, any Error>)] = [:]
        var nextID = 0
    }

    private let state: Mutex<State>

    init(_ revision: Revision) {
        state = Mutex(State(revision: revision))
    }

    var current: Revision { state.withLock { $0.revision } }

    /// Called after each commit, in commit order.
    func advance(to revision: Revision) {
        let woken: [CheckedContinuation<Revision, any Error>] = state.withLock { state in
            guard revision > state.revision else { return [] }
            state.revision = revision
            let ready = state.waiters.filter { $0.value.after < revision }
            for id in ready.keys { state.waiters[id] = nil }
            return ready.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume(returning: revision) }
    }

    /// Returns the revision once it is above `revision`.
    func wait(after revision: Revision) async throws -> Revision {
        let id: Int = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let resume: Result<Revision, any Error>? = state.withLock { state in
                    if Task.isCancelled { return .failure(CancellationError()) }
                    if state.revision > revision { return .success(state.revision) }
                    state.waiters[id] = (revision, continuation)
                    return nil
                }
                if let resume { continuation.resume(with: resume) }
            }
        } onCancel: {
            let continuation = state.withLock { $0.waiters.removeValue(forKey: id)?.continuation }
            continuation?.resume(throwing: CancellationError())
        }
    }
}
