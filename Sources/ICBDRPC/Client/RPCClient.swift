import ICBDCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// A client of one peer: keeps one connection to it, reconnects with backoff, and fails calls
/// fast with UNAVAILABLE while the peer is down.
///
/// With ``RPCClientConfiguration/alternates`` it fails over: when connecting to the current
/// peer fails, the next is tried at once, and the backoff starts only when every peer failed
/// in a row. A call in flight when its connection breaks still fails (UNAVAILABLE: it may or
/// may not have been applied); the next call goes to a peer that answers.
///
/// ``run()`` owns the connection and must be running while calls are made: a `Service` in the
/// process's `ServiceGroup` (placed before the services that call through it, so that it stops
/// after them), or ``withRPCClient(_:logger:_:)`` for short-lived tools.
public final class RPCClient: Service, Sendable {
    private enum ConnectionState {
        case idle(retryAt: ContinuousClock.Instant?, lastError: RPCError?)
        case connecting([CheckedContinuation<ClientConnection, any Error>])
        case ready(ClientConnection)
        case shutDown
    }

    private struct State {
        var connection = ConnectionState.idle(retryAt: nil, lastError: nil)
        var backoff: ReconnectBackoff
        /// Which of the configuration's targets connections go to.
        var targetIndex = 0
    }

    public let configuration: RPCClientConfiguration
    private let group: any EventLoopGroup
    private let logger: Logger
    private let tls: TLSContexts
    private let state: Mutex<State>
    /// Wakes ``run()`` to connect; calls made before it starts wait for it.
    private let connectRequests: AsyncStream<Void>
    private let requestConnect: AsyncStream<Void>.Continuation

    public init(
        configuration: RPCClientConfiguration,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) throws {
        self.configuration = configuration
        self.group = group
        var logger = logger
        logger[metadataKey: "peer"] = "\(configuration.targets.map(\.description).joined(separator: ","))"
        self.logger = logger
        self.tls = try TLSContexts(client: configuration.tls)
        self.state = Mutex(
            State(backoff: ReconnectBackoff(initial: configuration.initialBackoff, maximum: configuration.maximumBackoff)))
        (connectRequests, requestConnect) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Maintains the connection until graceful shutdown (or cancellation); then closes it and
    /// fails calls in flight.
    public func run() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await _ in connectRequests {
                    group.addTask { await self.connectAndServe() }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.shutDown()
        }
        let waiters: [CheckedContinuation<ClientConnection, any Error>] = state.withLock { state in
            defer { state.connection = .shutDown }
            if case .connecting(let waiters) = state.connection { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(throwing: RPCError(code: .unavailable, message: "the client shut down")) }
    }

    /// Makes ``run()`` close the connection and return (a pool drops the client of a node that
    /// left; graceful shutdown does the same).
    public func shutDown() {
        requestConnect.finish()
    }

    // MARK: Calls

    public func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: RPCCallOptions = .init()
    ) async throws -> Response {
        try await call(method, options: options, first: [MessageCoding.encode(request)], end: true) { stream in
            try await Self.singleResponse(of: stream, as: Response.self)
        }
    }

    /// Calls a server-streaming method; `body` reads the responses. Returning before the last
    /// response cancels the call.
    public func serverStreaming<Request, Response, Result: Sendable>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: RPCCallOptions = .init(),
        _ body: (RPCResponseStream<Response>) async throws -> Result
    ) async throws -> Result {
        try await call(method, options: options, first: [MessageCoding.encode(request)], end: true) { stream in
            try await body(RPCResponseStream(messages: stream.responses, decodeFailure: .internal))
        }
    }

    /// Calls a client-streaming method; `body` writes the requests, the call ends when it returns.
    public func clientStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>, options: RPCCallOptions = .init(),
        _ body: (RPCRequestWriter<Request>) async throws -> Void
    ) async throws -> Response {
        try await call(method, options: options, first: [], end: false) { stream in
            try await body(RPCRequestWriter(stream: stream))
            stream.endRequests()
            return try await Self.singleResponse(of: stream, as: Response.self)
        }
    }

    /// Calls a bidirectional method; `body` writes requests (``RPCRequestWriter/finish()`` ends
    /// them) and reads responses. Returning before the last response cancels the call.
    public func bidirectional<Request, Response, Result: Sendable>(
        _ method: RPCMethod<Request, Response>, options: RPCCallOptions = .init(),
        _ body: (RPCRequestWriter<Request>, RPCResponseStream<Response>) async throws -> Result
    ) async throws -> Result {
        try await call(method, options: options, first: [], end: false) { stream in
            try await body(
                RPCRequestWriter(stream: stream), RPCResponseStream(messages: stream.responses, decodeFailure: .internal))
        }
    }

    /// Measures the round trip of a Ping on the connection.
    public func ping() async throws -> Duration {
        try await connection().ping()
    }

    private func call<Result: Sendable>(
        _ path: String, options: RPCCallOptions, first: [ByteBuffer], end: Bool,
        _ body: (ClientStream) async throws -> Result
    ) async throws -> Result {
        let stream = try await connection().open(method: path, options: options, messages: first, end: end)
        do {
            let result = try await withTaskCancellationHandler {
                try await withLocalDeadline(options.timeout, stream: stream) { try await body(stream) }
            } onCancel: {
                stream.cancel()
            }
            stream.cancel()  // a no-op when the Status arrived; else the body stopped reading
            return result
        } catch {
            stream.cancel()
            throw RPCError(error)
        }
    }

    private func call<Request, Response, Result: Sendable>(
        _ method: RPCMethod<Request, Response>, options: RPCCallOptions, first: [ByteBuffer], end: Bool,
        _ body: (ClientStream) async throws -> Result
    ) async throws -> Result {
        try await call(method.path, options: options, first: first, end: end, body)
    }

    /// The server enforces a call's deadline; this is the client's own guard against a server
    /// that cannot answer in time (one second later), a timer on the connection's event loop.
    private func withLocalDeadline<Result: Sendable>(
        _ timeout: Duration?, stream: ClientStream, _ body: () async throws -> Result
    ) async throws -> Result {
        guard let timeout else { return try await body() }
        let timer = stream.cancel(
            after: timeout + .seconds(1), RPCError(code: .deadlineExceeded, message: "\(stream.method): no answer within the deadline"))
        defer { timer.cancel() }
        return try await body()
    }

    private static func singleResponse<Response: SwiftProtobuf.Message>(of stream: ClientStream, as type: Response.Type) async throws -> Response
    {
        guard let message = try await stream.responses.next() else {
            throw RPCError(code: .internal, message: "\(stream.method) ended without a response message")
        }
        guard try await stream.responses.next() == nil else {
            throw RPCError(code: .internal, message: "\(stream.method) sent more than one response message")
        }
        do {
            return try MessageCoding.decode(message, as: Response.self)
        } catch {
            throw RPCError(code: .internal, message: "\(stream.method): \(error.message)")
        }
    }

    // MARK: Connection

    private func connection() async throws -> ClientConnection {
        let ready: ClientConnection? = state.withLock { state in
            if case .ready(let connection) = state.connection, !connection.isClosed { return connection }
            return nil
        }
        if let ready { return ready }
        enum Next {
            case use(ClientConnection)
            case fail(RPCError)
            case wait
        }
        return try await withCheckedThrowingContinuation { continuation in
            let next: Next = state.withLock { state in
                switch state.connection {
                case .ready(let connection) where !connection.isClosed:
                    return .use(connection)
                case .connecting(let waiters):
                    state.connection = .connecting(waiters + [continuation])
                    return .wait
                case .idle(let retryAt?, let lastError?) where ContinuousClock.now < retryAt:
                    return .fail(
                        RPCError(
                            code: .unavailable,
                            message: "\(targetsDescription) is unreachable (\(lastError.message)); retrying in \(retryAt - ContinuousClock.now)"
                        ))
                case .shutDown:
                    return .fail(RPCError(code: .unavailable, message: "the client shut down"))
                case .idle, .ready:
                    state.connection = .connecting([continuation])
                    requestConnect.yield(())
                    return .wait
                }
            }
            switch next {
            case .use(let connection): continuation.resume(returning: connection)
            case .fail(let error): continuation.resume(throwing: error)
            case .wait: break
            }
        }
    }

    private var targetsDescription: String {
        configuration.targets.map(\.description).joined(separator: ", ")
    }

    /// Connects to the current target, else to each other one in turn.
    private func connectToSomeTarget() async throws -> (ClientConnection, NIOAsyncChannel<RPCFrame, Never>) {
        let targets = configuration.targets
        var errors: [String] = []
        for _ in 0..<targets.count {
            let index = state.withLock { $0.targetIndex % targets.count }
            do {
                return try await connect(to: targets[index])
            } catch {
                errors.append("\(targets[index]): \(error)")
                if targets.count > 1 { logger.info("connect failed; trying the next peer", metadata: ["target": "\(targets[index])", "error": "\(error)"]) }
                state.withLock { $0.targetIndex = (index + 1) % targets.count }
            }
        }
        throw RPCError(code: .unavailable, message: errors.joined(separator: "; "))
    }

    private func connectAndServe() async {
        let attempt: (ClientConnection, NIOAsyncChannel<RPCFrame, Never>)
        do {
            attempt = try await connectToSomeTarget()
        } catch {
            let reason = (error as? RPCError)?.message ?? "\(error)"
            let failure = RPCError(code: .unavailable, message: "cannot connect to \(targetsDescription): \(reason)")
            let waiters: [CheckedContinuation<ClientConnection, any Error>] = state.withLock { state in
                let delay = state.backoff.failed()
                defer { state.connection = .idle(retryAt: ContinuousClock.now + delay, lastError: failure) }
                if case .connecting(let waiters) = state.connection { return waiters }
                return []
            }
            logger.info("connect failed", metadata: ["error": "\(error)"])
            for waiter in waiters { waiter.resume(throwing: failure) }
            return
        }
        let (connection, channel) = attempt
        let waiters: [CheckedContinuation<ClientConnection, any Error>] = state.withLock { state in
            state.backoff.succeeded()
            defer { state.connection = .ready(connection) }
            if case .connecting(let waiters) = state.connection { return waiters }
            return []
        }
        for waiter in waiters { waiter.resume(returning: connection) }
        logger.debug("connected")

        try? await channel.executeThenClose { inbound, _ in
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.keepAlive(connection) }
                await withTaskCancellationHandler {
                    await connection.run(inbound)
                } onCancel: {
                    // Not here: closing resumes the calls' waiting tasks, and a cancellation
                    // handler runs under the runtime's lock of a task being cancelled; with
                    // another thread cancelling the same tree (a graceful shutdown) the two
                    // deadlocked in `withStatusRecordLock` (a serial test phase hung so,
                    // 2026-12-07). The event loop closes it, holding no task's lock.
                    connection.channel.eventLoop.execute {
                        connection.close(RPCError(code: .unavailable, message: "the client shut down"))
                    }
                }
                group.cancelAll()
            }
        }
        state.withLock { state in
            if case .ready(let current) = state.connection, current === connection {
                state.connection = .idle(retryAt: nil, lastError: nil)
            }
        }
        logger.debug("disconnected")
    }

    private func keepAlive(_ connection: ClientConnection) async {
        let interval = configuration.keepaliveInterval
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: interval)
                let answered = await withTaskGroup(of: Bool.self) { race in
                    race.addTask { (try? await connection.ping()) != nil }
                    race.addTask {
                        try? await Task.sleep(for: interval)
                        return false
                    }
                    let first = await race.next() ?? false
                    race.cancelAll()
                    return first
                }
                if !answered && !Task.isCancelled {
                    connection.close(RPCError(code: .unavailable, message: "\(targetsDescription) did not answer a ping"))
                    return
                }
            } catch {
                return
            }
        }
    }

    private func connect(to target: HostPort) async throws -> (ClientConnection, NIOAsyncChannel<RPCFrame, Never>) {
        let tls = self.tls
        let expectedRole = configuration.expectedRole
        let expectedName = configuration.expectedName
        let logger = self.logger
        let connectTimeout = configuration.connectTimeout
        let refusal = CertificateRefusal()
        let setUp = try await ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(connectTimeout))
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelOption(.writeBufferWaterMark, value: ConnectionPipeline.writeBufferWaterMark)
            .connect(host: target.host, port: target.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try ConnectionPipeline.configure(
                        channel,
                        tls: tls.makeClientHandler(
                            host: target.host, expectedRole: expectedRole, expectedName: expectedName, logger: logger,
                            refusal: refusal),
                        idleTimeout: .seconds(60)
                    )
                }
            }
        let channel = setUp.channel.channel
        let handshakeTimer = channel.eventLoop.scheduleTask(in: TimeAmount(connectTimeout)) {
            channel.close(promise: nil)
        }
        defer { handshakeTimer.cancel() }
        do {
            _ = try await setUp.identity.get()
        } catch {
            try? await channel.close()
            throw Self.explainHandshakeFailure(error, refusal: refusal, identity: configuration.tls.identity)
        }
        return (ClientConnection(channel: channel, writer: setUp.writer, logger: logger), setUp.channel)
    }
}

extension RPCClient {
    /// Turns a failed handshake into a sentence saying which side refused what.
    fileprivate static func explainHandshakeFailure(_ error: any Error, refusal: CertificateRefusal, identity: PeerIdentity)
        -> TLSIdentityError
    {
        if let reason = refusal.recorded {
            return TLSIdentityError("this client refused the server's certificate (\(reason))")
        }
        let text = "\(error)"
        if text.contains("ALERT") || text.contains("alreadyClosed") || text.contains("EOF") {
            return TLSIdentityError(
                "the server refused this client's certificate (\(identity)) or closed the handshake: check that it is issued by the deployment CA and still valid (\(text))")
        }
        return TLSIdentityError("handshake failed: \(text)")
    }
}

/// Runs `body` with a client of `configuration`'s peer, then shuts the client down
/// (``RPCClient/shutDown()``: its connection closed, calls still in flight failed) and waits for
/// it, whether `body` returned or threw.
public func withRPCClient<Result: Sendable>(
    _ configuration: RPCClientConfiguration,
    logger: Logger,
    _ body: (RPCClient) async throws -> Result
) async throws -> Result {
    let client = try RPCClient(configuration: configuration, logger: logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await client.run() }
        defer { client.shutDown() }
        return try await body(client)
    }
}
