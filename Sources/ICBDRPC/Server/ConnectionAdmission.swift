import ICBDCore
import Logging
import NIOCore

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

    private let open: BoundedCount
    private let logger: Logger
    private let refusals = LogThrottle()

    init(limit: Int, logger: Logger) {
        open = BoundedCount(limit: limit)
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let channel = unwrapInboundIn(data)
        guard open.take() else { return refuse(channel) }
        channel.closeFuture.whenComplete { _ in self.open.giveBack() }
        context.fireChannelRead(data)
    }

    private func refuse(_ channel: any Channel) {
        channel.close(promise: nil)
        RPCServerMetrics.connectionRefused()
        if let heldBack = refusals.admit() {
            logger.warning(
                "connection refused: the server has as many connections as it takes",
                metadata: [
                    "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "unknown")", "limit": "\(open.limit)",
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
