import CatalogClient
import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle

/// The replicator of one repository server: owns the BTRFS repository, cleans up what an
/// interrupted publish or receive left, registers with the catalog and heartbeats
/// (``NodeMembership``), serves publishes and chunk reads, and pulls the versions its site
/// should hold. Its parts run as ``services`` in the process's `ServiceGroup`.
public final class ReplicatorService: Service, Sendable {
    public let configuration: ReplicatorConfiguration
    public let repository: ImageRepository
    /// The parts, in start order; graceful shutdown stops them in reverse: replication, then
    /// membership, then the server (calls in flight finish), the catalog client last.
    public let services: [any Service]
    private let logger: Logger
    private let server: RPCServer
    /// Open once start-up recovery has run: until then a publish could race it.
    private let recovery = RecoveryGate()

    /// Opens the repository; fails, saying what to do, when the root is not a writable BTRFS
    /// directory.
    public init(configuration: ReplicatorConfiguration, logger: Logger) throws {
        self.configuration = configuration
        self.repository = try ImageRepository(root: configuration.root)
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.name)"
        self.logger = logger
        var catalogClient = RPCClientConfiguration(target: configuration.catalog, expectedRole: .catalog, tls: configuration.tls)
        catalogClient.alternates = configuration.catalogAlternates
        let catalog = try RPCClient(configuration: catalogClient, logger: logger)
        var router = RPCRouter()
        router.register(HealthService(role: .replicator, node: configuration.name, site: configuration.site.rawValue))
        let recovery = self.recovery
        router.register(
            ReplicatorRPCService(
                repository: repository, catalog: catalog, manifests: ManifestCache(catalog: catalog), node: configuration.name,
                recovery: recovery, logger: logger))
        let metrics = ReplicationMetrics()
        let repository = self.repository
        router.register(
            ReplicationRPCService(
                sender: VersionSender(repository: repository, metrics: metrics, logger: logger, configuration: configuration.replication)))
        let server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls),
            router: router, logger: logger)
        self.server = server
        let membership = NodeMembership(
            catalog: catalog,
            registration: NodeMembership.Registration(
                name: configuration.name, role: .replicator, site: configuration.site, heartbeatInterval: configuration.heartbeatInterval,
                heartbeatTTL: configuration.heartbeatTTL),
            logger: logger,
            endpoints: {
                let address = try await server.localAddress()
                return NodeMembership.Endpoints(
                    rpc: configuration.advertisedAddress
                        ?? HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0))
            },
            // Registering says "this repository is consistent with the catalog": not before recovery.
            ready: { await recovery.waitUntilDone() })
        var services: [any Service] = [
            catalog, server,
            RepositoryUpkeep(
                repository: repository, catalog: catalog, node: configuration.name, recovery: recovery,
                retentionInterval: configuration.retentionInterval, retryInterval: configuration.heartbeatInterval, logger: logger),
            RevocationFollower(list: configuration.tls.revocations, catalog: catalog, logger: logger),
            membership,
        ]
        if configuration.replication.enabled {
            services.append(
                ReplicationScheduler(
                    repository: repository, catalog: catalog, configuration: configuration.replication, site: configuration.site.rawValue,
                    node: configuration.name, tls: configuration.tls, metrics: metrics, recovery: recovery, logger: logger
                ) { [logger] in
                    do {
                        try await RetentionPass(repository: repository, catalog: catalog, node: configuration.name, logger: logger).run()
                    } catch {
                        logger.warning("retention after a received version failed", metadata: ["error": "\(error)"])
                    }
                })
        }
        self.services = services
    }

    /// Runs ``services`` in a `ServiceGroup` of their own until graceful shutdown: for a process
    /// that runs several nodes (tests, benchmarks). `icbd replicator` puts ``services`` straight into
    /// the process's one group instead.
    public func run() async throws {
        try await ServiceGroup(services: services, logger: logger).run()
    }

    /// The address the replicator listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }
}
