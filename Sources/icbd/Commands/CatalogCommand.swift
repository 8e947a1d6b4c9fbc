import ArgumentParser
import Catalog
import ICBDCore
import ServiceLifecycle

/// `icbd catalog`: runs the catalog service until SIGTERM or SIGINT.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog", abstract: "Run the catalog service (SQLite database, created on first start).")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: String

    @Option(help: "The catalog's database file (SQLite, WAL mode); created if missing.")
    var db: String

    @Option(help: "Seconds without a heartbeat after which a node that registered without a TTL is marked down.")
    var heartbeatTtl: Int = 15

    @Option(help: "Revisions kept in the change log for watchers to resume from.")
    var changeLogRetention: Int = 100_000

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try parseHostPort(listen, option: "--listen")
        guard (1...3600).contains(heartbeatTtl) else { throw ValidationError("--heartbeat-ttl must be from 1 to 3600 seconds") }
        guard changeLogRetention >= 1 else { throw ValidationError("--change-log-retention must be at least 1") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.catalog")
        var configuration = CatalogConfiguration(
            listen: try parseHostPort(listen, option: "--listen"), databasePath: db, tls: try tls.identity(), name: tls.name)
        configuration.rpc.defaultHeartbeatTTL = .seconds(heartbeatTtl)
        configuration.changeLogRetention = changeLogRetention
        let catalog = try CatalogService(configuration: configuration, logger: logger)
        try await runService(catalog, role: .catalog, name: tls.name, logger: logger) {
            try await catalog.localAddress()
        }
    }
}
