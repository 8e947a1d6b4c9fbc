import Hummingbird
import ICBDCore
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization

/// The gateway's HTTP server: Hummingbird's `Application` over the ``GatewayResponder``, with
/// the slow-reader guard and bounded request heads. A `Service`: at graceful shutdown it stops
/// accepting and lets requests in flight finish. Says where it listens once it does.
final class GatewayHTTPServer: Service, Sendable {
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
        let application = Application(
            responder: responder,
            server: .http1(
                configuration: HTTP1Channel.Configuration(
                    additionalChannelHandlers: [SlowReaderGuard(rate: self.configuration.minimumSendRate, onClose: self.slowReaderClosed)],
                    idleTimeout: .seconds(120),
                    httpDecoderConfiguration: .init(maxHeaderFieldSize: 32 << 10, maxHeaderListSize: 64 << 10, maxHeaderFieldCount: 100))),
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listen.host, port: configuration.listen.port), serverName: "icbd-gateway"),
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
