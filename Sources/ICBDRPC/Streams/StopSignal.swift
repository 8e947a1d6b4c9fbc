import Synchronization

/// Why a call was stopped from outside its handler.
package enum StopReason: Sendable, Equatable {
    /// The client sent `Cancel`.
    case cancelled
    /// The connection closed under the call.
    case connectionClosed
    /// The call's deadline passed.
    case deadlineExceeded
}

/// A one-shot event carrying a reason (why a call stops, that a server drained); the first
/// reason given wins and every waiter, present or future, sees it.
package final class OneShotSignal<Reason: Sendable>: Sendable {
    private struct State {
        var reason: Reason?
        var waiters: [UInt64: CheckedContinuation<Reason?, Never>] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    package init() {}

    package func fire(_ reason: Reason) {
        let waiters = state.withLock { state -> [CheckedContinuation<Reason?, Never>] in
            guard state.reason == nil else { return [] }
            state.reason = reason
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume(returning: reason) }
    }

    /// Waits for the signal; nil when the waiting task is cancelled first.
    package func wait() async -> Reason? {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now: Reason?? = state.withLock { state in
                    if let reason = state.reason { return .some(reason) }
                    if Task.isCancelled { return .some(nil) }
                    state.waiters[id] = continuation
                    return .none
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let waiter = state.withLock { $0.waiters.removeValue(forKey: id) }
            waiter?.resume(returning: nil)
        }
    }
}

/// Stops a call from outside its handler.
package typealias StopSignal = OneShotSignal<StopReason>
