import ICBDCore
import ICBDProto
import ICBDRPC
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import SwiftProtobuf

/// A mutual-TLS icbd/1 connection on which the test writes frames as it likes (calls no
/// `RPCClient` would make) and reads the server's frames.
enum FrameConnection {
    typealias Inbound = NIOAsyncChannelInboundStream<RPCFrame>
    typealias Outbound = NIOAsyncChannelOutboundWriter<RPCFrame>

    /// Connects with `identity` (whose trust roots verify the server) and runs `body` with the
    /// connection's frames; closes the connection after.
    static func with<Result: Sendable>(
        _ target: HostPort, identity: TLSIdentity, _ body: (Inbound, Outbound) async throws -> Result
    ) async throws -> Result {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.applicationProtocols = ["icbd/1"]
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(
            try identity.trustRoots.map { try NIOSSLCertificate(bytes: Array($0.serializeAsPEM().pemString.utf8), format: .pem) })
        configuration.certificateChain = try identity.certificateChain.map {
            .certificate(try NIOSSLCertificate(bytes: Array($0.serializeAsPEM().pemString.utf8), format: .pem))
        }
        configuration.privateKey = .privateKey(identity.nioPrivateKey)
        let context = try NIOSSLContext(configuration: configuration)
        // Its own event loop: encrypting gigabytes must not delay the other tests' connections.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await run(target, context: context, group: group, body)
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private static func run<Result: Sendable>(
        _ target: HostPort, context: NIOSSLContext, group: any EventLoopGroup, _ body: (Inbound, Outbound) async throws -> Result
    ) async throws -> Result {
        let channel = try await ClientBootstrap(group: group)
            .connect(host: target.host, port: target.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let sync = channel.pipeline.syncOperations
                    try sync.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    try sync.addHandler(FrameDecoder())
                    try sync.addHandler(FrameEncoder())
                    return try NIOAsyncChannel<RPCFrame, RPCFrame>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in try await body(inbound, outbound) }
    }
}

extension RPCFrame {
    /// The Open of a call of `method` on `stream`.
    static func open(_ stream: UInt32, _ method: String) -> RPCFrame {
        RPCFrame(stream: stream, kind: .open(Icbd_Rpc_V1_Open.with { $0.method = method }))
    }

    /// A request message of `size` bytes that decodes as any message: one unknown field 15
    /// holding zeros.
    static func filler(_ stream: UInt32, size: Int) -> RPCFrame {
        // Key, varint length, zeros: the varint takes as many bytes as the length needs.
        let length = (1...5).map { size - 1 - $0 }.first { $0 >= 0 && varintSize($0) == size - 1 - $0 }!
        var message = ByteBuffer()
        ProtobufWire.writeLengthDelimitedKey(field: 15, into: &message)
        ProtobufWire.writeVarint(UInt64(length), into: &message)
        message.writeRepeatingByte(0, count: length)
        return RPCFrame(stream: stream, kind: .message(message))
    }

    private static func varintSize(_ value: Int) -> Int {
        var buffer = ByteBuffer()
        ProtobufWire.writeVarint(UInt64(value), into: &buffer)
        return buffer.readableBytes
    }
}

extension RPCFrame {
    /// This frame on `stream` instead.
    func on(_ stream: UInt32) -> RPCFrame {
        var frame = self
        frame.stream = stream
        return frame
    }
}

extension NIOAsyncChannelInboundStream<RPCFrame>.AsyncIterator {
    /// The next Status frame's stream and code, skipping other frames; nil when the connection
    /// closed.
    mutating func nextStatus() async throws -> (stream: UInt32, code: UInt32)? {
        while let frame = try await next() {
            if case .status(let status) = frame.kind { return (frame.stream, status.code) }
        }
        return nil
    }
}
