import ICBDCore
import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals

/// Runs a node's services in the process's one `ServiceGroup`, which stops them gracefully (in
/// reverse order) on SIGTERM and SIGINT, and announces the node's address once it listens; with
/// `metrics`, serves the process's metrics beside them.
func runService(
    _ parts: [any Service],
    role: Role,
    name: String,
    metrics: MetricsEndpoint? = nil,
    logger: Logger,
    address: @escaping @Sendable () async throws -> SocketAddress
) async throws {
    var services = parts.map { ServiceGroupConfiguration.ServiceConfiguration(service: $0) }
    services.append(
        .init(service: Announcer(role: role, name: name, logger: logger, address: address), successTerminationBehavior: .ignore))
    if let metrics { services.insert(.init(service: metrics), at: 0) }
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

/// Runs one service as ``runService(_:role:name:metrics:logger:address:)`` runs a node's parts.
func runService(
    _ service: some Service,
    role: Role,
    name: String,
    metrics: MetricsEndpoint? = nil,
    logger: Logger,
    address: @escaping @Sendable () async throws -> SocketAddress
) async throws {
    try await runService([service], role: role, name: name, metrics: metrics, logger: logger, address: address)
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
