import ArgumentParser
import Foundation
import CoreMetrics
import Hummingbird
import ICBDCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// `--metrics HOST:PORT`: where a service serves its Prometheus figures (off when not given).
struct MetricsOptions: ParsableArguments {
    @Option(help: "HOST:PORT to serve Prometheus metrics on at GET /metrics (off when not given).")
    var metrics: HostPort?

    /// The endpoint to run beside the service, when `--metrics` was given. Bootstraps the
    /// process's swift-metrics backend, so call it once per process.
    func endpoint(logger: Logger) -> MetricsEndpoint? {
        metrics.map { MetricsEndpoint(address: $0, logger: logger) }
    }
}

/// Serves every swift-metrics figure of this process (RPC calls, replication, cache, catalog)
/// as Prometheus text at `GET /metrics`, on its own plain-HTTP port for a scraper inside the
/// site's network.
struct MetricsEndpoint: Service {
    let address: HostPort
    let registry = PrometheusCollectorRegistry()
    let logger: Logger

    init(address: HostPort, logger: Logger) {
        self.address = address
        self.logger = logger
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
    }

    func run() async throws {
        let router = Router()
        router.get("metrics") { [registry] _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        let application = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(address.host, port: address.port), serverName: "icbd-metrics"),
            onServerRunning: { [logger, address] channel in
                // Announced like the service's own address, for scripts and tests (port 0).
                let url = "http://\(HostPort(host: address.host, port: channel.localAddress?.port ?? address.port))/metrics"
                FileHandle.standardOutput.write(Data("metrics \(url)\n".utf8))
                logger.info("serving metrics", metadata: ["url": "\(url)"])
            },
            logger: logger)
        try await application.run()
    }
}
