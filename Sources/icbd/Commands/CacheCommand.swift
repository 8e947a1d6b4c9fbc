import ArgumentParser
import CacheNode
import ICBDCore

/// `icbd cache`: runs a cache node until SIGTERM or SIGINT.
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Run a cache node: a bounded, verified chunk cache in front of the repositories.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: HostPort

    @Option(help: "The cache directory (created if missing).")
    var dir: String

    @Option(help: "The most bytes of chunks kept on disk, with a unit: 512MiB, 20GiB (at least 1MiB).")
    var capacity: ByteSize

    @Option(help: "The site this cache serves.")
    var site: Name

    @OptionGroup var catalog: CatalogAddressOptions

    @Option(help: "The eviction policy.")
    var eviction: EvictionPolicyKind = .s3fifo

    @Option(help: "Upstream calls in flight at most.")
    var upstreamCalls: Int = 4

    @Option(
        help: "Seconds a verification of a held chunk counts: older ones are hashed again before serving (0: hash every read).")
    var verifyIntervalSeconds: Int = 3600

    @Option(help: "The most bytes per second the background scrubber hashes, with a unit: 32MiB (0: no scrubber).")
    var scrubRate = ByteSize(bytes: 32 << 20)

    @Option(help: "Seconds after a version's first read during which its boot profile is recorded (1 to 3600).")
    var bootProfileSeconds: Int = 300

    @Option(help: "HOST:PORT other nodes reach this one at, registered in the catalog (default: the listening address; give it when listening on 0.0.0.0 or behind NAT).")
    var advertise: HostPort?

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions
    @OptionGroup var metricsOptions: MetricsOptions

    func validate() throws {
        guard capacity.bytes >= 1 << 20 else { throw ValidationError("--capacity must be at least 1MiB") }
        guard (1...64).contains(upstreamCalls) else { throw ValidationError("--upstream-calls must be from 1 to 64") }
        guard verifyIntervalSeconds >= 0 else { throw ValidationError("--verify-interval-seconds must not be negative") }
        guard (1...3600).contains(bootProfileSeconds) else { throw ValidationError("--boot-profile-seconds must be from 1 to 3600") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.cache")
        let metrics = metricsOptions.endpoint(logger: logger)
        let catalogs = catalog.addresses
        var configuration = CacheConfiguration(
            listen: listen, directory: dir, capacity: capacity.bytes, site: site, catalog: catalogs[0], tls: try tls.identity(),
            name: tls.name.rawValue)
        configuration.catalogAlternates = Array(catalogs.dropFirst())
        configuration.advertisedAddress = advertise
        configuration.eviction = eviction
        configuration.upstreamCalls = upstreamCalls
        configuration.verifyInterval = .seconds(verifyIntervalSeconds)
        configuration.bootProfileWindow = .seconds(bootProfileSeconds)
        configuration.scrubBytesPerSecond = Int(scrubRate.bytes)
        let cache = try CacheService(configuration: configuration, logger: logger)
        try await runService(cache.services, role: .cache, name: tls.name.rawValue, metrics: metrics, logger: logger) {
            try await cache.localAddress()
        }
    }
}
