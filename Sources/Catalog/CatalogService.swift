import Foundation
import ICBDCore
import ICBDRPC
import CatalogClient
import Logging
import NIOCore
import ServiceLifecycle

/// The catalog service: the source of truth for images, versions, tags, sites, nodes,
/// placements, policies and boot assignments, served over icbd/1 (`/icbd.catalog.v1.Catalog`
/// and Health), with a background task that marks nodes down when their heartbeats stop.
public final class CatalogService: Service, Sendable {
    public let configuration: CatalogConfiguration
    /// Where the data lives.
    public let store: any CatalogStore
    /// The store's own long-running work (the PostgreSQL store's connection pool and change
    /// follower), empty for SQLite: a process runs it in its `ServiceGroup` before the catalog,
    /// so that graceful shutdown stops the catalog (draining its calls) before the store.
    public let storeServices: [any Service]
    private let server: RPCServer
    private let maintenance: CatalogMaintenance
    private let logger: Logger

    /// Opens (or creates) the SQLite database of `configuration` and serves it.
    public convenience init(configuration: CatalogConfiguration, logger: Logger) throws {
        let directory = (configuration.databasePath as NSString).deletingLastPathComponent
        guard FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory) else {
            throw CatalogError(
                "the database directory '\(directory)' does not exist or is not writable; create it or choose another --db")
        }
        var storeLogger = logger
        storeLogger[metadataKey: "db"] = "\(configuration.databasePath)"
        let store = try SQLiteCatalogStore(path: configuration.databasePath, configuration: configuration.store, logger: storeLogger)
        try self.init(configuration: configuration, store: store, logger: logger)
    }

    /// Opens the database `configuration.databasePath` names — a `postgres://` URL
    /// (``PostgresCatalogStore``) or an SQLite file path — and serves it.
    public static func open(configuration: CatalogConfiguration, logger: Logger) async throws -> CatalogService {
        guard PostgresDatabaseURL.isPostgres(configuration.databasePath) else {
            return try CatalogService(configuration: configuration, logger: logger)
        }
        var settings = PostgresCatalogStore.Configuration(
            url: try PostgresDatabaseURL(parsing: configuration.databasePath),
            password: try PostgresPassword.resolve(file: configuration.databasePasswordFile))
        configuration.postgres(&settings)
        var storeLogger = logger
        storeLogger[metadataKey: "db"] = "\(settings.url)"
        let store = try await PostgresCatalogStore.open(settings, logger: storeLogger)
        return try CatalogService(configuration: configuration, store: store, storeServices: store.services, logger: logger)
    }

    /// Serves `store`, whatever database it keeps its data in. A store with work of its own
    /// (``PostgresCatalogStore``) comes with its services (``PostgresCatalogStore/services``).
    public init(configuration: CatalogConfiguration, store: any CatalogStore, storeServices: [any Service] = [], logger: Logger) throws {
        self.configuration = configuration
        self.store = store
        self.storeServices = storeServices
        self.logger = logger
        var router = RPCRouter()
        router.register(HealthService(role: .catalog, node: configuration.name))
        router.register(CatalogRPCService(store: store, settings: configuration.rpc, now: configuration.now, logger: logger))
        self.server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls),
            router: router,
            logger: logger
        )
        self.maintenance = CatalogMaintenance(
            store: store, sweepInterval: configuration.sweepInterval, changeLogRetention: configuration.changeLogRetention,
            now: configuration.now, logger: logger)
    }

    /// The address the catalog listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }

    /// Serves until graceful shutdown (or cancellation); the maintenance task stops with it.
    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.maintenance.run() }
            group.addTask {
                await RevocationFollower(
                    list: self.configuration.tls.revocations, store: self.store, now: self.configuration.now, logger: self.logger
                ).run()
            }
            defer { group.cancelAll() }
            try await server.run()
        }
    }

    /// Marks nodes whose heartbeat expired as down now, as the background task does every
    /// ``CatalogConfiguration/sweepInterval``; returns them.
    @discardableResult
    public func sweepExpiredNodes() async throws -> [NodeRecord] {
        try await maintenance.sweepExpiredNodes()
    }
}

/// A catalog that cannot start or answer.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}
