import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS

/// The baseline of the RPC throughput benchmark: the same bytes over a bare swift-nio-ssl
/// connection (same certificates, same verification), written in 1 MiB buffers with the
/// channel's writability as back-pressure, counted by the reader.
enum PlainTLSCopy {
    /// Copies `totalBytes` from a server to a client on loopback; returns the elapsed time.
    static func run(
        totalBytes: Int, server: TLSIdentity, client: TLSIdentity, loops: BenchEventLoops, logger: Logger
    ) async throws -> Duration {
        let serverTLS = try TLSContexts(server: server)
        let clientTLS = try TLSContexts(client: client)
        let listener = try await ServerBootstrap(group: loops.server)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 1 << 20, high: 4 << 20))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(serverTLS.makeServerHandler(logger: logger))
                    try channel.pipeline.syncOperations.addHandler(Blaster(totalBytes: totalBytes))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { listener.close(promise: nil) }
        let done = loops.client.any().makePromise(of: Int.self)
        let start = ContinuousClock.now
        _ = try await ClientBootstrap(group: loops.client)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        clientTLS.makeClientHandler(host: "127.0.0.1", expectedRole: server.identity.role, logger: logger))
                    try channel.pipeline.syncOperations.addHandler(Counter(done: done))
                }
            }
            .connect(host: "127.0.0.1", port: listener.localAddress?.port ?? 0).get()
        let received = try await done.futureResult.get()
        guard received == totalBytes else { throw BenchError("plain TLS copy received \(received) of \(totalBytes) bytes") }
        return ContinuousClock.now - start
    }

    private final class Blaster: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let totalBytes: Int
        var sent = 0
        var started = false
        let chunk = ByteBuffer(repeating: 0xA5, count: 1 << 20)

        init(totalBytes: Int) { self.totalBytes = totalBytes }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if let event = event as? TLSUserEvent, case .handshakeCompleted = event {
                started = true
                pump(context)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if started { pump(context) }
        }

        private func pump(_ context: ChannelHandlerContext) {
            while context.channel.isWritable && sent < totalBytes {
                let size = min(chunk.readableBytes, totalBytes - sent)
                sent += size
                guard let slice = chunk.getSlice(at: 0, length: size) else { return }
                if sent < totalBytes {
                    context.writeAndFlush(wrapOutboundOut(slice), promise: nil)
                } else {
                    // Close once the last byte is written, not before (close drops pending writes).
                    let channel = context.channel
                    context.writeAndFlush(wrapOutboundOut(slice)).whenComplete { _ in channel.close(promise: nil) }
                }
            }
        }
    }

    private final class Counter: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<Int>
        var received = 0

        init(done: EventLoopPromise<Int>) { self.done = done }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += unwrapInboundIn(data).readableBytes
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.succeed(received)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            // The sender closing its side ends the copy; count what arrived.
            context.close(promise: nil)
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One event loop for the server side and one for the client side, so that in both measured
/// paths encryption and decryption run on different threads, whatever NIO's placement.
struct BenchEventLoops {
    let server = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let client = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    func shutdown() async throws {
        try await server.shutdownGracefully()
        try await client.shutdownGracefully()
    }
}
