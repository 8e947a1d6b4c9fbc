import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import SwiftASN1
import X509

/// A TLS connection that writes raw bytes, to send what no well-behaved client would.
enum RawTLSConnection {
    /// How the server ended the connection.
    enum Outcome: Equatable {
        /// It closed it (EOF or a TLS alert) after sending this many bytes.
        case closed(receivedBytes: Int)
    }

    /// Connects (with `identity`'s certificate, or none), writes `bytes` after the handshake and
    /// reads until the server closes. Fails the test's time limit if the server never closes.
    static func send(
        _ bytes: [UInt8], to target: HostPort, trusting authority: CertificateAuthority, identity: TLSIdentity?
    ) async throws -> Outcome {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv13
        configuration.applicationProtocols = ["icbd/1"]
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates([
            try NIOSSLCertificate(bytes: Array(authority.certificate.serializeAsPEM().pemString.utf8), format: .pem)
        ])
        if let identity {
            configuration.certificateChain = try identity.certificateChain.map {
                .certificate(try NIOSSLCertificate(bytes: Array($0.serializeAsPEM().pemString.utf8), format: .pem))
            }
            configuration.privateKey = .privateKey(try identity.nioPrivateKey)
        }
        let context = try NIOSSLContext(configuration: configuration)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: target.host, port: target.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var received = 0
            do {
                try await outbound.write(ByteBuffer(bytes: bytes))
                for try await buffer in inbound { received += buffer.readableBytes }
            } catch {
                // A TLS alert or a reset: the server closed the connection.
            }
            return .closed(receivedBytes: received)
        }
    }
}
