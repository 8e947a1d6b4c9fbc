import ArgumentParser
import Catalog
import ICBDCore
import ServiceLifecycle

/// `icbd catalog`: runs the catalog service until SIGTERM or SIGINT.
struct CatalogCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "catalog", abstract: "Run the catalog service.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: String

    @Option(help: "The catalog's database file.")
    var db: String

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try parseHostPort(listen, option: "--listen")
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.catalog")
        let catalog = try CatalogService(
            configuration: CatalogConfiguration(
                listen: try parseHostPort(listen, option: "--listen"), databasePath: db, tls: try tls.identity(),
                name: tls.name),
            logger: logger
        )
        try await runService(catalog, role: .catalog, name: tls.name, logger: logger) {
            try await catalog.localAddress()
        }
    }
}
