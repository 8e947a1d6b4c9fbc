import ICBDCore
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Synchronization

/// An icbd/1 server: accepts mutual-TLS connections and serves the methods of its router.
///
/// Run it in a `ServiceGroup`; graceful shutdown stops accepting, lets calls in flight finish
/// for ``RPCServerConfiguration/shutdownGracePeriod`` and then cancels them.
public final class RPCServer: Service, Sendable {
    private let configuration: RPCServerConfiguration
    private let router: RPCRouter
    private let group: any EventLoopGroup
    private let logger: Logger
    private let tls: TLSContexts
    private let bound = OneShotSignal<Result<SocketAddress, RPCServerError>>()
    private let connections = Mutex<Connections>(Connections())
    /// Fired when the last connection closes after shutdown began.
    private let drained = OneShotSignal<Void>()
    /// Any client can fail handshakes at will: they are logged at most once per interval.
    private let failedHandshakes = LogThrottle()

    private struct Connections {
        var open: [ObjectIdentifier: ServerConnection] = [:]
        var draining = false
    }

    public init(
        configuration: RPCServerConfiguration,
        router: RPCRouter,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) throws {
        self.configuration = configuration
        self.router = router
        self.group = group
        self.logger = logger
        self.tls = try TLSContexts(server: configuration.tls)
    }

    /// The address the server listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        guard let result = await bound.wait() else { throw CancellationError() }
        return try result.get()
    }

    public func run() async throws {
        let tls = self.tls
        let idleTimeout = configuration.idleTimeout
        let handshakeTimeout = configuration.handshakeTimeout
        let logger = self.logger
        let admission = ConnectionAdmission(limit: configuration.maximumConnections, logger: logger)
        let listener: NIOAsyncChannel<ConnectionPipeline.Connection, Never>
        do {
            listener = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .serverChannelOption(.backlog, value: 256)
                .serverChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(admission) }
                }
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelOption(.writeBufferWaterMark, value: ConnectionPipeline.writeBufferWaterMark)
                .bind(host: configuration.listen.host, port: configuration.listen.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let connection = try ConnectionPipeline.configure(
                            channel, tls: tls.makeServerHandler(logger: logger), idleTimeout: idleTimeout)
                        connection.closeUnlessAuthenticated(within: handshakeTimeout, channel: channel)
                        return connection
                    }
                }
        } catch {
            let failure = RPCServerError("cannot listen on \(configuration.listen): \(error)")
            bound.fire(.failure(failure))
            throw failure
        }
        guard let address = listener.channel.localAddress else {
            let failure = RPCServerError("the listening socket has no address")
            bound.fire(.failure(failure))
            throw failure
        }
        bound.fire(.success(address))

        try await withGracefulShutdownHandler {
            try await withThrowingDiscardingTaskGroup { group in
                try await listener.executeThenClose { inbound in
                    for try await connection in inbound {
                        group.addTask { await self.serve(connection) }
                    }
                }
                // The listener closed: calls in flight get the grace period, then are cut.
                group.addTask {
                    await withTaskGroup(of: Void.self) { race in
                        race.addTask { try? await Task.sleep(for: self.configuration.shutdownGracePeriod) }
                        race.addTask { _ = await self.drained.wait() }
                        await race.next()
                        race.cancelAll()
                    }
                    for connection in self.connections.withLock({ Array($0.open.values) }) { connection.close() }
                }
            }
        } onGracefulShutdown: {
            listener.channel.close(promise: nil)
            self.drainConnections()
        }
    }

    private func serve(_ connection: ConnectionPipeline.Connection) async {
        let channel = connection.channel.channel
        let remote = channel.remoteAddress.map { "\($0)" } ?? "unknown"
        let peer: PeerIdentity
        do {
            peer = try await connection.identity.get()
        } catch {
            if let heldBack = failedHandshakes.admit() {
                logger.info(
                    "handshake failed", metadata: ["remote": "\(remote)", "error": "\(error)", "failures_not_logged": "\(heldBack)"])
            }
            try? await channel.close()
            return
        }
        var logger = self.logger
        logger[metadataKey: "peer"] = "\(peer)"
        logger[metadataKey: "remote"] = "\(remote)"
        logger.debug("connection accepted")
        try? await connection.channel.executeThenClose { inbound, _ in
            let served = ServerConnection(
                peer: peer, router: router, configuration: configuration, channel: channel,
                writer: connection.writer, logger: logger)
            let key = ObjectIdentifier(served)
            let draining = connections.withLock { connections in
                connections.open[key] = served
                return connections.draining
            }
            if draining { served.drain() }
            let revocation = await configuration.tls.revocations.guardConnection(channel)
            defer {
                revocation.end()
                let last = connections.withLock { connections in
                    connections.open[key] = nil
                    return connections.draining && connections.open.isEmpty
                }
                if last { drained.fire(()) }
            }
            await withTaskCancellationHandler {
                await served.run(inbound)
            } onCancel: {
                channel.close(promise: nil)
            }
        }
        logger.debug("connection closed")
    }

    /// Connections without calls close now, busy ones when their last call ends.
    private func drainConnections() {
        let (open, none) = connections.withLock { connections in
            connections.draining = true
            return (Array(connections.open.values), connections.open.isEmpty)
        }
        if none { drained.fire(()) }
        for connection in open { connection.drain() }
    }
}

/// The server cannot run.
public struct RPCServerError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}
