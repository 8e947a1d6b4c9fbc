import Catalog
import Foundation
import ICBDCore
import ICBDTestSupport
import Logging
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

    /// Opens (creating or migrating) the store.
    func open(logger: Logger = quietLogger()) async throws -> any CatalogStore {
        switch kind {
        case .sqlite: try SQLiteCatalogStore(path: database, logger: logger)
        case .postgres: try await PostgresCatalogStore.open(try postgresSettings(), logger: logger)
        }
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
