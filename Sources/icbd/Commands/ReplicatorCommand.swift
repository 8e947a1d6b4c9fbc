import ArgumentParser
import ICBDCore
import Replicator

/// `icbd replicator`: runs the replicator of a BTRFS repository until SIGTERM or SIGINT.
struct ReplicatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicator", abstract: "Run the replicator of a BTRFS image repository.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: String

    @Option(help: "The repository: a writable directory on BTRFS.")
    var root: String

    @Option(help: "The site this repository belongs to.")
    var site: String

    @Option(help: "The catalog's HOST:PORT; repeat it or give a comma list for several catalog processes, tried in turn.")
    var catalog: [String]

    @Option(help: "At most this many images are pulled from other repositories at once.")
    var maxTransfers: Int = 2

    @Option(help: "lz4 on the wire when pulling over links that leave it to the replicators (compression=auto): auto (links with a rate below 1 Gbit/s), on or off.")
    var compression: String = "auto"

    @Option(help: "HOST:PORT other nodes reach this one at, registered in the catalog (default: the listening address; give it when listening on 0.0.0.0 or behind NAT).")
    var advertise: String?

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metricsOptions: MetricsOptions

    func validate() throws {
        _ = try parseHostPort(listen, option: "--listen")
        if let advertise { _ = try parseHostPort(advertise, option: "--advertise") }
        _ = try parseCatalogs(catalog)
        _ = try parseName(site, "--site")
        guard (1...64).contains(maxTransfers) else { throw ValidationError("--max-transfers must be 1 to 64, not \(maxTransfers)") }
        guard ["auto", "on", "off"].contains(compression) else {
            throw ValidationError("--compression: '\(compression)' is not auto, on or off")
        }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.replicator")
        let metrics = try metricsOptions.endpoint(logger: logger)
        let catalogs = try parseCatalogs(catalog)
        var configuration = ReplicatorConfiguration(
            listen: try parseHostPort(listen, option: "--listen"), root: root, site: try parseName(site, "--site"),
            catalog: catalogs[0], tls: try tls.identity(), name: tls.name)
        configuration.catalogAlternates = Array(catalogs.dropFirst())
        configuration.advertisedAddress = try advertise.map { try parseHostPort($0, option: "--advertise") }
        configuration.replication.maximumConcurrentTransfers = maxTransfers
        configuration.replication.forceCompression = compression == "auto" ? nil : compression == "on"
        let replicator = try ReplicatorService(configuration: configuration, logger: logger)
        try await runService(replicator.services, role: .replicator, name: tls.name, metrics: metrics, logger: logger) {
            try await replicator.localAddress()
        }
    }
}
