import Foundation
import HTTPTypes
import NIOCore
import NIOHTTPTypes

/// Answers a GET of a file whose bytes need no waiting (``GatewayResponder/immediateAnswer(to:peer:)``)
/// on the event loop that read the request: no task, no hop between threads, head and body
/// written and flushed together. Every other request goes on to the connection's task, which
/// answers it the long way.
///
/// Responses leave in the order their requests came (HTTP/1.1 pipelining): a request is
/// answered here only when every request passed on before it has been answered. And only while
/// the channel is writable: a client that sends requests without reading the answers has its
/// next request passed on, where the connection's writer waits for the socket and stops reading
/// meanwhile, so such a client never makes the gateway hold more than the socket's buffer.
final class ImmediateReadHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let responder: GatewayResponder
    private let serverName: String
    /// Requests passed on whose response has not ended yet.
    private var passedOn = 0
    /// Whether the request being read was answered here: its body and end go nowhere.
    private var answered = false
    private var peer: SocketAddress??
    /// The Date field, formatted once a second.
    private var date: (second: Int, text: String) = (-1, "")

    init(responder: GatewayResponder, serverName: String) {
        self.responder = responder
        self.serverName = serverName
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            if passedOn == 0, context.channel.isWritable, let answer = responder.immediateAnswer(to: request, peer: peerAddress(context)) {
                answered = true
                write(answer, context: context)
            } else {
                answered = false
                passedOn += 1
                context.fireChannelRead(data)
            }
        case .body, .end:
            if !answered { context.fireChannelRead(data) }
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { passedOn -= 1 }
        context.write(data, promise: promise)
    }

    private func write(_ answer: (head: HTTPResponse, body: [ByteBuffer]), context: ChannelHandlerContext) {
        var head = answer.head
        head.headerFields[.date] = currentDate()
        head.headerFields[.server] = serverName
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        for slice in answer.body { context.write(wrapOutboundOut(.body(slice)), promise: nil) }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    private func peerAddress(_ context: ChannelHandlerContext) -> SocketAddress? {
        if let peer { return peer }
        let address = context.channel.remoteAddress
        peer = .some(address)
        return address
    }

    private func currentDate() -> String {
        let now = Date()
        let second = Int(now.timeIntervalSince1970)
        if second != date.second { date = (second, HTTPDate.format(now)) }
        return date.text
    }
}
