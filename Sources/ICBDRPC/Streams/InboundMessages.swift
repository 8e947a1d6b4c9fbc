import ICBDCore
import NIOCore
import Synchronization

/// The messages one stream received and its consumer has not read yet, with the receive side of
/// flow control: what the peer may still send, and the credit to return as messages are read.
///
/// The buffer is bounded by the protocol, not by trust: a peer sending beyond its window is a
/// protocol error and its connection is closed. On a server, every message also counts against
/// its connection's budget (a `BoundedCount` of bytes, ``RPCServerConfiguration/maximumBufferedRequestBytes``)
/// from its arrival until its consumer takes it.
package final class InboundMessages: Sendable {
    /// How a stream's inbound side ended.
    package enum Ending: Sendable {
        case finished
        case failed(any Error)
    }

    /// What became of a message that arrived.
    package enum Arrival: Equatable, Sendable {
        /// Buffered or handed to the waiting consumer (or dropped: the stream had ended).
        case accepted
        /// It breaks the peer's window: a protocol error.
        case beyondWindow
        /// It does not fit in the connection's budget: nothing was kept.
        case overBudget
    }

    private struct State {
        var buffer: CircularBuffer<ByteBuffer> = []
        /// The size of the messages in `buffer`.
        var bufferedBytes = 0
        var ending: Ending?
        var waiter: CheckedContinuation<ByteBuffer?, any Error>?
        /// Bytes the peer may still send.
        var window = RPCFrame.Limits.initialWindow
        /// Bytes read by the consumer and not yet returned to the peer as credit.
        var unreturned = 0
    }

    private let state = Mutex(State())
    /// Credit is returned once this many bytes were read (a quarter window), or when the peer's
    /// window runs low, so senders of large messages never stall on a prompt consumer.
    private let creditBatch = RPCFrame.Limits.initialWindow / 4
    /// Sends `Credit` for this stream; called outside the lock.
    private let returnCredit: @Sendable (Int) -> Void
    /// What the stream's connection may hold (servers); nil: bounded by flow control alone.
    private let budget: BoundedCount?

    package init(returnCredit: @escaping @Sendable (Int) -> Void, budget: BoundedCount? = nil) {
        self.returnCredit = returnCredit
        self.budget = budget
    }

    /// A message arrived.
    package func append(_ message: ByteBuffer) -> Arrival {
        let size = message.readableBytes
        let (arrival, waiter): (Arrival, CheckedContinuation<ByteBuffer?, any Error>?) = state.withLock { state in
            guard state.ending == nil else { return (.accepted, nil) }
            guard size <= state.window || state.window >= RPCFrame.Limits.initialWindow else { return (.beyondWindow, nil) }
            guard budget?.take(size) ?? true else { return (.overBudget, nil) }
            state.window -= size
            if let waiter = state.waiter {
                state.waiter = nil
                return (.accepted, waiter)
            }
            state.buffer.append(message)
            state.bufferedBytes += size
            return (.accepted, nil)
        }
        if let waiter {
            consumed(size)
            waiter.resume(returning: message)
        }
        return arrival
    }

    /// No more messages will arrive; `ending` says why. After `.finished` buffered messages are
    /// still read; `.failed` drops them, even after `.finished`.
    package func finish(_ ending: Ending) {
        let (waiter, dropped): (CheckedContinuation<ByteBuffer?, any Error>?, Int) = state.withLock { state in
            var dropped = 0
            if case .failed = ending {
                dropped = state.bufferedBytes
                state.buffer.removeAll()
                state.bufferedBytes = 0
            }
            guard state.ending == nil else { return (nil, dropped) }
            state.ending = ending
            defer { state.waiter = nil }
            return (state.waiter, dropped)
        }
        release(dropped)
        switch ending {
        case .finished: waiter?.resume(returning: nil)
        case .failed(let error): waiter?.resume(throwing: error)
        }
    }

    /// The next message, or nil once the peer finished. One consumer at a time. The message
    /// leaves the connection's budget as it is returned; with `keepingItCounted` it stays
    /// counted until the consumer calls ``release(_:)`` with its size.
    package func next(keepingItCounted: Bool = false) async throws -> ByteBuffer? {
        let message = try await nextMessage()
        if let message, !keepingItCounted { release(message.readableBytes) }
        return message
    }

    /// Gives back to the connection's budget `bytes` of messages the consumer has done with.
    package func release(_ bytes: Int) {
        if bytes > 0 { budget?.giveBack(bytes) }
    }

    private func popFirst(_ state: inout State) -> ByteBuffer? {
        guard let message = state.buffer.popFirst() else { return nil }
        state.bufferedBytes -= message.readableBytes
        return message
    }

    private func nextMessage() async throws -> ByteBuffer? {
        enum Immediate { case message(ByteBuffer), ended(Ending), wait }
        let immediate: Immediate = state.withLock { state in
            if let message = popFirst(&state) { return .message(message) }
            if let ending = state.ending { return .ended(ending) }
            return .wait
        }
        switch immediate {
        case .message(let message):
            consumed(message.readableBytes)
            return message
        case .ended(.finished): return nil
        case .ended(.failed(let error)): throw error
        case .wait: break
        }
        // About to wait with nothing buffered: return every consumed byte, or a sender holding a
        // message larger than its remaining window (it may send once the whole window is back)
        // would wait for credit that never comes.
        returnAllCredit()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Outcome { case message(ByteBuffer), ended(Ending), waiting }
                let outcome: Outcome = state.withLock { state in
                    if let message = popFirst(&state) { return .message(message) }
                    if let ending = state.ending { return .ended(ending) }
                    if Task.isCancelled { return .ended(.failed(CancellationError())) }
                    state.waiter = continuation
                    return .waiting
                }
                switch outcome {
                case .message(let message):
                    consumed(message.readableBytes)
                    continuation.resume(returning: message)
                case .ended(.finished): continuation.resume(returning: nil)
                case .ended(.failed(let error)): continuation.resume(throwing: error)
                case .waiting: break
                }
            }
        } onCancel: {
            finish(.failed(CancellationError()))
        }
    }

    /// Returns what the consumer has read to the peer, all of it (`force`) or once a batch is
    /// due: a quarter window read, or the peer's window running low.
    private func returnAllCredit() {
        settleCredit(adding: 0, force: true)
    }

    private func consumed(_ size: Int) {
        settleCredit(adding: size, force: false)
    }

    private func settleCredit(adding size: Int, force: Bool) {
        let credit: Int = state.withLock { state in
            state.unreturned += size
            guard state.ending == nil, state.unreturned > 0,
                force || state.unreturned >= creditBatch || state.window < creditBatch
            else { return 0 }
            defer { state.unreturned = 0 }
            state.window += state.unreturned
            return state.unreturned
        }
        if credit > 0 { returnCredit(credit) }
    }
}
