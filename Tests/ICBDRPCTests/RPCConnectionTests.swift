import Foundation
import ICBDTestSupport
import ICBDCore
import ICBDProto
import SwiftProtobuf
import ICBDRPC
import Synchronization
import Testing

@Suite("RPC connections: flow control, protocol errors, authentication")
struct RPCConnectionTests {
    @Test func slowConsumerBoundsWhatTheSenderHasBuffered() async throws {
        let server = try TestServer()
        let messageSize = 1 << 20
        let count = 256  // 256 MiB
        try await server.run {
            let (received, maximumAhead) = try await server.withClient { client in
                try await client.serverStreaming(
                    TestService.stream, StreamRequest.with { $0.count = UInt32(count); $0.size = UInt32(messageSize) }
                ) { responses in
                    var received = 0
                    var maximumAhead = 0
                    for try await payload in responses {
                        #expect(payload.data.count == messageSize)
                        received += 1
                        // Messages the server produced that this reader has not consumed yet.
                        maximumAhead = max(maximumAhead, server.probes.produced.load(ordering: .relaxed) - received)
                        if received % 16 == 0 { try await Task.sleep(for: .milliseconds(20)) }  // a slow reader
                    }
                    return (received, maximumAhead)
                }
            }
            #expect(received == count)
            // The 4 MiB window holds 4 messages; one more may be in the reader's hands and one
            // admitted as the window refills.
            #expect(maximumAhead <= (4 << 20) / messageSize + 2, "sender ran \(maximumAhead) messages ahead")
            #expect(maximumAhead >= 2, "the reader never fell behind, so the test proved nothing")
        }
    }

    @Test func oversizedFrameLengthClosesOnlyThatConnection() async throws {
        let server = try TestServer()
        try await server.run {
            try await server.withClient { client in
                _ = try await client.unary(TestService.echo, EchoRequest())
                let outcome = try await RawTLSConnection.send(
                    [0xFF, 0xFF, 0xFF, 0xFF], to: try await server.address(), trusting: server.pki.authority,
                    identity: try server.pki.identity(.admin, "raw"))
                #expect(outcome == .closed(receivedBytes: 0))
                // The healthy connection keeps working.
                let response = try await client.unary(TestService.echo, EchoRequest.with { $0.payload = Data("still".utf8) })
                #expect(response.payload == Data("still".utf8))
            }
        }
    }

    @Test func zeroFrameLengthClosesTheConnection() async throws {
        let server = try TestServer()
        try await server.run {
            let outcome = try await RawTLSConnection.send(
                [0, 0, 0, 0], to: try await server.address(), trusting: server.pki.authority,
                identity: try server.pki.identity(.admin, "raw"))
            #expect(outcome == .closed(receivedBytes: 0))
        }
    }

    @Test(arguments: 0..<8)
    func randomBytesCloseTheConnectionAndTheServerKeepsServing(seed: UInt64) async throws {
        var generator = SeededGenerator(seed: seed)
        // A plausible length (so the server buffers and decodes) followed by that many random bytes.
        let length = Int.random(in: 8...4096, using: &generator)
        var bytes = withUnsafeBytes(of: UInt32(length).bigEndian) { Array($0) }
        bytes += (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let server = try TestServer()
        try await server.run {
            let outcome = try await RawTLSConnection.send(
                bytes, to: try await server.address(), trusting: server.pki.authority,
                identity: try server.pki.identity(.admin, "raw"))
            #expect(outcome == .closed(receivedBytes: 0))
            let response = try await server.withClient { client in try await client.unary(TestService.echo, EchoRequest()) }
            #expect(response.payload.isEmpty)
        }
    }

    @Test func clientWithoutCertificateIsRefused() async throws {
        let server = try TestServer()
        try await server.run {
            let outcome = try await RawTLSConnection.send(
                FrameBytes.healthCheck, to: try await server.address(), trusting: server.pki.authority, identity: nil)
            #expect(outcome == .closed(receivedBytes: 0))
        }
    }

    @Test func certificateFromAnotherCAIsRefused() async throws {
        let server = try TestServer()
        let stranger = try TestPKI().identity(.admin, "stranger")
        // The stranger trusts the real CA, so only the server's check can refuse it.
        let identity = try TLSIdentity(
            trustRoots: [server.pki.authority.certificate], certificateChain: stranger.certificateChain,
            privateKeyPEM: try strangerKeyPEM(stranger))
        try await server.run {
            await expectRPCError(.unavailable) {
                _ = try await server.withClient(identity) { client in
                    try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                }
            }
        }
    }

    @Test func expiredCertificateIsRefused() async throws {
        let server = try TestServer()
        let expired = try server.pki.identity(
            .admin, "expired", notValidBefore: Date().addingTimeInterval(-7200), notValidAfter: Date().addingTimeInterval(-3600))
        try await server.run {
            await expectRPCError(.unavailable) {
                _ = try await server.withClient(expired) { client in
                    try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                }
            }
        }
    }

    @Test func serverWithTheWrongRoleIsRefusedByTheClient() async throws {
        let server = try TestServer()
        try await server.run {
            let configuration = try await server.clientConfiguration(try server.pki.identity(.admin, "admin"), expectedRole: .cache)
            await expectRPCError(.unavailable) {
                _ = try await withRPCClient(configuration, logger: server.logger) { client in
                    try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                }
            }
        }
    }

    @Test func callsFailFastWhileThePeerIsDown() async throws {
        let server = try TestServer()
        var configuration = RPCClientConfiguration(
            target: HostPort(host: "127.0.0.1", port: 1), expectedRole: .catalog, tls: try server.pki.identity(.admin, "admin"))
        // A backoff far longer than a loaded machine can take between the two calls.
        configuration.initialBackoff = .seconds(60)
        configuration.maximumBackoff = .seconds(60)
        try await withRPCClient(configuration, logger: server.logger) { client in
            // The first call tries to connect and fails; the second fails without trying (backoff).
            await expectRPCError(.unavailable) { _ = try await client.unary(TestService.echo, EchoRequest()) }
            let error = await expectRPCError(.unavailable) { _ = try await client.unary(TestService.echo, EchoRequest()) }
            #expect(error?.message.contains("retrying in") == true)
        }
    }

    @Test func pingMeasuresARoundTrip() async throws {
        let server = try TestServer()
        try await server.run {
            let rtt = try await server.withClient { client in try await client.ping() }
            #expect(rtt > .zero)
        }
    }
}

/// The key of an identity, for rebuilding it with other trust roots.
private func strangerKeyPEM(_ identity: TLSIdentity) throws -> String {
    identity.privateKeyPEM
}

/// Encoded frames for raw connections.
enum FrameBytes {
    /// Open + message + End of a Health/Check call on stream 1.
    static var healthCheck: [UInt8] {
        var open = Icbd_Rpc_V1_Open()
        open.method = HealthMethods.check.path
        let frames: [Icbd_Rpc_V1_Frame] = [
            .with { $0.stream = 1; $0.open = open },
            .with { $0.stream = 1; $0.message = Data() },
            .with { $0.stream = 1; $0.end = Icbd_Rpc_V1_End() },
        ]
        return frames.flatMap { frame -> [UInt8] in
            let body: [UInt8] = (try? frame.serializedBytes()) ?? []
            return withUnsafeBytes(of: UInt32(body.count).bigEndian) { Array($0) } + body
        }
    }
}
