import ArgumentParser
import Catalog
import ICBDCore
import ServiceLifecycle

/// `icbd catalog`: runs the catalog service until SIGTERM or SIGINT.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "Run the catalog service (SQLite file, or a PostgreSQL database shared by several catalogs).")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: HostPort

    @Option(
        help: ArgumentHelp(
            "The catalog's database: an SQLite file (WAL mode; created if missing) or postgres://USER@HOST:PORT/DB?sslmode=MODE.",
            discussion: "For PostgreSQL the password comes from --db-password-file or PGPASSWORD; several catalogs may share one database."))
    var db: String

    @Option(help: "A file whose first line is the PostgreSQL password (default: PGPASSWORD).")
    var dbPasswordFile: String?

    @Option(help: "PostgreSQL: seconds a call waits for the database (connecting included) before failing with UNAVAILABLE.")
    var dbTimeout: Int = 10

    @Option(help: "Seconds without a heartbeat after which a node that registered without a TTL is marked down.")
    var heartbeatTtl: Int = 15

    @Option(help: "Revisions kept in the change log for watchers to resume from.")
    var changeLogRetention: Int = 100_000

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metricsOptions: MetricsOptions

    func validate() throws {
        guard (1...3600).contains(heartbeatTtl) else { throw ValidationError("--heartbeat-ttl must be from 1 to 3600 seconds") }
        guard changeLogRetention >= 1 else { throw ValidationError("--change-log-retention must be at least 1") }
        if PostgresDatabaseURL.isPostgres(db) {
            do { _ = try PostgresDatabaseURL(parsing: db) } catch { throw ValidationError("\(error)") }
        } else if dbPasswordFile != nil {
            throw ValidationError("--db-password-file applies only to a postgres:// --db")
        }
        guard (1...300).contains(dbTimeout) else { throw ValidationError("--db-timeout must be from 1 to 300 seconds") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.catalog")
        let metrics = metricsOptions.endpoint(logger: logger)
        var configuration = CatalogConfiguration(listen: listen, databasePath: db, tls: try tls.identity(), name: tls.name.rawValue)
        configuration.rpc.defaultHeartbeatTTL = .seconds(heartbeatTtl)
        configuration.changeLogRetention = changeLogRetention
        configuration.databasePasswordFile = dbPasswordFile
        let dbTimeout = dbTimeout
        configuration.postgres = { $0.operationTimeout = .seconds(dbTimeout) }
        let catalog = try await CatalogService.open(configuration: configuration, logger: logger)
        // The store's services (a PostgreSQL pool) start first and stop last.
        try await runService(
            catalog.storeServices + [catalog], role: .catalog, name: tls.name.rawValue, metrics: metrics, logger: logger
        ) {
            try await catalog.localAddress()
        }
    }
}
