import ICBDCore
import Logging
import ServiceLifecycle
import Synchronization

/// Clients of other nodes (caches, repositories), one per address and role, made on first use
/// and run by the pool while it runs; at most ``Configuration/maximumClients`` at once (a
/// catalog listing thousands of nodes cannot make a node hold thousands of connections), and
/// a node that leaves the catalog has its client shut down (``retain(_:)``).
public final class RPCClientPool: Service, Sendable {
    /// How the pool's clients connect.
    public struct Configuration: Sendable {
        /// This node's certificate, key and the deployment CA.
        public var tls: TLSIdentity
        /// Clients held at once; asking for one more fails with RESOURCE_EXHAUSTED.
        public var maximumClients = 256
        /// Each client's connect timeout and longest reconnect backoff.
        public var connectTimeout: Duration = .seconds(5)
        public var maximumBackoff: Duration = .seconds(10)

        public init(tls: TLSIdentity) {
            self.tls = tls
        }
    }

    private struct Key: Hashable {
        let address: HostPort
        let role: Role
    }

    private struct State {
        var clients: [Key: RPCClient] = [:]
        var shutDown = false
    }

    public let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())
    private let started: AsyncStream<RPCClient>
    private let start: AsyncStream<RPCClient>.Continuation

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        (started, start) = AsyncStream.makeStream()
    }

    /// Runs every client made until graceful shutdown, then shuts them all down and waits for
    /// their connections to close.
    public func run() async {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for await client in started {
                    group.addTask { await client.run() }
                }
            }
        } onGracefulShutdown: {
            let clients = self.state.withLock { state in
                state.shutDown = true
                defer { state.clients = [:] }
                return Array(state.clients.values)
            }
            self.start.finish()
            for client in clients { client.shutDown() }
        }
    }

    /// The client of the node at `address` whose certificate carries `role`.
    public func client(for address: HostPort, role: Role) throws -> RPCClient {
        let key = Key(address: address, role: role)
        return try state.withLock { state in
            guard !state.shutDown else { throw RPCError(code: .unavailable, message: "the node is shutting down") }
            if let client = state.clients[key] { return client }
            guard state.clients.count < configuration.maximumClients else {
                throw RPCError(
                    code: .resourceExhausted, message: "already \(configuration.maximumClients) upstream clients; not connecting to \(address)")
            }
            var client = RPCClientConfiguration(target: address, expectedRole: role, tls: configuration.tls)
            client.connectTimeout = configuration.connectTimeout
            client.maximumBackoff = configuration.maximumBackoff
            let made = try RPCClient(configuration: client, logger: logger)
            state.clients[key] = made
            start.yield(made)
            return made
        }
    }

    /// Shuts down the clients of addresses not in `addresses` (nodes that left the catalog, or
    /// moved): their connections close and calls in flight on them fail with UNAVAILABLE.
    public func retain(_ addresses: Set<HostPort>) {
        let gone = state.withLock { state in
            let gone = state.clients.filter { !addresses.contains($0.key.address) }
            for key in gone.keys { state.clients[key] = nil }
            return Array(gone.values)
        }
        for client in gone {
            logger.debug("closing the client of a node that left", metadata: ["peer": "\(client.configuration.target)"])
            client.shutDown()
        }
    }

    /// How many clients the pool holds.
    public var count: Int { state.withLock { $0.clients.count } }
}
