import NIOCore
import Synchronization

/// The bytes one side of one stream may still send before the peer grants more `Credit`
/// (docs/wire.md "4. Flow control"). Writers wait here; `grant` wakes them in order.
///
/// A message larger than what is available may go once the whole initial window is available,
/// so one large message never deadlocks.
package final class SendWindow: Sendable {
    private struct Waiter {
        let id: UInt64
        let size: Int
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var available: Int
        var waiters: CircularBuffer<Waiter> = []
        var nextWaiterID: UInt64 = 0
        var failure: (any Error)?

        func admits(_ size: Int) -> Bool {
            size <= available || available >= RPCFrame.Limits.initialWindow
        }
    }

    private let state: Mutex<State>

    package init(initial: Int = RPCFrame.Limits.initialWindow) {
        state = Mutex(State(available: initial))
    }

    /// Waits until `size` bytes may be sent, then takes them from the window.
    package func reserve(_ size: Int) async throws {
        let id: UInt64? = try state.withLock { state in
            if let failure = state.failure { throw failure }
            if state.waiters.isEmpty && state.admits(size) {
                state.available -= size
                return nil
            }
            state.nextWaiterID += 1
            return state.nextWaiterID
        }
        guard let id else { return }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let resumeNow: Result<Void, any Error>? = state.withLock { state in
                    if let failure = state.failure { return .failure(failure) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    state.waiters.append(Waiter(id: id, size: size, continuation: continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(with: resumeNow) }
                // Credit may have arrived between the first check and the append.
                self.grant(0)
            }
        } onCancel: {
            let waiter: Waiter? = state.withLock { state in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index)
            }
            waiter?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Takes `size` bytes without waiting: for a call's first message, which the fresh window
    /// always admits.
    package func takeFirst(_ size: Int) {
        state.withLock { $0.available -= size }
    }

    /// The peer granted `bytes` more.
    package func grant(_ bytes: Int) {
        let ready: [Waiter] = state.withLock { state in
            state.available += bytes
            var ready: [Waiter] = []
            while let first = state.waiters.first, state.admits(first.size) {
                state.available -= first.size
                ready.append(state.waiters.removeFirst())
            }
            return ready
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    /// The stream is over: current and future writers fail with `error`.
    package func fail(_ error: any Error) {
        let waiters: CircularBuffer<Waiter> = state.withLock { state in
            if state.failure == nil { state.failure = error }
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters { waiter.continuation.resume(throwing: error) }
    }
}
