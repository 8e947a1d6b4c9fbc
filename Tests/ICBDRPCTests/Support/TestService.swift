import ICBDCore
import ICBDProto
import SwiftProtobuf
import ICBDRPC
import Foundation
import NIOCore
import Synchronization

typealias EchoRequest = Icbd_Bench_V1_EchoRequest
typealias EchoResponse = Icbd_Bench_V1_EchoResponse
typealias StreamRequest = Icbd_Bench_V1_StreamRequest
typealias Payload = Icbd_Bench_V1_Payload

/// Methods exercising every call kind, with probes the tests read.
struct TestService: RPCService {
    static let service = "icbd.test.v1.Test"
    static let echo = RPCMethod<EchoRequest, EchoResponse>(service: service, method: "Echo", kind: .unary, allowedRoles: Set(Role.allCases))
    static let adminOnly = RPCMethod<EchoRequest, EchoResponse>(service: service, method: "AdminOnly", kind: .unary, allowedRoles: [.admin])
    static let stream = RPCMethod<StreamRequest, Payload>(service: service, method: "Stream", kind: .serverStreaming, allowedRoles: Set(Role.allCases))
    /// Like Stream, with the payload sent uncopied (``RPCPayloadCarrying``); byte i of message n is `(n + i) % 251`.
    static let payloads = RPCMethod<StreamRequest, Payload>(service: service, method: "Payloads", kind: .serverStreaming, allowedRoles: Set(Role.allCases))
    /// Sums the payload bytes of the requests, read uncopied.
    static let collectPayloads = RPCMethod<Payload, EchoResponse>(service: service, method: "CollectPayloads", kind: .clientStreaming, allowedRoles: Set(Role.allCases))
    static let collect = RPCMethod<Payload, EchoResponse>(service: service, method: "Collect", kind: .clientStreaming, allowedRoles: Set(Role.allCases))
    static let chat = RPCMethod<EchoRequest, EchoResponse>(service: service, method: "Chat", kind: .bidirectional, allowedRoles: Set(Role.allCases))
    /// Takes a message with a string field 1 (the method name of an Open), answers it back.
    static let named = RPCMethod<Icbd_Rpc_V1_Open, EchoResponse>(service: service, method: "Named", kind: .unary, allowedRoles: Set(Role.allCases))
    static let hang = RPCMethod<EchoRequest, EchoResponse>(service: service, method: "Hang", kind: .unary, allowedRoles: Set(Role.allCases))
    /// Throws ``Fault``, an error that is not an RPCError.
    static let fail = RPCMethod<EchoRequest, EchoResponse>(service: service, method: "Fail", kind: .unary, allowedRoles: Set(Role.allCases))
    static let hangStream = RPCMethod<StreamRequest, Payload>(service: service, method: "HangStream", kind: .serverStreaming, allowedRoles: Set(Role.allCases))

    /// What the handlers observed.
    final class Probes: Sendable {
        /// Response messages the Stream handler has handed to the RPC layer (write returned).
        let produced = Atomic<Int>(0)
        /// Yields once per Hang/HangStream handler that saw its task cancelled.
        let cancellations: AsyncStream<String>
        let cancellationSink: AsyncStream<String>.Continuation

        init() {
            (cancellations, cancellationSink) = AsyncStream.makeStream()
        }
    }

    let probes: Probes

    func register(into router: inout RPCRouter) {
        router.unary(Self.echo) { request, context in
            EchoResponse.with { $0.payload = request.payload }
        }
        router.unary(Self.adminOnly) { request, _ in
            EchoResponse.with { $0.payload = request.payload }
        }
        router.serverStreaming(Self.stream) { request, writer, _ in
            let chunk = Payload.with { $0.data = Data(repeating: 0xA5, count: Int(request.size)) }
            for _ in 0..<request.count {
                try await writer.write(chunk)
                probes.produced.add(1, ordering: .relaxed)
            }
        }
        router.serverStreaming(Self.payloads) { request, writer, _ in
            for n in 0..<Int(request.count) {
                let bytes = (0..<Int(request.size)).map { UInt8((n + $0) % 251) }
                try await writer.write(Payload(), payload: ByteBuffer(bytes: bytes))
            }
        }
        router.clientStreaming(Self.collectPayloads) { requests, _ in
            var total = 0
            for try await item in requests.withPayloads { total += item.payload.readableBytes }
            return EchoResponse.with { $0.payload = Data("\(total)".utf8) }
        }
        router.clientStreaming(Self.collect) { requests, _ in
            var total = 0
            for try await payload in requests { total += payload.data.count }
            return EchoResponse.with { $0.payload = Data("\(total)".utf8) }
        }
        router.bidirectional(Self.chat) { requests, writer, _ in
            for try await request in requests {
                try await writer.write(EchoResponse.with { $0.payload = request.payload })
            }
        }
        router.unary(Self.named) { request, _ in
            EchoResponse.with { $0.payload = Data(request.method.utf8) }
        }
        router.unary(Self.fail) { _, _ in
            throw Fault()
        }
        router.unary(Self.hang) { _, context in
            try await waitForCancellation(context.method)
        }
        router.serverStreaming(Self.hangStream) { _, writer, context in
            try await writer.write(Payload.with { $0.data = Data("started".utf8) })
            _ = try await waitForCancellation(context.method)
        }
    }

    /// A plain Swift error whose text tells of the server's internals.
    struct Fault: Error, CustomStringConvertible {
        static let text = "open(/var/lib/icbd/secret.db): Permission denied in StoreBackend.swift:42"
        var description: String { Self.text }
    }

    private func waitForCancellation(_ method: String) async throws -> EchoResponse {
        do {
            try await Task.sleep(for: .seconds(3600))
        } catch is CancellationError {
            probes.cancellationSink.yield(method)
            throw CancellationError()
        }
        return EchoResponse()
    }
}


extension Payload: RPCPayloadCarrying {
    public static var payloadField: Int { 1 }
}
