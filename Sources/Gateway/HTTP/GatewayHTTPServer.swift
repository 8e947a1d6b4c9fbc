import Hummingbird
import ICBDCore
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// The gateway's HTTP server: Hummingbird's `Application` over the ``GatewayResponder``, its
/// connections built by ``GatewayHTTP1Channel`` (bounded request heads, the slow-reader guard,
/// reads answered on the event loop when they need no waiting). A `Service`: at graceful
/// shutdown it stops accepting and lets requests in flight finish. Says where it listens once
/// it does.
final class GatewayHTTPServer: Service, Sendable {
    /// The `Server` field of every answer.
    static let serverName = "icbd-gateway"

    private let configuration: GatewayConfiguration
    private let responder: GatewayResponder
    private let logger: Logger
    private let slowReaderClosed: @Sendable (SocketAddress?, Int, Int) -> Void
    private let boundAddress = Mutex<SocketAddress?>(nil)
    private let addressWaiters = Mutex<[CheckedContinuation<SocketAddress, any Error>]>([])

    init(
        configuration: GatewayConfiguration, responder: GatewayResponder, logger: Logger,
        slowReaderClosed: @escaping @Sendable (SocketAddress?, Int, Int) -> Void
    ) {
        self.configuration = configuration
        self.responder = responder
        self.logger = logger
        self.slowReaderClosed = slowReaderClosed
    }

    /// The HTTP address, once the server listens; fails if it stops first.
    func localAddress() async throws -> SocketAddress {
        try await withCheckedThrowingContinuation { continuation in
            if let address = boundAddress.withLock({ $0 }) {
                continuation.resume(returning: address)
            } else {
                addressWaiters.withLock { $0.append(continuation) }
                // The server may have bound in between.
                if let address = boundAddress.withLock({ $0 }) { resumeWaiters(with: .success(address)) }
            }
        }
    }

    func run() async throws {
        var limits = NIOHTTPDecoderLimitConfiguration()
        (limits.maxHeaderFieldSize, limits.maxHeaderListSize, limits.maxHeaderFieldCount) = (32 << 10, 64 << 10, 100)
        let (gateway, decoderLimits, rate, slowReaderClosed) = (responder, limits, configuration.minimumSendRate, slowReaderClosed)
        let application = Application(
            responder: responder,
            server: HTTPServerBuilder { respond in
                GatewayHTTP1Channel(
                    responder: respond, gateway: gateway, serverName: Self.serverName, minimumSendRate: rate,
                    slowReaderClosed: slowReaderClosed, idleTimeout: .seconds(120), decoderLimits: decoderLimits)
            },
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: Self.serverName),
            onServerRunning: { [self] channel in
                guard let address = channel.localAddress else { return }
                boundAddress.withLock { $0 = address }
                resumeWaiters(with: .success(address))
            },
            logger: Logger(label: logger.label) { [logger] _ in RequestLogHandler(base: logger.handler) })
        defer { resumeWaiters(with: .failure(CancellationError())) }
        try await application.run()
    }

    private func resumeWaiters(with result: Result<SocketAddress, any Error>) {
        let waiters = addressWaiters.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}
