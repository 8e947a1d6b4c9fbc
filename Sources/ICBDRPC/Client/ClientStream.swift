import ICBDProto
import NIOCore
import Synchronization

/// One call as the client sees it: the responses that arrived, the window for requests, and
/// whether the call is over (Status received, or abandoned with Cancel).
final class ClientStream: Sendable {
    let id: UInt32
    let method: String
    let responses: InboundMessages
    let sendWindow = SendWindow()
    private let writer: FrameWriter
    /// `failure`: why the call ended, when it did not end with the server's OK (what a later
    /// `send` reports, rather than "finished").
    private let state: Mutex<(over: Bool, requestsEnded: Bool, failure: RPCError?)>
    /// Tells the connection to ignore this stream's later frames.
    private let onAbandon: @Sendable (UInt32) -> Void

    /// `requestsEnded`: the call's End goes out with its Open (unary and server-streaming calls).
    init(
        id: UInt32, method: String, requestsEnded: Bool, writer: FrameWriter,
        onAbandon: @escaping @Sendable (UInt32) -> Void
    ) {
        self.id = id
        self.state = Mutex((over: false, requestsEnded: requestsEnded, failure: nil))
        self.method = method
        self.writer = writer
        self.onAbandon = onAbandon
        self.responses = InboundMessages(returnCredit: writer.creditReturner(for: id))
    }

    /// Sends one request message, waiting for window.
    func send(_ message: ByteBuffer, tail: ByteBuffer? = nil) async throws {
        let refusal: RPCError? = state.withLock { state in
            if let failure = state.failure { return failure }
            guard state.over || state.requestsEnded else { return nil }
            return RPCError(code: .failedPrecondition, message: "\(method): the call's requests are finished")
        }
        if let refusal { throw refusal }
        try await writer.send(message, tail: tail, on: id, window: sendWindow)
    }

    /// Half-closes: no more requests.
    func endRequests() {
        let send = state.withLock { state in
            defer { state.requestsEnded = true }
            return !state.over && !state.requestsEnded
        }
        if send { writer.submit(RPCFrame(stream: id, kind: .end)) }
    }

    /// The server's Status arrived.
    func finished(_ status: Icbd_Rpc_V1_Status) {
        state.withLock { state in
            state.over = true
            if status.code != 0 { state.failure = RPCError(status: status) }
        }
        sendWindow.fail(RPCError(code: .failedPrecondition, message: "\(method): the call is over"))
        if status.code == 0 {
            responses.finish(.finished)
        } else {
            responses.finish(.failed(RPCError(status: status)))
        }
    }

    /// Cancels the call with `error` after `delay` unless it is over by then; cancel the
    /// returned task when it is.
    func cancel(after delay: Duration, _ error: RPCError) -> Scheduled<Void> {
        writer.schedule(after: delay) { [self] in cancel(error) }
    }

    /// The connection failed under the call.
    func failed(_ error: RPCError) {
        state.withLock { state in
            state.over = true
            state.failure = state.failure ?? error
        }
        sendWindow.fail(error)
        responses.finish(.failed(error))
    }

    /// Abandons the call unless it is over: sends Cancel, and the caller sees `error`.
    func cancel(_ error: RPCError? = nil) {
        let error = error ?? RPCError(code: .cancelled, message: "\(method): the call was cancelled")
        let send = state.withLock { state in
            defer { state.over = true }
            guard !state.over else { return false }
            state.failure = error
            return true
        }
        guard send else { return }
        onAbandon(id)
        writer.submit(RPCFrame(stream: id, kind: .cancel))
        sendWindow.fail(error)
        responses.finish(.failed(error))
    }
}

extension RPCError {
    init(status: Icbd_Rpc_V1_Status) {
        self.init(code: Code(rawValue: status.code), message: status.message, details: status.details)
    }
}
