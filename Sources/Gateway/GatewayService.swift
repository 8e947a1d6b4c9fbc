import CatalogClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The HTTP gateway of one site (docs/gateway.md "HTTP surface"): keeps a live view of the
/// catalog, serves listings, boot scripts and file bytes read chunk by chunk from the nearest
/// healthy cache node (then other sites' caches, then a repository), registers with the
/// catalog as a `gateway` node and heartbeats.
public final class GatewayService: Service, Sendable {
    public let configuration: GatewayConfiguration
    private let catalog: RPCClient
    private let view: CatalogView
    private let clients: UpstreamClients
    private let responder: GatewayResponder
    private let metrics: GatewayMetrics
    private let logger: Logger
    private let boundAddress = Mutex<SocketAddress?>(nil)
    private let addressWaiters = Mutex<[CheckedContinuation<SocketAddress, any Error>]>([])

    public init(configuration: GatewayConfiguration, logger: Logger) throws {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.name)"
        self.logger = logger
        var catalogClient = RPCClientConfiguration(target: configuration.catalog, expectedRole: .catalog, tls: configuration.tls)
        catalogClient.alternates = configuration.catalogAlternates
        catalog = try RPCClient(configuration: catalogClient, logger: logger)
        view = CatalogView(catalog: catalog, logger: logger)
        clients = UpstreamClients(tls: configuration.tls, logger: logger)
        let metrics = GatewayMetrics()
        self.metrics = metrics
        let health = PassiveHealth(ejection: configuration.ejection)
        let memory = ChunkMemoryCache(capacityBytes: configuration.memoryCacheBytes)
        responder = GatewayResponder(
            configuration: configuration, view: view,
            manifests: ManifestStore(catalog: catalog, capacityBytes: configuration.manifestCacheBytes),
            chunks: ChunkSource(
                view: view, clients: clients, health: health, memory: memory,
                blocks: VerifiedBlocks(capacity: configuration.verifiedBlockChunks), metrics: metrics,
                attemptTimeout: configuration.attemptTimeout, logger: logger),
            memory: memory, admission: AdmissionGate(limit: configuration.admissionLimit), health: health, metrics: metrics, logger: logger)
    }

    /// The HTTP address, once the gateway listens.
    public func localAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            if let address = boundAddress.withLock({ $0 }) {
                continuation.resume(returning: address)
            } else {
                addressWaiters.withLock { $0.append(continuation) }
                // The server may have bound in between.
                if let address = boundAddress.withLock({ $0 }) { resumeWaiters(with: address) }
            }
        }
    }

    private func resumeWaiters(with address: SocketAddress) {
        let waiters = addressWaiters.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.resume(returning: address) }
    }

    public func run() async throws {
        let application = Application(
            responder: responder,
            server: .http1(
                configuration: HTTP1Channel.Configuration(
                    additionalChannelHandlers: [
                        SlowReaderGuard(rate: self.configuration.minimumSendRate) { [self] in slowReaderClosed(peer: $0, taken: $1, waiting: $2) }
                    ],
                    idleTimeout: .seconds(120),
                    httpDecoderConfiguration: .init(maxHeaderFieldSize: 32 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: "icbd-gateway"),
            onServerRunning: { [self] channel in
                guard let address = channel.localAddress else { return }
                boundAddress.withLock { $0 = address }
                resumeWaiters(with: address)
            },
            logger: Logger(label: logger.label) { [logger] _ in RequestLogHandler(base: logger.handler) })
        defer {
            let waiters = addressWaiters.withLock { waiters in
                defer { waiters = [] }
                return waiters
            }
            for waiter in waiters { waiter.resume(throwing: CancellationError()) }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.catalog.run() }
            group.addTask { await self.view.run() }
            group.addTask { await self.view.refreshCacheUsage(every: self.configuration.cacheUsageRefresh) }
            group.addTask { await self.clients.run() }
            group.addTask { await self.maintainRegistration() }
            group.addTask {
                // No RPC server here, but its clients refuse revoked cache nodes too.
                await RevocationFollower(list: self.configuration.tls.revocations, catalog: self.catalog, logger: self.logger).run()
            }
            group.addTask { try await application.run() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// A client took response bytes slower than ``GatewayConfiguration/minimumSendRate``; its
    /// connection is being closed.
    private func slowReaderClosed(peer: SocketAddress?, taken: Int, waiting: Int) {
        metrics.slowReaderClosed()
        logger.warning(
            "closing the connection of a client that reads slower than the minimum rate",
            metadata: [
                "peer": "\(peer?.description ?? "unknown")", "taken_bytes": "\(taken)", "waiting_bytes": "\(waiting)",
                "minimum_rate": "\(configuration.minimumSendRate.bytesPerSecond) B/s over \(configuration.minimumSendRate.window)",
            ])
    }

    /// Registers as a gateway node (with its HTTP address) and heartbeats until cancelled.
    private func maintainRegistration() async {
        var registered = false
        while !Task.isCancelled {
            do {
                if !registered {
                    let address = try await localAddress()
                    var request = Icbd_Catalog_V1_RegisterNodeRequest()
                    request.name = configuration.name
                    request.role = .gateway
                    request.site = configuration.site.rawValue
                    request.httpAddress = HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0).description
                    request.heartbeatTtlMs = (configuration.heartbeatInterval * 3).wholeMilliseconds
                    _ = try await catalog.unary(CatalogMethods.registerNode, request, options: RPCCallOptions(timeout: .seconds(5)))
                    registered = true
                    logger.info("registered with the catalog", metadata: ["site": "\(configuration.site)", "http": "\(request.httpAddress)"])
                } else {
                    _ = try await catalog.unary(
                        CatalogMethods.heartbeat, .with { $0.name = configuration.name }, options: RPCCallOptions(timeout: .seconds(5)))
                }
            } catch let error as RPCError where error.code == .notFound {
                registered = false
                continue
            } catch {
                if Task.isCancelled { return }
                logger.warning("catalog registration failed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }
}
