import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import SwiftProtobuf

/// `icbd bench rpc`: server-streaming throughput against a plain TLS copy measured in the same
/// run, and unary latency at concurrency 1 and 64.
public struct RPCBenchmark: Sendable {
    /// MiB per throughput run, unary calls per concurrency level.
    public struct Options: Sendable {
        public var streamMegabytes = 1024
        public var unaryCalls = 20_000

        public init(streamMegabytes: Int = 1024, unaryCalls: Int = 20_000) {
            self.streamMegabytes = streamMegabytes
            self.unaryCalls = unaryCalls
        }
    }

    static let service = "icbd.bench.v1.Bench"
    static let echo = RPCMethod<Icbd_Bench_V1_EchoRequest, Icbd_Bench_V1_EchoResponse>(
        service: service, method: "Echo", kind: .unary, allowedRoles: Set(Role.allCases))
    static let stream = RPCMethod<Icbd_Bench_V1_StreamRequest, Icbd_Bench_V1_Payload>(
        service: service, method: "Stream", kind: .serverStreaming, allowedRoles: Set(Role.allCases))

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws -> BenchReport {
        let authority = try CertificateAuthority.create(commonName: "icbd bench CA")
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
            try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
        }
        let serverIdentity = try identity(.cache, "bench-server")
        let clientIdentity = try identity(.admin, "bench-client")

        var router = RPCRouter()
        router.unary(Self.echo) { request, _ in Icbd_Bench_V1_EchoResponse.with { $0.payload = request.payload } }
        router.serverStreaming(Self.stream) { request, writer, _ in
            // Sent the way chunk data is served: the payload as a ByteBuffer, written uncopied.
            let chunk = ByteBuffer(repeating: 0xA5, count: Int(request.size))
            for _ in 0..<request.count { try await writer.write(Icbd_Bench_V1_Payload(), payload: chunk) }
        }
        let loops = BenchEventLoops()
        let server = try RPCServer(
            configuration: RPCServerConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), tls: serverIdentity),
            router: router, group: loops.server, logger: logger)

        let report = try await BenchServices.with(logger: logger) { services in
            services.start(server)
            let port = try await server.localAddress().port ?? 0
            let configuration = RPCClientConfiguration(
                target: HostPort(host: "127.0.0.1", port: port), expectedRole: .cache, tls: clientIdentity)
            let client = try RPCClient(configuration: configuration, group: loops.client, logger: logger)
            services.start(client)
            var report = BenchReport(bench: "rpc")
            report.figures += try await throughput(
                client: client, server: serverIdentity, clientIdentity: clientIdentity, loops: loops)
            report.figures += try await latency(client: client)
            return report
        }
        try await loops.shutdown()
        return report
    }

    private func throughput(
        client: RPCClient, server: TLSIdentity, clientIdentity: TLSIdentity, loops: BenchEventLoops
    ) async throws -> [BenchFigure] {
        let megabytes = options.streamMegabytes
        // Warm up both paths, then measure them back to back in each of several rounds, so drift
        // on a noisy machine hits both alike; the median round decides.
        _ = try await streamRPC(client: client, megabytes: 64)
        _ = try await PlainTLSCopy.run(totalBytes: 64 << 20, server: server, client: clientIdentity, loops: loops, logger: logger)
        var rounds: [(rpc: Double, plain: Double)] = []
        for _ in 0..<Self.rounds {
            let rpc = try await streamRPC(client: client, megabytes: megabytes)
            let plain = try await PlainTLSCopy.run(
                totalBytes: megabytes << 20, server: server, client: clientIdentity, loops: loops, logger: logger)
            rounds.append((Double(megabytes) / rpc.seconds, Double(megabytes) / plain.seconds))
        }
        let median = rounds.sorted { $0.rpc / $0.plain < $1.rpc / $1.plain }[rounds.count / 2]
        let ratio = median.rpc / median.plain
        return [
            BenchFigure(
                name: "server-streaming 1 MiB messages over TLS", value: median.rpc, unit: "MiB/s",
                baseline: .init(name: "plain TLS socket copy", value: median.plain), ratio: ratio,
                goal: "ratio >= 0.7", met: ratio >= 0.7)
        ]
    }

    /// Rounds of the throughput comparison; the median round's ratio is reported.
    static let rounds = 5

    private func streamRPC(client: RPCClient, megabytes: Int) async throws -> Duration {
        let start = ContinuousClock.now
        let received = try await client.serverStreaming(
            Self.stream, .with { $0.count = UInt32(megabytes); $0.size = 1 << 20 }
        ) { responses in
            var bytes = 0
            for try await item in responses.withPayloads { bytes += item.payload.readableBytes }
            return bytes
        }
        guard received == megabytes << 20 else { throw BenchError("RPC stream delivered \(received) bytes") }
        return ContinuousClock.now - start
    }

    private func latency(client: RPCClient) async throws -> [BenchFigure] {
        var figures: [BenchFigure] = []
        let request = Icbd_Bench_V1_EchoRequest.with { $0.payload = Data(repeating: 1, count: 64) }
        for _ in 0..<500 { _ = try await client.unary(Self.echo, request) }  // warm-up
        for concurrency in [1, 64] {
            let callsPerWorker = max(1, options.unaryCalls / concurrency)
            let start = ContinuousClock.now
            let samples = try await withThrowingTaskGroup(of: LatencySamples.self) { group in
                for _ in 0..<concurrency {
                    group.addTask {
                        var samples = LatencySamples()
                        for _ in 0..<callsPerWorker {
                            let callStart = ContinuousClock.now
                            _ = try await client.unary(Self.echo, request)
                            samples.append(ContinuousClock.now - callStart)
                        }
                        return samples
                    }
                }
                return try await group.reduce(into: LatencySamples()) { $0.merge($1) }
            }
            let elapsed = ContinuousClock.now - start
            let p99 = samples.percentileMilliseconds(99)
            figures.append(BenchFigure(name: "unary p50 at concurrency \(concurrency)", value: samples.percentileMilliseconds(50), unit: "ms"))
            figures.append(
                BenchFigure(
                    name: "unary p99 at concurrency \(concurrency)", value: p99, unit: "ms",
                    goal: concurrency == 64 ? "p99 < 5 ms" : nil, met: concurrency == 64 ? p99 < 5 : nil))
            figures.append(
                BenchFigure(
                    name: "unary calls per second at concurrency \(concurrency)",
                    value: Double(samples.seconds.count) / elapsed.seconds, unit: "calls/s"))
        }
        return figures
    }
}

extension Icbd_Bench_V1_Payload: RPCPayloadCarrying {
    public static var payloadField: Int { 1 }
}
