import HTTPTypes
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// The gateway's HTTP/1 connections: the pipeline of Hummingbird's `HTTP1Channel` (NIO's HTTP/1
/// codec, then HTTPTypes' parts, the ``SlowReaderGuard`` and Hummingbird's connection state:
/// idle timeout, graceful close), then the ``ImmediateReadHandler``, then the connection's task,
/// which runs Hummingbird's request loop for every request not answered at once.
struct GatewayHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let gateway: GatewayResponder
    let serverName: String
    let minimumSendRate: MinimumSendRate
    let slowReaderClosed: @Sendable (SocketAddress?, Int, Int) -> Void
    let idleTimeout: Duration
    let decoderLimits: NIOHTTPDecoderLimitConfiguration

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false,  // the handler below and the request loop keep the order
                withErrorHandling: false,  // Hummingbird's request loop answers parse errors
                withOutboundHeaderValidation: false,  // HTTPTypes validated the fields
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: decoderLimits)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandler(SlowReaderGuard(rate: minimumSendRate, onClose: slowReaderClosed))
            try pipeline.addHandler(HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
            try pipeline.addHandler(ImmediateReadHandler(responder: gateway, serverName: serverName))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}
