import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import NIOCore
import Synchronization
import Testing

@Suite("RPC server: request bytes one connection may hold")
struct RequestBufferBoundTests {
    @Test(.timeLimit(.minutes(1)))
    func requestsBeyondTheConnectionsBoundResetOnlyTheirCall() async throws {
        let server = try TestServer { $0.maximumBufferedRequestBytes = 8 << 20 }
        try await server.run {
            let check = HealthMethods.check.path
            let request = RPCFrame.filler(0, size: 3 << 20)
            try await FrameConnection.with(try await server.address(), identity: try server.pki.identity(.admin, "raw")) {
                inbound, outbound in
                var frames = inbound.makeAsyncIterator()
                // Calls 1 and 2 hold 6 MiB (their requests wait for End): they fit. Call 3
                // would make it 9 MiB: it alone is reset.
                for id: UInt32 in 1...3 { try await outbound.write(contentsOf: [.open(id, check), request.on(id)]) }
                let reset = try #require(try await frames.nextStatus())
                #expect(reset.stream == 3 && reset.code == RPCError.Code.resourceExhausted.rawValue, "\(reset)")
                // Call 1 ends and is answered; its bytes are given back, so call 4 fits.
                try await outbound.write(RPCFrame(stream: 1, kind: .end))
                let answered = try #require(try await frames.nextStatus())
                #expect(answered.stream == 1 && answered.code == RPCError.Code.ok.rawValue, "\(answered)")
                try await outbound.write(contentsOf: [.open(4, check), request.on(4), RPCFrame(stream: 4, kind: .end)])
                let fourth = try #require(try await frames.nextStatus())
                #expect(fourth.stream == 4 && fourth.code == RPCError.Code.ok.rawValue, "\(fourth)")
            }
        }
    }

    /// The attack of issue 22: 1024 calls on one connection, each sending one 16 MiB request
    /// and never its End, against a real `icbd catalog`. Without a bound the server would hold
    /// 16 GiB; with the default one (64 MiB) its resident memory grows by that and the frames
    /// on their way, and the calls past it are reset.
    @Test(.timeLimit(.minutes(15)))
    func largeRequestsWithoutEndLeaveTheServersMemoryBounded() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-rpc-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pki = directory.appendingPathComponent("pki").path
        try await ICBDChild.run(["pki", "init", "--dir", pki], in: directory)
        try await ICBDChild.run(["pki", "issue", "--dir", pki, "--role", "catalog", "--name", "cat1", "--ip", "127.0.0.1"], in: directory)
        try await ICBDChild.run(["pki", "issue", "--dir", pki, "--role", "admin", "--name", "admin"], in: directory)
        let catalog = try await ICBDChild(
            ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("catalog.db").path, "--tls-dir", pki,
             "--name", "cat1", "--log-level", "debug"],
            in: directory)
        defer { catalog.stop() }
        let address = try HostPort(parsing: try await catalog.listeningAddress())
        let limit = RPCServerConfiguration(listen: address, tls: try TLSIdentity.load(directory: pki, name: "cat1"))
            .maximumBufferedRequestBytes

        do {
            try await attack(address, identity: try TLSIdentity.load(directory: pki, name: "admin"), server: catalog, limit: limit)
        } catch {
            throw ChildError("\(error); the server's log ends: \(catalog.errors.suffix(3000))")
        }
    }

    private func attack(_ address: HostPort, identity: TLSIdentity, server catalog: ICBDChild, limit: Int) async throws {
        let calls: UInt32 = 1024
        let request = RPCFrame.filler(0, size: RPCFrame.Limits.maximumMessageLength)
        let requestSize = RPCFrame.Limits.maximumMessageLength
        let check = HealthMethods.check.path
        try await FrameConnection.with(address, identity: identity) { inbound, outbound in
            let (statuses, record) = AsyncStream<(stream: UInt32, code: UInt32)>.makeStream()
            async let reader: Void = Self.forwardStatuses(of: inbound, to: record)
            var answers = statuses.makeAsyncIterator()
            var resets = 0
            /// Waits for the Status of `stream`, counting the resets that come before it.
            func answer(of stream: UInt32) async throws -> UInt32 {
                while let status = await answers.next() {
                    if status.stream == stream { return status.code }
                    if status.code == RPCError.Code.resourceExhausted.rawValue { resets += 1 }
                }
                throw RPCError(code: .unavailable, message: "the connection closed while call \(stream) waited for its answer")
            }

            // A first answered call: what the server holds at rest.
            try await outbound.write(contentsOf: [.open(1, check), RPCFrame.filler(1, size: 2), RPCFrame(stream: 1, kind: .end)])
            #expect(try await answer(of: 1) == RPCError.Code.ok.rawValue)
            let atRest = try catalog.residentBytes()
            // What may be held: the bound, and frames between the socket and the calls (the
            // one being read, those queued for the connection's task, TLS buffers).
            let allowed = atRest + limit + 6 * (16 << 20)
            var peak = atRest
            for id in 2...calls + 1 {
                try await outbound.write(contentsOf: [.open(id, check), request.on(id)])
                if id % 16 == 0 {
                    peak = max(peak, try catalog.residentBytes())
                    try #require(peak <= allowed, "the server holds \(peak - atRest) bytes more than at rest after \(id - 1) calls")
                }
            }
            // Frames are handled in order: once this call is answered, every request before it
            // has arrived.
            try await outbound.write(contentsOf: [.open(calls + 2, check), RPCFrame.filler(calls + 2, size: 2), RPCFrame(stream: calls + 2, kind: .end)])
            #expect(try await answer(of: calls + 2) == RPCError.Code.ok.rawValue)
            peak = max(peak, try catalog.residentBytes())
            #expect(peak <= allowed, "the server holds \(peak - atRest) bytes more than at rest")
            // The calls that fit keep their requests; each of the others was reset.
            let fitting = limit / requestSize
            while resets < Int(calls) - fitting, let status = await answers.next() {
                if status.code == RPCError.Code.resourceExhausted.rawValue { resets += 1 }
            }
            #expect(resets == Int(calls) - fitting)
            print("icbd catalog VmRSS: \(atRest >> 20) MiB at rest, \(peak >> 20) MiB at most under \(calls) calls of \(requestSize) bytes without End")
            outbound.finish()
            _ = try? await reader
        }
    }

    private static func forwardStatuses(
        of inbound: FrameConnection.Inbound, to record: AsyncStream<(stream: UInt32, code: UInt32)>.Continuation
    ) async throws {
        defer { record.finish() }
        var frames = inbound.makeAsyncIterator()
        while let status = try await frames.nextStatus() { record.yield(status) }
    }
}
