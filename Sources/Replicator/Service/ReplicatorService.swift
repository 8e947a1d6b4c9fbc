import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf

/// The replicator of one repository server: owns the BTRFS repository, cleans up what an
/// interrupted publish or receive left, registers with the catalog and heartbeats.
///
/// Publishing, chunk reads and replication come with their issues; this is their home.
public final class ReplicatorService: Service, Sendable {
    public let configuration: ReplicatorConfiguration
    public let repository: ImageRepository
    private let server: RPCServer
    /// The catalog connection; it runs while the service runs.
    private let catalog: RPCClient
    private let logger: Logger
    /// Open once start-up recovery has run: until then a publish could race it.
    private let recovery = RecoveryGate()
    private let replication: ReplicationScheduler

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
        self.catalog = try RPCClient(configuration: catalogClient, logger: logger)
        var router = RPCRouter()
        router.register(HealthService(role: .replicator, node: configuration.name, site: configuration.site.rawValue))
        router.register(
            ReplicatorRPCService(
                repository: repository, catalog: catalog, manifests: ManifestCache(catalog: catalog), node: configuration.name,
                recovery: recovery, logger: logger))
        let metrics = ReplicationMetrics()
        let (repository, catalog) = (self.repository, self.catalog)
        router.register(
            ReplicationRPCService(
                sender: VersionSender(repository: repository, metrics: metrics, logger: logger, configuration: configuration.replication)))
        self.replication = ReplicationScheduler(
            repository: repository, catalog: catalog, configuration: configuration.replication, site: configuration.site.rawValue,
            node: configuration.name, tls: configuration.tls, metrics: metrics, logger: logger
        ) { [logger] in
            do {
                try await RetentionPass(repository: repository, catalog: catalog, node: configuration.name, logger: logger).run()
            } catch {
                logger.warning("retention after a received version failed", metadata: ["error": "\(error)"])
            }
        }
        self.server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls),
            router: router, logger: logger)
    }

    /// The address the replicator listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.catalog.run() }
            group.addTask { try await self.server.run() }
            group.addTask { await self.maintain(catalog: self.catalog) }
            group.addTask {
                await RevocationFollower(list: self.configuration.tls.revocations, catalog: self.catalog, logger: self.logger).run()
            }
            if self.configuration.replication.enabled {
                group.addTask {
                    // Receiving before recovery ran would race it (its new subvolume looks like a leftover).
                    await self.recovery.waitUntilDone()
                    await self.replication.run()
                }
            }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Recovers the repository against the catalog once, then registers and heartbeats until
    /// cancelled; a catalog that is down is retried at the heartbeat interval.
    private func maintain(catalog: RPCClient) async {
        var recovered = false
        var registered = false
        var nextRetention = ContinuousClock.now
        while !Task.isCancelled {
            do {
                if !recovered {
                    try await recover(catalog: catalog)
                    recovered = true
                }
                if ContinuousClock.now >= nextRetention {
                    try await RetentionPass(repository: repository, catalog: catalog, node: configuration.name, logger: logger).run()
                    nextRetention = ContinuousClock.now + configuration.retentionInterval
                }
                if !registered {
                    try await register(catalog: catalog)
                    registered = true
                } else {
                    _ = try await catalog.unary(
                        CatalogMethods.heartbeat, .with { $0.name = configuration.name }, options: RPCCallOptions(timeout: .seconds(5)))
                }
            } catch let error as RPCError where error.code == .notFound {
                registered = false  // the catalog forgot this node (removed by an operator): register again
                continue
            } catch {
                logger.warning("catalog unreachable", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    private func register(catalog: RPCClient) async throws {
        let address = try await localAddress()
        var request = Icbd_Catalog_V1_RegisterNodeRequest()
        request.name = configuration.name
        request.role = .replicator
        request.site = configuration.site.rawValue
        request.rpcAddress = (configuration.advertisedAddress
            ?? HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0)).description
        request.heartbeatTtlMs = configuration.heartbeatTTL.wholeMilliseconds
        _ = try await catalog.unary(CatalogMethods.registerNode, request, options: RPCCallOptions(timeout: .seconds(5)))
        logger.info("registered with the catalog", metadata: ["site": "\(configuration.site)", "address": "\(request.rpcAddress)"])
    }

    /// Removes every `v<N>` the catalog does not know as ready (and writable ones), and any `work`.
    private func recover(catalog: RPCClient) async throws {
        var ready: [Name: Set<Int64>] = [:]
        for image in try repository.versions().keys {
            do {
                let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
                ready[image] = Set(answer.versions.filter { $0.state == .ready }.map(\.number))
            } catch let error as RPCError where error.code == .notFound {
                ready[image] = []
            }
        }
        let spools = ReceiveSpool.directory(root: repository.root)
        let salvage = { (image: Name, version: Int64, path: String) in
            ReceiveSpool(directory: spools, image: image, version: version).keepPartial(from: path)
        }
        for path in try repository.recover(ready: ready, salvage: salvage) {
            logger.warning("removed what an interrupted publish or receive left", metadata: ["path": "\(path)"])
        }
        recovery.markDone()
    }
}
