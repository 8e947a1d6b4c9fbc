import Logging
import NIOCore
import Synchronization

/// Which accepted connections the server takes on: at most `limit` open at once, counted from
/// accept, so a connection that never finishes its handshake holds a place too. A connection
/// over the limit is closed before a byte of it is read; refusals are counted
/// (`icbd_rpc_server_connections_refused_total`) and logged, at most once per ten seconds.
///
/// It sits on the listening channel ahead of NIO's accept handling, so it sees every accepted
/// channel before the channel is set up.
final class ConnectionAdmission: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    private let limit: Int
    private let open = Atomic<Int>(0)
    private let logger: Logger
    private let refusals = LogThrottle()

    init(limit: Int, logger: Logger) {
        self.limit = limit
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = unwrapInboundIn(data)
        guard open.wrappingAdd(1, ordering: .relaxed).newValue <= limit else {
            open.wrappingSubtract(1, ordering: .relaxed)
            refuse(channel)
            return
        }
        channel.closeFuture.whenComplete { _ in self.open.wrappingSubtract(1, ordering: .relaxed) }
        context.fireChannelRead(data)
    }

    private func refuse(_ channel: any Channel) {
        channel.close(promise: nil)
        RPCServerMetrics.connectionRefused()
        if let heldBack = refusals.admit() {
            logger.warning(
                "connection refused: the server has as many connections as it takes",
                metadata: [
                    "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "unknown")", "limit": "\(limit)",
                    "refusals_not_logged": "\(heldBack)",
                ])
        }
    }
}

extension ConnectionPipeline.Connection {
    /// Closes the connection unless its peer is authenticated within `timeout` of now.
    func closeUnlessAuthenticated(within timeout: Duration, channel: any Channel) {
        let deadline = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            RPCServerMetrics.handshakeTimedOut()
            channel.close(promise: nil)
        }
        identity.whenComplete { _ in deadline.cancel() }
    }
}
