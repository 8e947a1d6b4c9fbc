import ArgumentParser
import CacheNode
import ICBDCore

/// `icbd cache`: runs a cache node until SIGTERM or SIGINT.
struct CacheCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cache", abstract: "Run a cache node: a bounded, verified chunk cache in front of the repositories.")

    @Option(help: "HOST:PORT to listen on; port 0 picks a free one.")
    var listen: String

    @Option(help: "The cache directory (created if missing).")
    var dir: String

    @Option(help: "The most bytes of chunks kept on disk, with a unit: 512MiB, 20GiB.")
    var capacity: String

    @Option(help: "The site this cache serves.")
    var site: String

    @Option(help: "The catalog's HOST:PORT; repeat it or give a comma list for several catalog processes, tried in turn.")
    var catalog: [String]

    @Option(help: "Eviction policy: s3fifo (default) or lru.")
    var eviction: String = "s3fifo"

    @Option(help: "Upstream calls in flight at most.")
    var upstreamCalls: Int = 4

    @Option(
        help: "Seconds a verification of a held chunk counts: older ones are hashed again before serving (0: hash every read).")
    var verifyIntervalSeconds: Int = 3600

    @Option(help: "The most bytes per second the background scrubber hashes, with a unit: 32MiB (0: no scrubber).")
    var scrubRate: String = "32MiB"

    @Option(help: "Seconds after a version's first read during which its boot profile is recorded (1 to 3600).")
    var bootProfileSeconds: Int = 300

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
        _ = try parseCapacity()
        guard EvictionPolicyKind(rawValue: eviction) != nil else {
            throw ValidationError("--eviction: '\(eviction)' is not one of \(EvictionPolicyKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (1...64).contains(upstreamCalls) else { throw ValidationError("--upstream-calls must be from 1 to 64") }
        guard verifyIntervalSeconds >= 0 else { throw ValidationError("--verify-interval-seconds must not be negative") }
        guard (1...3600).contains(bootProfileSeconds) else { throw ValidationError("--boot-profile-seconds must be from 1 to 3600") }
        _ = try parseScrubRate()
    }

    private func parseCapacity() throws -> Int64 {
        let size: ByteSize
        do { size = try ByteSize(parsing: capacity) } catch { throw ValidationError("--capacity: \(error)") }
        guard size.bytes >= 1 << 20 else { throw ValidationError("--capacity must be at least 1MiB") }
        return size.bytes
    }

    private func parseScrubRate() throws -> Int {
        if scrubRate == "0" { return 0 }
        do { return Int(try ByteSize(parsing: scrubRate).bytes) } catch { throw ValidationError("--scrub-rate: \(error)") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.cache")
        let metrics = try metricsOptions.endpoint(logger: logger)
        let catalogs = try parseCatalogs(catalog)
        var configuration = CacheConfiguration(
            listen: try parseHostPort(listen, option: "--listen"), directory: dir, capacity: try parseCapacity(),
            site: try parseName(site, "--site"), catalog: catalogs[0], tls: try tls.identity(),
            name: tls.name)
        configuration.catalogAlternates = Array(catalogs.dropFirst())
        configuration.advertisedAddress = try advertise.map { try parseHostPort($0, option: "--advertise") }
        configuration.eviction = EvictionPolicyKind(rawValue: eviction) ?? .s3fifo
        configuration.upstreamCalls = upstreamCalls
        configuration.verifyInterval = .seconds(verifyIntervalSeconds)
        configuration.bootProfileWindow = .seconds(bootProfileSeconds)
        configuration.scrubBytesPerSecond = try parseScrubRate()
        let cache = try CacheService(configuration: configuration, logger: logger)
        try await runService(cache.services, role: .cache, name: tls.name, metrics: metrics, logger: logger) {
            try await cache.localAddress()
        }
    }
}
