import NIOCore
import Synchronization

/// Writes the frames of one connection, from any task, in the order they are submitted.
///
/// Frames go straight to the channel (FIFO through its event loop), so a caller that must keep
/// an order across tasks (stream ids of `Open` frames) submits under its own lock. Writers that
/// produce data wait afterwards until the channel is writable again: per connection, at most
/// the channel's high watermark plus one frame per writing call is buffered.
///
/// Flushes are coalesced: frames submitted while a flush is already queued on the event loop go
/// out with it, so a stream's message and Status, or the responses of several calls answered
/// at once, leave in one TLS record and one `write` instead of one each.
package struct FrameWriter: Sendable {
    private let channel: any Channel
    private let gate: WritabilityGate
    /// Whether a flush is queued on the channel's event loop.
    private let flushQueued: NIOLoopBoundBox<Bool>

    package init(channel: any Channel, gate: WritabilityGate) {
        self.channel = channel
        self.gate = gate
        flushQueued = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: channel.eventLoop)
    }

    /// Runs `task` on the connection's event loop after `delay`, unless cancelled first: a
    /// deadline without a task of its own.
    package func schedule(after delay: Duration, _ task: @escaping @Sendable () -> Void) -> Scheduled<Void> {
        channel.eventLoop.scheduleTask(in: TimeAmount(delay), task)
    }

    /// Submits frames without waiting; for control frames and ordered submission.
    package func submit(_ frames: RPCFrame...) {
        submit(frames)
    }

    package func submit(_ frames: [RPCFrame]) {
        let channel = self.channel
        let flushQueued = self.flushQueued
        channel.eventLoop.execute {
            for frame in frames { channel.write(frame, promise: nil) }
            guard !flushQueued.value else { return }
            flushQueued.value = true
            channel.eventLoop.execute {
                flushQueued.value = false
                channel.flush()
            }
        }
    }

    /// Submits frames, then waits until the channel takes more.
    package func write(_ frames: RPCFrame...) async throws {
        submit(frames)
        try await gate.waitUntilWritable()
    }

    package func write(_ frames: [RPCFrame]) async throws {
        submit(frames)
        try await gate.waitUntilWritable()
    }

    /// Sends one message of `stream` (`tail`: its last bytes, written uncopied) once the
    /// stream's `window` admits it.
    package func send(_ message: ByteBuffer, tail: ByteBuffer? = nil, on stream: UInt32, window: SendWindow) async throws {
        try await window.reserve(message.readableBytes + (tail?.readableBytes ?? 0))
        try await write(RPCFrame(stream: stream, kind: .message(message), messageTail: tail))
    }

    /// Returns consumed bytes of `stream` to its sender as `Credit`.
    package func creditReturner(for stream: UInt32) -> @Sendable (Int) -> Void {
        { [self] bytes in submit(RPCFrame(stream: stream, kind: .credit(UInt32(clamping: bytes)))) }
    }

    /// Waits until the channel takes more, without writing.
    package func waitUntilWritable() async throws {
        try await gate.waitUntilWritable()
    }
}

/// Tracks a channel's writability so tasks can wait for it (NIO's writability events, turned
/// into an async wait).
package final class WritabilityGate: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    package typealias InboundIn = Any

    private struct State {
        var writable = true
        var closed = false
        var waiters: [CheckedContinuation<Void, any Error>] = []
    }

    private let state = Mutex(State())

    package init() {}

    package func waitUntilWritable() async throws {
        let ready: Bool = try state.withLock { state in
            if state.closed { throw RPCError(code: .unavailable, message: "the connection closed") }
            return state.writable
        }
        if ready { return }
        try await withCheckedThrowingContinuation { continuation in
            let now: Result<Void, any Error>? = state.withLock { state in
                if state.closed { return .failure(RPCError(code: .unavailable, message: "the connection closed")) }
                if state.writable { return .success(()) }
                state.waiters.append(continuation)
                return nil
            }
            if let now { continuation.resume(with: now) }
        }
    }

    package func channelWritabilityChanged(context: ChannelHandlerContext) {
        let writable = context.channel.isWritable
        let waiters: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.writable = writable
            guard writable else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
        context.fireChannelWritabilityChanged()
    }

    package func channelInactive(context: ChannelHandlerContext) {
        let waiters: [CheckedContinuation<Void, any Error>] = state.withLock { state in
            state.closed = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(throwing: RPCError(code: .unavailable, message: "the connection closed")) }
        context.fireChannelInactive()
    }
}
