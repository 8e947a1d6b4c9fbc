import ArgumentParser
import Catalog
import ICBDCore
import Replicator

/// `icbd replicator`: runs the replicator of a BTRFS repository until SIGTERM or SIGINT.
struct ReplicatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replicator", abstract: "Run the replicator of a BTRFS image repository.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: HostPort

    @Option(help: "The repository: a writable directory on BTRFS.")
    var root: String

    @Option(help: "The site this repository belongs to.")
    var site: Name

    @OptionGroup var catalog: CatalogAddressOptions

    @Option(help: "At most this many images are pulled from other repositories at once.")
    var maxTransfers: Int = 2

    @Option(help: "lz4 on the wire when pulling over links that leave it to the replicators (compression=auto): auto turns it on for links with a rate below 1 Gbit/s; on or off force it.")
    var compression: LinkCompression = .auto

    @Option(help: "HOST:PORT other nodes reach this one at, registered in the catalog (default: the listening address; give it when listening on 0.0.0.0 or behind NAT).")
    var advertise: HostPort?

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metricsOptions: MetricsOptions

    func validate() throws {
        guard (1...64).contains(maxTransfers) else { throw ValidationError("--max-transfers must be 1 to 64, not \(maxTransfers)") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.replicator")
        let metrics = metricsOptions.endpoint(logger: logger)
        let catalogs = catalog.addresses
        var configuration = ReplicatorConfiguration(
            listen: listen, root: root, site: site, catalog: catalogs[0], tls: try tls.identity(), name: tls.name.rawValue)
        configuration.catalogAlternates = Array(catalogs.dropFirst())
        configuration.advertisedAddress = advertise
        configuration.replication.maximumConcurrentTransfers = maxTransfers
        configuration.replication.forceCompression = switch compression {
        case .auto: nil
        case .on: true
        case .off: false
        }
        let replicator = try ReplicatorService(configuration: configuration, logger: logger)
        try await runService(replicator.services, role: .replicator, name: tls.name.rawValue, metrics: metrics, logger: logger) {
            try await replicator.localAddress()
        }
    }
}
