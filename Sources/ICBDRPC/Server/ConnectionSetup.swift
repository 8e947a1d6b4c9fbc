import ICBDCore
import Logging
import NIOCore
import NIOSSL
import NIOTLS
import SwiftASN1
import X509

/// Waits for the TLS handshake, checks ALPN and reads the peer's identity from its (already
/// verified) certificate. Completes `identity` with it, or fails it when the connection closes.
final class HandshakeObserver: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any

    let identity: EventLoopPromise<PeerIdentity>

    init(identity: EventLoopPromise<PeerIdentity>) {
        self.identity = identity
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? TLSUserEvent, case .handshakeCompleted(let negotiated) = event {
            do {
                guard negotiated == TLSContexts.alpn else {
                    throw TLSIdentityError("peer did not negotiate ALPN \(TLSContexts.alpn) (got \(negotiated ?? "none"))")
                }
                let handler = try context.pipeline.syncOperations.handler(type: NIOSSLHandler.self)
                guard let certificate = handler.peerCertificate else { throw TLSIdentityError("peer sent no certificate") }
                identity.succeed(try PeerIdentity(certificate: Certificate(derEncoded: certificate.toDERBytes())))
            } catch {
                identity.fail(error)
                context.close(promise: nil)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        identity.fail(ChannelError.alreadyClosed)
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // A channel that never connected is torn down without channelInactive.
        identity.fail(ChannelError.alreadyClosed)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        identity.fail(error)
        context.fireErrorCaught(error)
    }
}

/// Closes a connection on which no frame arrived for the idle timeout.
final class IdleConnectionCloser: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = RPCFrame

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case IdleStateHandler.IdleStateEvent.read = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}

/// The channel pipeline of an icbd/1 connection, after the TLS handler.
enum ConnectionPipeline {
    /// Write-buffer watermarks: enough for a few 1 MiB messages in flight, so producers keep the
    /// socket busy, and small enough to bound what one connection buffers.
    static let writeBufferWaterMark = ChannelOptions.Types.WriteBufferWaterMark(low: 1 << 20, high: 4 << 20)

    /// Adds framing, idle handling and the handshake observer. Returns the channel's inbound
    /// frames (frames are written with a ``FrameWriter``) and the future identity of the peer.
    static func configure(
        _ channel: any Channel,
        tls: any ChannelHandler,
        idleTimeout: Duration
    ) throws -> Connection {
        let identity = channel.eventLoop.makePromise(of: PeerIdentity.self)
        let sync = channel.pipeline.syncOperations
        try sync.addHandler(tls)
        try sync.addHandler(HandshakeObserver(identity: identity))
        try sync.addHandler(FrameDecoder())
        try sync.addHandler(FrameEncoder())
        try sync.addHandler(IdleStateHandler(readTimeout: TimeAmount(idleTimeout)))
        try sync.addHandler(IdleConnectionCloser())
        let gate = WritabilityGate()
        try sync.addHandler(gate)
        let asyncChannel = try NIOAsyncChannel<RPCFrame, Never>(
            wrappingChannelSynchronously: channel,
            configuration: .init(backPressureStrategy: .init(lowWatermark: 4, highWatermark: 16))
        )
        return Connection(
            channel: asyncChannel, writer: FrameWriter(channel: channel, gate: gate), identity: identity.futureResult)
    }

    /// A set-up connection, not yet past its handshake.
    struct Connection: Sendable {
        let channel: NIOAsyncChannel<RPCFrame, Never>
        let writer: FrameWriter
        let identity: EventLoopFuture<PeerIdentity>
    }
}
