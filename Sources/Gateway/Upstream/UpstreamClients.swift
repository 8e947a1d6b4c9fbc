import ICBDCore
import ICBDRPC
import Logging
import Synchronization

/// One RPC client per upstream node, made on first use and kept running while the gateway runs.
final class UpstreamClients: Sendable {
    private struct Key: Hashable {
        let address: HostPort
        let role: Role
    }

    private let clients = Mutex<[Key: RPCClient]>([:])
    private let tls: TLSIdentity
    private let logger: Logger
    private let started: AsyncStream<RPCClient>
    private let start: AsyncStream<RPCClient>.Continuation

    init(tls: TLSIdentity, logger: Logger) {
        self.tls = tls
        self.logger = logger
        (started, start) = AsyncStream.makeStream()
    }

    /// Runs every client made, until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await client in started {
                group.addTask { await client.run() }
            }
            group.cancelAll()
        }
    }

    func client(for upstream: Upstream) throws -> RPCClient {
        let key = Key(address: upstream.address, role: upstream.kind == .cache ? .cache : .replicator)
        return try clients.withLock { clients in
            if let client = clients[key] { return client }
            var configuration = RPCClientConfiguration(target: key.address, expectedRole: key.role, tls: tls)
            configuration.connectTimeout = .seconds(2)
            configuration.maximumBackoff = .seconds(2)
            let client = try RPCClient(configuration: configuration, logger: logger)
            clients[key] = client
            start.yield(client)
            return client
        }
    }

    func finish() { start.finish() }
}
