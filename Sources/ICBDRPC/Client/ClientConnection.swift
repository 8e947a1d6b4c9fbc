import ICBDCore
import ICBDProto
import Logging
import NIOCore
import Synchronization

/// One open connection of a client: opens streams in id order and routes what the server sends
/// to them, checked by the ``ClientConnectionStateMachine``.
final class ClientConnection: Sendable {
    private struct State {
        var machine = ClientConnectionStateMachine()
        var streams: [UInt32: ClientStream] = [:]
        var pings: [UInt64: CheckedContinuation<Void, any Error>] = [:]
        var closed: RPCError?
    }

    let channel: any Channel
    private let writer: FrameWriter
    private let logger: Logger
    private let state = Mutex(State())

    init(channel: any Channel, writer: FrameWriter, logger: Logger) {
        self.channel = channel
        self.writer = writer
        self.logger = logger
    }

    var isClosed: Bool { state.withLock { $0.closed != nil } }

    /// Opens a call and submits its `Open` and first messages. Stream ids are taken and `Open`
    /// frames submitted under one lock, so they reach the wire in increasing order.
    func open(method: String, options: RPCCallOptions, messages: [ByteBuffer], end: Bool) throws -> ClientStream {
        var open = Icbd_Rpc_V1_Open()
        open.method = method
        open.metadata = options.metadata
        if let timeout = options.timeout {
            open.timeoutMs = UInt32(clamping: max(1, timeout.wholeMilliseconds))
        }
        return try state.withLock { state in
            if let closed = state.closed { throw closed }
            guard let id = state.machine.openStream() else {
                throw RPCError(code: .unavailable, message: "the connection has used all stream ids; retry on a new one")
            }
            let stream = ClientStream(id: id, method: method, requestsEnded: end, writer: writer) { [weak self] id in
                self?.state.withLock { state in
                    state.machine.abandon(stream: id)
                    state.streams[id] = nil
                }
            }
            state.streams[id] = stream
            var frames = [RPCFrame(stream: id, kind: .open(open))]
            for message in messages {
                stream.sendWindow.takeFirst(message.readableBytes)
                frames.append(RPCFrame(stream: id, kind: .message(message)))
            }
            if end {
                frames.append(RPCFrame(stream: id, kind: .end))
            }
            writer.submit(frames)
            return stream
        }
    }

    /// Reads and routes frames until the connection closes; then fails the calls still open.
    func run(_ inbound: NIOAsyncChannelInboundStream<RPCFrame>) async {
        var reason = "the server closed the connection"
        do {
            for try await frame in inbound {
                if let error = handle(frame) {
                    reason = error
                    logger.warning("protocol error, closing connection", metadata: ["reason": "\(error)"])
                    channel.close(promise: nil)
                    break
                }
            }
        } catch {
            // In TLS 1.3 a server refuses a client certificate after the client's handshake is done.
            reason = "\(error)".contains("ALERT")
                ? "the server ended the connection with a TLS alert; it refuses this client's certificate when it is not issued by the deployment CA or not valid now (\(error))"
                : "the connection failed: \(error)"
        }
        close(RPCError(code: .unavailable, message: reason))
    }

    /// Fails every open call and pending ping with `error`.
    func close(_ error: RPCError) {
        let (streams, pings) = state.withLock { state in
            if state.closed == nil { state.closed = error }
            defer {
                state.streams = [:]
                state.pings = [:]
            }
            return (Array(state.streams.values), Array(state.pings.values))
        }
        for stream in streams { stream.failed(error) }
        for ping in pings { ping.resume(throwing: error) }
        channel.close(promise: nil)
    }

    /// Executes what a frame means; returns a protocol error's reason.
    private func handle(_ frame: RPCFrame) -> String? {
        let action = state.withLock { $0.machine.received(frame) }
        switch action {
        case .deliver(let id, let bytes):
            if let stream = state.withLock({ $0.streams[id] }), stream.responses.append(bytes) == .beyondWindow {
                return "stream \(id) sent beyond its flow-control window"
            }
        case .finish(let id, let status):
            state.withLock { $0.streams.removeValue(forKey: id) }?.finished(status)
        case .credit(let id, let bytes):
            state.withLock { $0.streams[id] }?.sendWindow.grant(Int(bytes))
        case .pong(let nonce):
            writer.submit(RPCFrame(stream: 0, kind: .ping(nonce: nonce, ack: true)))
        case .pingAnswered(let nonce):
            state.withLock { $0.pings.removeValue(forKey: nonce) }?.resume()
        case .ignore:
            break
        case .protocolError(let reason):
            return reason
        }
        return nil
    }

    /// Sends a Ping and waits for its answer; returns the round-trip time.
    func ping() async throws -> Duration {
        let nonce = UInt64.random(in: 1...UInt64.max)
        let start = ContinuousClock.now
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let closed: RPCError? = state.withLock { state in
                if let closed = state.closed { return closed }
                state.pings[nonce] = continuation
                return nil
            }
            if let closed {
                continuation.resume(throwing: closed)
            } else {
                writer.submit(RPCFrame(stream: 0, kind: .ping(nonce: nonce, ack: false)))
            }
        }
        return ContinuousClock.now - start
    }
}
