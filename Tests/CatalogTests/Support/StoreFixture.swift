import Catalog
import Foundation
import ICBDCore
import ICBDTestSupport
import Logging
import ServiceLifecycle
import Testing

/// The stores the catalog's store and RPC suites run against.
enum StoreKind: String, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    var testDescription: String { rawValue }

    /// SQLite always; PostgreSQL where it is installed — always in CI, where its absence fails.
    static let available: [StoreKind] = {
        do {
            return try PostgresServer.isAvailable() ? [.sqlite, .postgres] : [.sqlite]
        } catch {
            // CI without PostgreSQL: keep the kind so that every PostgreSQL test fails loudly.
            print("\(error)")
            return [.sqlite, .postgres]
        }
    }()
}

/// One empty catalog database of `kind` for a test: an SQLite file in a temporary directory,
/// or a fresh database on the PostgreSQL server the test process shares. Opened as many times
/// as the test likes (reopening, two catalog processes on one database); dropped with the
/// fixture, which removes its temporary directory when the test lets go of it (a restarted
/// catalog on the same fixture finds its database where it was).
final class StoreFixture: Sendable {
    let kind: StoreKind
    /// The fixture's own temporary directory, removed with it.
    let directory: URL
    /// The `--db` value: a file path or a `postgres://` URL.
    let database: String
    /// The PostgreSQL server, for tests that tamper with the database.
    let server: PostgresServer?

    init(_ kind: StoreKind) async throws {
        self.kind = kind
        // The directory is made last: an init that throws has no deinit to remove it.
        switch kind {
        case .sqlite:
            directory = try temporaryDirectory()
            database = directory.appendingPathComponent("catalog.db").path
            server = nil
        case .postgres:
            guard let (server, name) = try await PostgresServer.sharedDatabase() else {
                throw PostgresServerError("PostgreSQL is not installed; run scripts/bootstrap as root")
            }
            database = server.url(database: name)
            self.server = server
            directory = try temporaryDirectory()
        }
    }

    deinit {
        try? FileManager.default.removeItem(at: directory)
    }

    /// The settings a PostgreSQL store of this fixture opens with: the test password, and a
    /// short poll so that tests never wait on it.
    func postgresSettings() throws -> PostgresCatalogStore.Configuration {
        var settings = PostgresCatalogStore.Configuration(
            url: try PostgresDatabaseURL(parsing: database), password: PostgresServer.password)
        settings.maximumConnections = 8
        settings.operationTimeout = .seconds(30)  // generous: the tests' machines are loaded
        settings.pollInterval = .milliseconds(200)
        return settings
    }

    /// Opens (creating or migrating) the store. A PostgreSQL store answers only while it runs:
    /// tests use ``withStore(logger:_:)``, this is for tests of the opening itself.
    func open(logger: Logger = quietLogger()) async throws -> any CatalogStore {
        switch kind {
        case .sqlite: try SQLiteCatalogStore(path: database, logger: logger)
        case .postgres: try await PostgresCatalogStore.open(try postgresSettings(), logger: logger)
        }
    }

    /// Opens the store and runs `body` with it, the store running as a catalog process runs it
    /// (a PostgreSQL store as a service in a `ServiceGroup`, shut down gracefully after `body`);
    /// an SQLite store is closed after `body`.
    func withStore<R: Sendable>(logger: Logger = quietLogger(), _ body: (any CatalogStore) async throws -> R) async throws -> R {
        try await withStores(1, logger: logger) { stores in try await body(stores[0]) }
    }

    /// `count` stores on this fixture's database at once (several catalog processes), each run
    /// as ``withStore(logger:_:)`` runs one.
    func withStores<R: Sendable>(_ count: Int, logger: Logger = quietLogger(), _ body: ([any CatalogStore]) async throws -> R) async throws -> R {
        var stores: [any CatalogStore] = []
        for _ in 0..<count { stores.append(try await open(logger: logger)) }
        return try await withRunning(stores, logger: logger) { try await body(stores) }
    }

    /// Applies this fixture's database to a catalog configuration.
    func configure(_ configuration: inout CatalogConfiguration) throws {
        configuration.databasePath = database
        if kind == .postgres {
            let settings = try postgresSettings()
            configuration.postgres = { $0 = settings }
        }
    }
}

/// Runs `body` while `stores` run as a catalog process runs them: PostgreSQL stores as services
/// in a `ServiceGroup`, shut down gracefully after `body`; SQLite stores are closed after it.
func withRunning<R: Sendable>(_ stores: [any CatalogStore], logger: Logger = quietLogger(), _ body: () async throws -> R) async throws -> R {
    defer {
        for case let store as SQLiteCatalogStore in stores { try? store.close() }
    }
    return try await withRunningServices(stores.flatMap { ($0 as? PostgresCatalogStore)?.services ?? [] }, logger: logger, body)
}
