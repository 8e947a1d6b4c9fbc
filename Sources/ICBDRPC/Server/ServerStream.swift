import ICBDCore
import ICBDProto
import NIOCore
import Synchronization

/// One call as the server sees it: the request messages that arrived, the window for responses,
/// and the one `Status` that ends it.
package final class ServerStream: Sendable {
    let id: UInt32
    let context: RPCCallContext
    let requests: InboundMessages
    let sendWindow = SendWindow()
    let stopSignal = StopSignal()
    private let writer: FrameWriter
    private let statusSent = Atomic<Bool>(false)
    /// Tells the connection the stream is over, so its later frames are ignored.
    private let onClosed: @Sendable (UInt32) -> Void
    /// The method as metrics name it (`unknown` for methods the router does not serve).
    private let metricsMethod: String
    private let opened = ContinuousClock.now

    init(
        id: UInt32, context: RPCCallContext, metricsMethod: String, writer: FrameWriter, budget: BoundedCount,
        onClosed: @escaping @Sendable (UInt32) -> Void
    ) {
        self.id = id
        self.context = context
        self.metricsMethod = metricsMethod
        self.writer = writer
        self.onClosed = onClosed
        self.requests = InboundMessages(returnCredit: writer.creditReturner(for: id), budget: budget)
    }

    /// Sends one response message, waiting for window.
    func send(_ message: ByteBuffer, tail: ByteBuffer? = nil) async throws {
        guard !statusSent.load(ordering: .relaxed) else { throw CancellationError() }
        try await writer.send(message, tail: tail, on: id, window: sendWindow)
    }

    /// Stops the call at its deadline, if it has one, by a timer on the connection's event loop;
    /// cancel the returned timer when the call is over.
    func stopAtDeadline() -> Scheduled<Void>? {
        guard let deadline = context.deadline else { return nil }
        return writer.schedule(after: deadline - .now) { [stopSignal] in stopSignal.fire(.deadlineExceeded) }
    }

    /// The single request of a unary or server-streaming call. It counts against the
    /// connection's budget until the client's End, which may never come.
    func singleRequest() async throws -> ByteBuffer {
        guard let request = try await requests.next(keepingItCounted: true) else {
            throw RPCError(code: .invalidArgument, message: "\(context.method) needs one request message, the call sent none")
        }
        defer { requests.release(request.readableBytes) }
        guard try await requests.next() == nil else {
            throw RPCError(code: .invalidArgument, message: "\(context.method) takes one request message, the call sent more")
        }
        return request
    }

    /// Ends the call with `error` (nil = OK), after `response`, the single response of a unary or
    /// client-streaming call, in the same write. Only the first call sends anything.
    func finish(_ error: RPCError?, response: ByteBuffer? = nil) async {
        guard statusSent.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        sendWindow.fail(CancellationError())
        requests.finish(.failed(CancellationError()))
        onClosed(id)
        RPCServerMetrics.callEnded(method: metricsMethod, code: error?.code ?? .ok, after: ContinuousClock.now - opened)
        var status = Icbd_Rpc_V1_Status()
        if let error {
            status.code = error.code.rawValue
            status.message = error.message
            status.details = error.details
        }
        var frames: [RPCFrame] = []
        if let response, error == nil {
            // The call's only response: the fresh window always admits it.
            frames.append(RPCFrame(stream: id, kind: .message(response)))
        }
        frames.append(RPCFrame(stream: id, kind: .status(status)))
        try? await writer.write(frames)
    }
}
