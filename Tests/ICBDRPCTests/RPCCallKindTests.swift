import Foundation
import ICBDCore
import ICBDProto
import SwiftProtobuf
import ICBDRPC
import NIOCore
import Testing

@Suite("RPC call kinds over mutual TLS")
struct RPCCallKindTests {
    @Test func unaryEchoesTheRequest() async throws {
        let server = try TestServer()
        try await server.run {
            let response = try await server.withClient { client in
                try await client.unary(TestService.echo, EchoRequest.with { $0.payload = Data("hello".utf8) })
            }
            #expect(response.payload == Data("hello".utf8))
        }
    }

    @Test func healthAnswersServingToAnyRole() async throws {
        let server = try TestServer()
        try await server.run {
            for role in [Role.gateway, .cache, .replicator, .admin] {
                let response = try await server.withClient(try server.pki.identity(role, "probe")) { client in
                    try await client.unary(HealthMethods.check, Icbd_Rpc_V1_HealthCheckRequest())
                }
                #expect(response.status == .serving)
                #expect(response.role == "catalog")
                #expect(response.node == "test-server")
                #expect(response.version == SoftwareVersion.current)
            }
        }
    }

    @Test func serverStreamingDeliversEveryMessageInOrder() async throws {
        let server = try TestServer()
        try await server.run {
            let sizes = try await server.withClient { client in
                try await client.serverStreaming(TestService.stream, StreamRequest.with { $0.count = 50; $0.size = 70_000 }) {
                    responses in
                    var sizes: [Int] = []
                    for try await payload in responses { sizes.append(payload.data.count) }
                    return sizes
                }
            }
            #expect(sizes == Array(repeating: 70_000, count: 50))
        }
    }

    @Test func payloadsTravelUncopiedAndStillDecodeAsPlainMessages() async throws {
        let server = try TestServer()
        try await server.run {
            try await server.withClient { client in
                let request = StreamRequest.with { $0.count = 3; $0.size = 100_000 }
                func expected(_ n: Int) -> [UInt8] { (0..<100_000).map { UInt8((n + $0) % 251) } }
                // Read with payloads as slices.
                let slices = try await client.serverStreaming(TestService.payloads, request) { responses in
                    var all: [[UInt8]] = []
                    for try await item in responses.withPayloads { all.append(Array(item.payload.readableBytesView)) }
                    return all
                }
                #expect(slices == (0..<3).map(expected))
                // The same bytes are an ordinary Payload to a reader that knows nothing of payloads.
                let plain = try await client.serverStreaming(TestService.payloads, request) { responses in
                    var all: [[UInt8]] = []
                    for try await payload in responses { all.append(Array(payload.data)) }
                    return all
                }
                #expect(plain == slices)
                // And the other way: a client sending payloads uncopied.
                let sum = try await client.clientStreaming(TestService.collectPayloads) { writer in
                    for _ in 0..<6 { try await writer.write(Payload(), payload: ByteBuffer(repeating: 1, count: 1 << 20)) }
                }
                #expect(String(decoding: sum.payload, as: UTF8.self) == "\(6 << 20)")
            }
        }
    }

    @Test func clientStreamingSeesEveryRequest() async throws {
        let server = try TestServer()
        try await server.run {
            // 12 MiB in 1 MiB messages: three times the initial window, so credit must flow back.
            let response = try await server.withClient { client in
                try await client.clientStreaming(TestService.collect) { writer in
                    for _ in 0..<12 { try await writer.write(Payload.with { $0.data = Data(count: 1 << 20) }) }
                }
            }
            #expect(String(decoding: response.payload, as: UTF8.self) == "\(12 << 20)")
        }
    }

    @Test func bidirectionalInterleavesRequestsAndResponses() async throws {
        let server = try TestServer()
        try await server.run {
            let answers = try await server.withClient { client in
                try await client.bidirectional(TestService.chat) { writer, responses in
                    var iterator = responses.makeAsyncIterator()
                    var answers: [String] = []
                    for word in ["one", "two", "three"] {
                        try await writer.write(EchoRequest.with { $0.payload = Data(word.utf8) })
                        // Each answer arrives before the next request is sent.
                        if let answer = try await iterator.next() { answers.append(String(decoding: answer.payload, as: UTF8.self)) }
                    }
                    writer.finish()
                    #expect(try await iterator.next() == nil)
                    return answers
                }
            }
            #expect(answers == ["one", "two", "three"])
        }
    }

    @Test func hundredConcurrentCallsShareOneConnection() async throws {
        let server = try TestServer()
        try await server.run {
            let echoed = try await server.withClient { client in
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<100 {
                        group.addTask {
                            let payload = Data("call-\(index)".utf8)
                            let response = try await client.unary(TestService.echo, EchoRequest.with { $0.payload = payload })
                            return response.payload == payload
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
            }
            #expect(echoed == 100)
        }
    }
}

@Suite("Flow control edge cases")
struct FlowControlEdgeTests {
    /// A small message, then one larger than what is left of the window: the receiver must hand
    /// back the small message's credit while it waits, or the large one can never go.
    @Test func largeMessageAfterASmallOneIsNotStuck() async throws {
        let server = try TestServer()
        try await server.run {
            let response = try await server.withClient { client in
                try await client.clientStreaming(TestService.collect, options: RPCCallOptions(timeout: .seconds(30))) { writer in
                    try await writer.write(Payload.with { $0.data = Data(count: 32) })
                    try await writer.write(Payload.with { $0.data = Data(count: 6 << 20) })
                }
            }
            #expect(String(decoding: response.payload, as: UTF8.self) == "\((6 << 20) + 32)")
        }
    }
}
