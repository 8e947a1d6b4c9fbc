import ArgumentParser
import Gateway
import ICBDCore

/// `icbd gateway`: runs the HTTP gateway of a site until SIGTERM or SIGINT.
struct GatewayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the HTTP gateway of a site: listings, iPXE boot scripts and image bytes read from the nearest healthy cache node.")

    @Option(help: "HTTP HOST:PORT to listen on; port 0 picks a free one.")
    var listen: String

    @Option(help: "The site this gateway serves (clients outside every site's CIDRs count as this site's).")
    var site: String

    @Option(help: "The catalog's HOST:PORT; repeat it or give a comma list for several catalog processes, tried in turn.")
    var catalog: [String]

    @Option(name: .customLong("trusted-proxy"), help: "CIDR of a reverse proxy whose X-Forwarded-For is believed (repeatable).")
    var trustedProxies: [String] = []

    @Option(help: "IMAGE[:REF] booted by workstations without an assignment; none: they get 404.")
    var defaultImage: String?

    @Option(help: "Responses reading from upstreams at once; beyond it new ones get 503 with Retry-After.")
    var admissionLimit: Int = 256

    @Option(help: "Chunks read in parallel ahead of the one being sent, per response.")
    var readAhead: Int = 4

    @Option(help: "Recently served chunks kept in memory (e.g. 256MiB; 0 disables).")
    var memoryCache: String = "256MiB"

    @Option(help: "Seconds one upstream read may take before the next node is tried.")
    var upstreamTimeout: Int = 5

    @Option(help: "Seconds a node that failed a read is tried last.")
    var ejection: Int = 30

    @Option(help: "Bytes per second a client must take while response bytes wait for it (e.g. 32KiB; measured over 20 s); slower connections are closed, freeing their admission slot. 0 disables.")
    var minimumSendRate: String = "32KiB"

    @OptionGroup var tls: TLSOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        _ = try makeConfigurationValues()
    }

    private func makeConfigurationValues() throws -> (HostPort, Name, [HostPort], [CIDR], ImageReference?, Int, Int) {
        let listen = try parseHostPort(self.listen, option: "--listen")
        let catalog = try parseCatalogs(self.catalog)
        let site = try parseName(self.site, "--site")
        var proxies: [CIDR] = []
        for text in trustedProxies {
            do { proxies.append(try CIDR(parsing: text)) } catch { throw ValidationError("--trusted-proxy: \(error)") }
        }
        var defaultImage: ImageReference?
        if let text = self.defaultImage {
            do { defaultImage = try ImageReference(parsing: text) } catch { throw ValidationError("--default-image: \(error)") }
        }
        let memory: Int
        do { memory = Int(try ByteSize(parsing: memoryCache).bytes) } catch { throw ValidationError("--memory-cache: \(error)") }
        guard admissionLimit >= 1 else { throw ValidationError("--admission-limit must be at least 1") }
        guard (1...64).contains(readAhead) else { throw ValidationError("--read-ahead must be from 1 to 64 chunks") }
        guard (1...300).contains(upstreamTimeout) else { throw ValidationError("--upstream-timeout must be from 1 to 300 seconds") }
        guard (0...3600).contains(ejection) else { throw ValidationError("--ejection must be from 0 to 3600 seconds") }
        let sendRate: Int
        do { sendRate = Int(try ByteSize(parsing: minimumSendRate).bytes) } catch { throw ValidationError("--minimum-send-rate: \(error)") }
        return (listen, site, catalog, proxies, defaultImage, memory, sendRate)
    }

    func run() async throws {
        let logger = logging.makeLogger(label: "icbd.gateway")
        let (listen, site, catalog, proxies, defaultImage, memory, sendRate) = try makeConfigurationValues()
        var configuration = GatewayConfiguration(listen: listen, site: site, catalog: catalog[0], tls: try tls.identity(), name: tls.name)
        configuration.catalogAlternates = Array(catalog.dropFirst())
        configuration.trustedProxies = proxies
        configuration.defaultImage = defaultImage
        configuration.admissionLimit = admissionLimit
        configuration.readAhead = readAhead
        configuration.memoryCacheBytes = memory
        configuration.attemptTimeout = .seconds(upstreamTimeout)
        configuration.ejection = .seconds(ejection)
        configuration.minimumSendRate.bytesPerSecond = sendRate
        let gateway = try GatewayService(configuration: configuration, logger: logger)
        try await runService(gateway.services, role: .gateway, name: tls.name, logger: logger) {
            try await gateway.localAddress()
        }
    }
}
