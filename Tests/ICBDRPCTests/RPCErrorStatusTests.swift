import Foundation
import ICBDCore
import ICBDProto
import SwiftProtobuf
import ICBDRPC
import Logging
import Testing

@Suite("RPC status codes")
struct RPCErrorStatusTests {
    @Test func roleNotAllowedIsPermissionDenied() async throws {
        let server = try TestServer()
        try await server.run {
            let error = await expectRPCError(.permissionDenied) {
                _ = try await server.withClient(try server.pki.identity(.cache, "cache-1")) { client in
                    try await client.unary(TestService.adminOnly, EchoRequest())
                }
            }
            #expect(error?.message.contains("icbd://cache/cache-1") == true)
            // The same method works for its role.
            _ = try await server.withClient { client in try await client.unary(TestService.adminOnly, EchoRequest()) }
        }
    }

    @Test func unknownMethodIsUnimplemented() async throws {
        let server = try TestServer()
        try await server.run {
            let missing = RPCMethod<EchoRequest, EchoResponse>(
                service: TestService.service, method: "NoSuchMethod", kind: .unary, allowedRoles: [])
            let error = await expectRPCError(.unimplemented) {
                _ = try await server.withClient { client in try await client.unary(missing, EchoRequest()) }
            }
            #expect(error?.message.contains("NoSuchMethod") == true)
        }
    }

    @Test func undecodableRequestIsInvalidArgument() async throws {
        let server = try TestServer()
        try await server.run {
            // Field 1 holds bytes that are not UTF-8, where Named expects a string: undecodable.
            let mistyped = RPCMethod<EchoRequest, EchoResponse>(
                service: TestService.service, method: "Named", kind: .unary, allowedRoles: [])
            try await server.withClient { client in
                let valid = try await client.unary(mistyped, EchoRequest.with { $0.payload = Data("ok".utf8) })
                #expect(valid.payload == Data("ok".utf8))
                let error = await expectRPCError(.invalidArgument) {
                    _ = try await client.unary(mistyped, EchoRequest.with { $0.payload = Data([0xFF, 0xFE]) })
                }
                #expect(error?.message.contains("icbd.rpc.v1.Open") == true)
            }
        }
    }

    @Test func plainSwiftErrorReachesTheCallerAsInternalWithoutItsText() async throws {
        let log = RecordingLogHandler()
        let server = try TestServer(log: log)
        try await server.run {
            let error = await expectRPCError(.internal) {
                _ = try await server.withClient { client in try await client.unary(TestService.fail, EchoRequest()) }
            }
            let message = try #require(error?.message)
            #expect(!message.contains("secret.db") && !message.contains("Fault") && !message.contains("StoreBackend"), "\(message)")
            // The caller gets an id to quote; the server's log has the detail under it.
            let id = try #require(message.firstMatch(of: /internal error \(logged as ([0-9a-f]{8})\)/)?.1)
            let logged = log.lines.filter { $0.metadata["error_id"]?.description == String(id) }
            #expect(logged.count == 1)
            #expect(logged.first?.level == .error)
            #expect(logged.first?.metadata["error"]?.description == TestService.Fault.text)
        }
    }

    @Test func deadlineStopsTheHandler() async throws {
        let server = try TestServer()
        try await server.run {
            await expectRPCError(.deadlineExceeded) {
                _ = try await server.withClient { client in
                    try await client.unary(TestService.hang, EchoRequest(), options: RPCCallOptions(timeout: .milliseconds(200)))
                }
            }
            var observed = server.probes.cancellations.makeAsyncIterator()
            #expect(await observed.next() == TestService.hang.path)
        }
    }

    @Test func cancelStopsTheHandler() async throws {
        let server = try TestServer()
        try await server.run {
            try await server.withClient { client in
                let (started, markStarted) = AsyncStream<Void>.makeStream()
                let call = Task {
                    try await client.serverStreaming(TestService.hangStream, StreamRequest()) { responses in
                        for try await _ in responses { markStarted.yield() }
                    }
                }
                // Once the handler has sent its first message, cancel the caller's task: the
                // client sends Cancel and the server must cancel the handler.
                var startedIterator = started.makeAsyncIterator()
                await startedIterator.next()
                var observed = server.probes.cancellations.makeAsyncIterator()
                call.cancel()
                #expect(await observed.next() == TestService.hangStream.path)
                await #expect(throws: RPCError.self) { try await call.value }
            }
        }
    }
}
