import ArgumentParser
import Gateway
import ICBDCore

/// `icbd gateway`: runs the HTTP gateway of a site until SIGTERM or SIGINT.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the HTTP gateway of a site: listings, iPXE boot scripts and image bytes read from the nearest healthy cache node.")

    @Option(help: "HTTP HOST:PORT to listen on; port 0 picks a free one.")
    var listen: HostPort

    @Option(help: "The site this gateway serves (clients outside every site's CIDRs count as this site's).")
    var site: Name

    @OptionGroup var catalog: CatalogAddressOptions

    @Option(name: .customLong("trusted-proxy"), help: "CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable).")
    var trustedProxies: [CIDR] = []

    @Option(help: "IMAGE[:REF] booted by workstations without an assignment; none: they get a script that says so and asks again.")
    var defaultImage: ImageReference?

    @Option(help: "Responses reading from upstreams at once; beyond it new ones get 503 with Retry-After.")
    var admissionLimit: Int = 256

    @Option(help: "Chunks read in parallel ahead of the one being sent, per response.")
    var readAhead: Int = 4

    @Option(help: "Recently served chunks kept in memory (e.g. 256MiB; 0 disables).")
    var memoryCache = ByteSize(bytes: 256 << 20)

    @Option(
        help: ArgumentHelp(
            "The directory (--dir) of the cache node on this host: its chunk files are read directly, each verified, instead of over TLS; a miss fills through that node first.",
            valueName: "dir"))
    var localCache: String?

    @Option(help: "Seconds one upstream read may take before the next node is tried.")
    var upstreamTimeout: Int = 5

    @Option(help: "Seconds a node that failed a read is tried last.")
    var ejection: Int = 30

    @Option(help: "Bytes per second a client must take while response bytes wait for it (e.g. 32KiB; measured over 20 s); slower connections are closed, freeing their admission slot. 0 disables.")
    var minimumSendRate = ByteSize(bytes: 32 << 10)

    @Option(help: "Seconds without disk reads after which a boot that loaded its kernel and initrd, and sent no booted signal, counts as settled.")
    var bootSettle: Int = 30

    @Option(help: "Seconds a workstation that cannot boot waits before it asks for its script again.")
    var bootWaitingRetry: Int = 10

    @Option(help: "Finished boots kept in memory per workstation.")
    var bootHistory: Int = 10

    @Option(help: "Workstations whose boots are kept in memory; beyond it the least recently heard from is forgotten.")
    var bootWorkstations: Int = 4096

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard admissionLimit >= 1 else { throw ValidationError("--admission-limit must be at least 1") }
        guard (1...64).contains(readAhead) else { throw ValidationError("--read-ahead must be from 1 to 64 chunks") }
        guard (1...300).contains(upstreamTimeout) else { throw ValidationError("--upstream-timeout must be from 1 to 300 seconds") }
        guard (0...3600).contains(ejection) else { throw ValidationError("--ejection must be from 0 to 3600 seconds") }
        guard (1...3600).contains(bootSettle) else { throw ValidationError("--boot-settle must be from 1 to 3600 seconds") }
        guard (1...3600).contains(bootWaitingRetry) else { throw ValidationError("--boot-waiting-retry must be from 1 to 3600 seconds") }
        guard (1...1000).contains(bootHistory) else { throw ValidationError("--boot-history must be from 1 to 1000 boots") }
        guard (1...1_000_000).contains(bootWorkstations) else { throw ValidationError("--boot-workstations must be from 1 to 1000000") }
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.gateway")
        let catalogs = catalog.addresses
        var configuration = GatewayConfiguration(
            listen: listen, site: site, catalog: catalogs[0], tls: try tls.identity(), name: tls.name.rawValue)
        configuration.catalogAlternates = Array(catalogs.dropFirst())
        configuration.trustedProxies = trustedProxies
        configuration.defaultImage = defaultImage
        configuration.admissionLimit = admissionLimit
        configuration.readAhead = readAhead
        configuration.memoryCacheBytes = Int(memoryCache.bytes)
        configuration.localCache = localCache
        configuration.attemptTimeout = .seconds(upstreamTimeout)
        configuration.ejection = .seconds(ejection)
        configuration.minimumSendRate.bytesPerSecond = Int(minimumSendRate.bytes)
        configuration.boots.settleQuietTime = .seconds(bootSettle)
        configuration.boots.waitingRetry = .seconds(bootWaitingRetry)
        configuration.boots.bootsPerWorkstation = bootHistory
        configuration.boots.maximumWorkstations = bootWorkstations
        let gateway = try GatewayService(configuration: configuration, logger: logger)
        try await runService(gateway.services, role: .gateway, name: tls.name.rawValue, logger: logger) {
            try await gateway.localAddress()
        }
    }
}
