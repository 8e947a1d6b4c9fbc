import CatalogClient
import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle

/// The HTTP gateway of one site (docs/gateway.md): keeps a live view of the catalog, serves
/// listings, boot scripts and file bytes read chunk by chunk from the nearest healthy cache
/// node (then other sites' caches, then a repository), registers with the catalog as a
/// `gateway` node and heartbeats (``NodeMembership``). Its parts run as ``services`` in the
/// process's `ServiceGroup`.
public final class GatewayService: Service, Sendable {
    public let configuration: GatewayConfiguration
    /// The parts, in start order; graceful shutdown stops them in reverse: membership, then the
    /// HTTP server (requests in flight finish), the same-host read notes, the catalog view, the
    /// upstream pool, and the catalog client last.
    public let services: [any Service]
    private let logger: Logger
    private let http: GatewayHTTPServer

    public init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.name)"
        self.logger = logger
        var catalogClient = RPCClientConfiguration(target: configuration.catalog, expectedRole: .catalog, tls: configuration.tls)
        catalogClient.alternates = configuration.catalogAlternates
        let catalog = try RPCClient(configuration: catalogClient, logger: logger)
        var upstream = RPCClientPool.Configuration(tls: configuration.tls)
        upstream.connectTimeout = .seconds(2)
        upstream.maximumBackoff = .seconds(2)
        let pool = RPCClientPool(configuration: upstream, logger: logger)
        let view = CatalogView(catalog: catalog, logger: logger) { snapshot in
            pool.retain(Set(snapshot.nodes.values.compactMap(\.rpcAddress)))
        }
        let metrics = GatewayMetrics()
        let health = PassiveHealth(ejection: configuration.ejection)
        let memory = ChunkMemoryCache(capacityBytes: configuration.memoryCacheBytes)
        let sameHost = configuration.localCache.map { directory in
            SameHostChunks(
                directory: directory,
                verified: VerifiedFiles(capacity: configuration.localVerifiedFiles, lifetime: configuration.localVerificationLifetime))
        }
        let sameHostNotes = sameHost.map { SameHostReadNotes(local: $0, view: view, clients: pool, logger: logger) }
        let reporter = BootReporter(
            catalog: catalog, interval: configuration.boots.reportInterval, capacity: configuration.boots.reportQueue, logger: logger)
        let boots = BootObserver(configuration: configuration.boots, metrics: metrics.boots, reporter: reporter, logger: logger)
        let responder = GatewayResponder(
            configuration: configuration, view: view,
            manifests: ManifestStore(catalog: catalog, capacityBytes: configuration.manifestCacheBytes),
            chunks: ChunkSource(
                view: view, clients: pool, health: health, memory: memory,
                sameHost: sameHost, sameHostNotes: sameHostNotes, blocks: VerifiedBlocks(capacity: configuration.verifiedBlockChunks),
                metrics: metrics, attemptTimeout: configuration.attemptTimeout, logger: logger),
            memory: memory, admission: AdmissionGate(limit: configuration.admissionLimit), health: health, metrics: metrics, boots: boots,
            logger: logger)
        let http = GatewayHTTPServer(configuration: configuration, responder: responder, logger: logger) { [logger] peer, taken, waiting in
            metrics.slowReaderClosed()
            logger.warning(
                "closing the connection of a client that reads slower than the minimum rate",
                metadata: [
                    "peer": "\(peer?.description ?? "unknown")", "taken_bytes": "\(taken)", "waiting_bytes": "\(waiting)",
                    "minimum_rate": "\(configuration.minimumSendRate.bytesPerSecond) B/s over \(configuration.minimumSendRate.window)",
                ])
        }
        self.http = http
        let membership = NodeMembership(
            catalog: catalog,
            registration: NodeMembership.Registration(
                name: configuration.name, role: .gateway, site: configuration.site, heartbeatInterval: configuration.heartbeatInterval,
                heartbeatTTL: configuration.heartbeatInterval * 3),
            logger: logger,
            endpoints: {
                let address = try await http.localAddress()
                return NodeMembership.Endpoints(http: HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0))
            })
        var services: [any Service] = [
            catalog, pool, view.follower, view.cacheUsage(every: configuration.cacheUsageRefresh), reporter.service, boots,
            // No RPC server here, but its clients refuse revoked cache nodes too.
            RevocationFollower(list: configuration.tls.revocations, catalog: catalog, logger: logger),
        ]
        // Stopped after the HTTP server, so the last responses' reads are noted too.
        if let sameHostNotes { services.append(sameHostNotes.service) }
        self.services = services + [http, membership]
    }

    /// Runs ``services`` in a `ServiceGroup` of their own until graceful shutdown: for a process
    /// that runs several nodes (tests, benchmarks). `icbd gateway` puts ``services`` straight into
    /// the process's one group instead.
    public func run() async throws {
        try await ServiceGroup(services: services, logger: logger).run()
    }

    /// The HTTP address, once the gateway listens.
    public func localAddress() async throws -> SocketAddress {
        try await http.localAddress()
    }
}
