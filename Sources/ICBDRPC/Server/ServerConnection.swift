import ICBDCore
import ICBDProto
import Logging
import NIOCore
import Synchronization

/// Serves the calls of one accepted connection: reads frames, checks them against the
/// ``ServerConnectionStateMachine``, and runs each call's handler in a child task.
final class ServerConnection: Sendable {
    private struct State {
        var machine = ServerConnectionStateMachine()
        var streams: [UInt32: ServerStream] = [:]
        /// The server is shutting down: close once the last call ends.
        var draining = false
    }

    private let peer: PeerIdentity
    private let router: RPCRouter
    private let configuration: RPCServerConfiguration
    private let channel: any Channel
    private let writer: FrameWriter
    private let logger: Logger
    /// What the calls of this connection may hold of unread requests, all together.
    private let budget: BoundedCount
    private let state = Mutex(State())

    init(
        peer: PeerIdentity, router: RPCRouter, configuration: RPCServerConfiguration, channel: any Channel,
        writer: FrameWriter, logger: Logger
    ) {
        self.peer = peer
        self.router = router
        self.configuration = configuration
        self.channel = channel
        self.writer = writer
        self.logger = logger
        self.budget = BoundedCount(limit: configuration.maximumBufferedRequestBytes)
    }

    var openStreams: Int { state.withLock { $0.streams.count } }

    /// Closes the connection now if it has no calls, else when its last call ends.
    func drain() {
        let idle = state.withLock { state in
            state.draining = true
            return state.streams.isEmpty
        }
        if idle { channel.close(promise: nil) }
    }

    func close() {
        channel.close(promise: nil)
    }

    func run(_ inbound: NIOAsyncChannelInboundStream<RPCFrame>) async {
        await withDiscardingTaskGroup { group in
            do {
                for try await frame in inbound {
                    guard handle(frame, group: &group) else { break }
                    // A peer that sends faster than it reads (a ping flood) waits here.
                    try await writer.waitUntilWritable()
                }
            } catch {
                logger.info("connection closed on error", metadata: ["error": "\(error)"])
                channel.close(promise: nil)
            }
            let streams = state.withLock { $0.streams.values }
            for stream in streams { stream.stopSignal.fire(.connectionClosed) }
        }
    }

    /// Executes what a frame means; false when the connection must close.
    private func handle(_ frame: RPCFrame, group: inout DiscardingTaskGroup) -> Bool {
        let action = state.withLock { $0.machine.received(frame) }
        switch action {
        case .open(let id, let open):
            let stream = makeStream(id: id, open: open)
            group.addTask { await self.run(stream, method: open.method) }
        case .deliver(let id, let bytes):
            guard let stream = stream(id) else { break }
            switch stream.requests.append(bytes) {
            case .accepted: break
            case .beyondWindow: return protocolError("stream \(id) sent beyond its flow-control window")
            case .overBudget:
                // Reset the call, not the connection: its other calls are not to blame.
                let error = RPCError(
                    code: .resourceExhausted,
                    message: "the calls of this connection hold \(budget.limit) bytes of unread requests (the limit); send fewer large requests at once")
                stream.requests.finish(.failed(error))
                group.addTask { await stream.finish(error) }
            }
        case .endOfRequests(let id):
            stream(id)?.requests.finish(.finished)
        case .rejectAfterEnd(let id):
            if let stream = stream(id) {
                group.addTask {
                    await stream.finish(RPCError(code: .invalidArgument, message: "message or End after the call's End"))
                }
            }
        case .cancel(let id):
            stream(id)?.stopSignal.fire(.cancelled)
        case .credit(let id, let bytes):
            stream(id)?.sendWindow.grant(Int(bytes))
        case .pong(let nonce):
            writer.submit(RPCFrame(stream: 0, kind: .ping(nonce: nonce, ack: true)))
        case .ignore:
            break
        case .protocolError(let reason):
            return protocolError(reason)
        }
        return true
    }

    private func protocolError(_ reason: String) -> Bool {
        logger.warning("protocol error, closing connection", metadata: ["reason": "\(reason)"])
        channel.close(promise: nil)
        return false
    }

    private func stream(_ id: UInt32) -> ServerStream? {
        state.withLock { $0.streams[id] }
    }

    private func makeStream(id: UInt32, open: Icbd_Rpc_V1_Open) -> ServerStream {
        let deadline = open.timeoutMs > 0 ? ContinuousClock.now + .milliseconds(open.timeoutMs) : nil
        let context = RPCCallContext(peer: peer, method: open.method, metadata: open.metadata, deadline: deadline)
        let metricsMethod = router.handlers[open.method] == nil ? "unknown" : open.method
        let stream = ServerStream(id: id, context: context, metricsMethod: metricsMethod, writer: writer, budget: budget) {
            [weak self] id in
            let idleWhileDraining = self?.state.withLock { state in
                state.machine.closed(stream: id)
                state.streams[id] = nil
                return state.draining && state.streams.isEmpty
            }
            if idleWhileDraining == true { self?.close() }
        }
        state.withLock { $0.streams[id] = stream }
        return stream
    }

    private enum Outcome {
        case returned(Result<ByteBuffer?, any Error>)
        case stopped(StopReason)
    }

    /// Runs one call to its Status: the handler races the client's Cancel, the deadline (a timer
    /// on the event loop that fires the stream's stop signal) and the connection's end; whichever comes first decides the Status, and the handler is cancelled.
    private func run(_ stream: ServerStream, method: String) async {
        var logger = self.logger
        logger[metadataKey: "method"] = "\(method)"
        logger[metadataKey: "stream"] = "\(stream.id)"
        guard openStreams <= configuration.maximumConcurrentStreams else {
            await stream.finish(RPCError(code: .resourceExhausted, message: "too many concurrent calls on one connection (limit \(configuration.maximumConcurrentStreams))"))
            return
        }
        guard let handler = router.handlers[method] else {
            await stream.finish(RPCError(code: .unimplemented, message: "unknown method \(method)"))
            return
        }
        guard handler.allowedRoles.contains(peer.role) else {
            logger.info("call refused", metadata: ["peer": "\(peer)"])
            await stream.finish(RPCError(code: .permissionDenied, message: "\(peer) may not call \(method); it needs role \(handler.allowedRoles.map(\.rawValue).sorted().joined(separator: " or "))"))
            return
        }
        let deadline = stream.stopAtDeadline()
        defer { deadline?.cancel() }
        await withTaskGroup(of: Outcome?.self) { group in
            group.addTask {
                do {
                    return .returned(.success(try await handler.run(stream)))
                } catch {
                    return .returned(.failure(error))
                }
            }
            group.addTask { await stream.stopSignal.wait().map(Outcome.stopped) }
            while let next = await group.next() {
                guard let outcome = next else { continue }
                group.cancelAll()
                if case .returned(.success(let response)) = outcome {
                    await stream.finish(nil, response: response)
                } else {
                    await stream.finish(status(for: outcome, logger: logger))
                }
                break
            }
        }
    }

    private func status(for outcome: Outcome, logger: Logger) -> RPCError? {
        switch outcome {
        case .returned(.success):
            return nil
        case .returned(.failure(let error)):
            return Self.status(for: error, logger: logger)
        case .stopped(.cancelled):
            return RPCError(code: .cancelled, message: "the client cancelled the call")
        case .stopped(.connectionClosed):
            return RPCError(code: .unavailable, message: "the connection closed")
        case .stopped(.deadlineExceeded):
            return RPCError(code: .deadlineExceeded, message: "the call's deadline passed")
        }
    }

    /// The status a handler's error ends its call with. An ``RPCError`` (or a domain error that
    /// maps to one) goes out as the handler chose it. Any other error is a fault of this server:
    /// the caller gets INTERNAL and an id, the log gets the detail under that id, so no text of
    /// the server's internals ever reaches a remote caller.
    static func status(for error: any Error, logger: Logger) -> RPCError {
        let chosen: RPCError
        switch error {
        case let error as RPCError: chosen = error
        case let error as any RPCErrorConvertible: chosen = error.rpcError
        case is CancellationError: return RPCError(code: .cancelled, message: "the call was cancelled")
        default:
            let id = String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 16)
            logger.error("call failed", metadata: ["error": "\(error)", "error_id": "\(id)"])
            return RPCError(code: .internal, message: "internal error (logged as \(id))")
        }
        if chosen.code == .internal {
            logger.error("call failed", metadata: ["error": "\(chosen.message)", "cause": "\(chosen.cause.map { "\($0)" } ?? "none")"])
        } else {
            logger.debug("call ended with an error", metadata: ["error": "\(chosen)"])
        }
        return chosen
    }
}
