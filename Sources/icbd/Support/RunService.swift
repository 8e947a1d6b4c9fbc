import ICBDCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Runs one service in a `ServiceGroup` that stops gracefully on SIGTERM and SIGINT, and
/// announces its address once it listens; with `metrics`, serves the process's metrics beside it.
/// `dependencies` (a database's connection pool) start before the service and stop after it.
func runService(
    _ service: some Service,
    dependencies: [any Service] = [],
    role: Role,
    name: String,
    metrics: MetricsEndpoint? = nil,
    logger: Logger,
    address: @escaping @Sendable () async throws -> SocketAddress
) async throws {
    var services: [ServiceGroupConfiguration.ServiceConfiguration] = dependencies.map { .init(service: $0) } + [
        .init(service: service),
        .init(service: Announcer(role: role, name: name, logger: logger, address: address), successTerminationBehavior: .ignore),
    ]
    if let metrics { services.append(.init(service: metrics)) }
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    try await group.run()
    logger.info("stopped", metadata: ["role": "\(role)", "name": "\(name)"])
}

/// Waits for the service to listen and prints its address.
private struct Announcer: Service {
    let role: Role
    let name: String
    let logger: Logger
    let address: @Sendable () async throws -> SocketAddress

    func run() async throws {
        announceListening(role: role, name: name, address: try await address(), logger: logger)
    }
}
