import CacheNode
import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDLocalDeployment
import ICBDProcess
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf

/// `icbd bench gateway`: random 64 KiB and 1 MiB Range reads (wrk) of a disk image held by a
/// cache node, through a gateway, next to nginx serving the same file from local disk, in
/// alternating rounds of one run. The gateway and the cache node are `icbd gateway` and `icbd
/// cache` child processes of this executable, so each one's CPU time is its own; the catalog and
/// an in-memory repository (``MemoryRepository``) stay in this process, over real mutual TLS.
public struct GatewayBenchmark: Sendable {
    /// The image's size, each wrk run's length and connections, the rounds, the gateway's memory
    /// tier, how it reaches the cache node and where the files go.
    public struct Options: Sendable {
        public var megabytes = 1024
        public var seconds = 10
        public var connections = 16
        /// Alternating rounds of each side per range size; each figure is the median round's.
        public var rounds = 5
        /// The gateway's memory tier; the default is the gateway's own.
        public var memoryCache = GatewayConfiguration.defaultMemoryCacheBytes
        /// Reads reach the cache node only over mutual TLS; otherwise the gateway is given the
        /// node's directory (`--local-cache`), as on a host running both.
        public var remote = false
        /// Measures the cost of boot recording instead of comparing with nginx
        /// (``measureBootRecording(gateway:process:size:directory:)``).
        public var bootRecording = false
        public var directory = FileManager.default.temporaryDirectory.path

        public init() {}

        /// "same-host" or "remote".
        var path: String { remote ? "remote" : "same-host" }

        /// What the JSON report names.
        var description: [String: String] {
            [
                "imageSize": "\(ByteSize(bytes: Int64(megabytes) << 20))", "seconds": "\(seconds)", "connections": "\(connections)",
                "rounds": "\(rounds)", "memoryCache": "\(ByteSize(bytes: Int64(memoryCache)))", "path": path,
                "baseline": bootRecording ? "the same gateway, reads of no boot" : "nginx",
            ]
        }
    }

    /// The issue's goals (docs/benchmarks.md), for the gateway's default memory tier only.
    struct Goals: Equatable {
        var requests64KiB: BenchGoal?
        var p99of64KiB: BenchGoal?
        var throughput1MiB: BenchGoal?

        init(_ options: Options) {
            guard options.memoryCache == GatewayConfiguration.defaultMemoryCacheBytes else { return }
            if options.remote {
                requests64KiB = .ratioAtLeast(0.35)
                throughput1MiB = .ratioAtLeast(0.5)
            } else {
                requests64KiB = .ratioAtLeast(0.7)
                p99of64KiB = .ratioAtMost(1.5)
                throughput1MiB = .ratioAtLeast(0.9)
            }
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws -> BenchReport {
        for tool in ["/usr/bin/wrk", "/usr/sbin/nginx"] where !FileManager.default.isExecutableFile(atPath: tool) {
            throw BenchError("\(tool) is missing: run scripts/bootstrap (Debian wrk, nginx-light)")
        }
        let directory = URL(fileURLWithPath: options.directory).appendingPathComponent("icbd-bench-gateway-\(UUID())")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("www"), withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // The disk image: distinct non-zero chunks, in memory for the repository and on disk for nginx.
        let chunks = (0..<options.megabytes).map { Self.chunk($0) }
        let file = directory.appendingPathComponent("www/disk.raw").path
        FileManager.default.createFile(atPath: file, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: file))
        for chunk in chunks { try handle.write(contentsOf: Data(chunk.readableBytesView)) }
        try handle.close()
        let digests = chunks.map { ChunkDigest(of: $0) }
        let entries = digests.flatMap(\.bytes)
        let size = Int64(options.megabytes) << 20

        let repository = MemoryRepository(chunks: Array(zip(digests, chunks)))
        return try await BenchServices.with(logger: logger) { services in
            // Certificates on disk for the children, from the CA the in-process catalog trusts.
            let pki = PKIDirectory(path: directory.appendingPathComponent("pki").path)
            let authority = try pki.initialize()
            for (role, name) in [(Role.cache, "bench-cache"), (.gateway, "bench-gateway")] {
                try pki.issue(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let site = try await BenchSite.start(
                repository: repository, directory: directory, services: services, logger: logger, authority: authority
            ) { admin in
                try await Self.register(admin, size: size, entries: entries, bootable: options.bootRecording)
            }
            let logs = directory.appendingPathComponent("logs").path
            try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
            let common = [
                "--site", "hq", "--catalog", "\(site.catalogAddress)", "--tls-dir", pki.path, "--log-level", logger.logLevel.rawValue,
            ]
            let cacheDirectory = directory.appendingPathComponent("cache").path
            let cacheArguments = [
                "cache", "--listen", "127.0.0.1:0", "--dir", cacheDirectory, "--capacity", "\(ByteSize(bytes: size + (256 << 20)))",
                "--name", "bench-cache",
            ]
            var gatewayArguments = [
                "gateway", "--listen", "127.0.0.1:0", "--memory-cache", "\(ByteSize(bytes: Int64(options.memoryCache)))",
                "--admission-limit", "4096", "--name", "bench-gateway",
            ]
            if !options.remote { gatewayArguments += ["--local-cache", cacheDirectory] }
            if options.bootRecording { gatewayArguments += ["--trusted-proxy", "127.0.0.1/32", "--default-image", "bench"] }
            return try await Self.withChild("cache", cacheArguments + common, logs: logs) { cache, _ in
                try await Self.withChild("gateway", gatewayArguments + common, logs: logs) { gateway, address in
                    let gatewayURL = Self.diskURL(at: address)
                    try await waitForCache(gatewayURL)
                    // Warm: the whole image through the gateway once, so every chunk is held by the cache.
                    try await Self.curl(["-sf", "-o", "/dev/null", gatewayURL])
                    if options.bootRecording {
                        return try await measureBootRecording(gateway: address, process: gateway.pid, size: size, directory: directory)
                    }
                    return try await Nginx.with(root: directory.appendingPathComponent("www").path, directory: directory.path) { nginx in
                        let servers = Servers(
                            gatewayURL: gatewayURL, gateway: gateway.pid, cache: cache.pid,
                            nginxURL: "http://127.0.0.1:\(nginx.port)/disk.raw", nginx: nginx.pid)
                        return try await measure(servers, size: size, directory: directory)
                    }
                }
            }
        }
    }

    /// Where each side listens, and the processes whose CPU time it costs.
    struct Servers {
        let gatewayURL: String
        let gateway: pid_t
        let cache: pid_t
        let nginxURL: String
        let nginx: pid_t
    }

    /// One wrk run of one side and the CPU seconds per GiB served of each of its processes, in
    /// the order measured: gateway and cache node; or nginx (master and workers).
    struct Run {
        let wrk: Wrk.Result
        let cpuPerGiB: [Double]
    }

    private func measure(_ servers: Servers, size: Int64, directory: URL) async throws -> BenchReport {
        let wrk = Wrk(connections: options.connections, seconds: options.seconds)
        let goals = Goals(options)
        var report = BenchReport(bench: "gateway", configuration: options.description)
        for (label, bytes) in [("64 KiB", 64 << 10), ("1 MiB", 1 << 20)] {
            let script = directory.appendingPathComponent("ranges-\(bytes).lua").path
            try Wrk.rangeScript(size: size, bytes: bytes).write(toFile: script, atomically: true, encoding: .utf8)
            let pairs = try await AlternatingRounds(count: options.rounds).run { side in
                switch side {
                case .ours: try await Self.run(wrk, servers.gatewayURL, script: script, bytes: bytes, processes: [servers.gateway, servers.cache])
                case .baseline: try await Self.run(wrk, servers.nginxURL, script: script, bytes: bytes, processes: [servers.nginx])
                }
            }
            let nginx = "nginx, same file from local disk"
            if bytes == 64 << 10 {
                report.figures.append(
                    BenchFigure(
                        name: "random \(label) ranges: requests/s", unit: "req/s", baseline: nginx,
                        rounds: pairs.map { BenchRound(value: $0.ours.wrk.requestsPerSecond, baseline: $0.baseline.wrk.requestsPerSecond) },
                        goal: goals.requests64KiB))
            } else {
                let mebibytes = Double(bytes) / 1_048_576
                report.figures.append(
                    BenchFigure(
                        name: "random \(label) ranges: throughput", unit: "MiB/s", baseline: nginx,
                        rounds: pairs.map {
                            BenchRound(value: $0.ours.wrk.requestsPerSecond * mebibytes, baseline: $0.baseline.wrk.requestsPerSecond * mebibytes)
                        },
                        goal: goals.throughput1MiB))
            }
            report.figures.append(
                BenchFigure(
                    name: "random \(label) ranges: p99 latency", unit: "ms", baseline: "nginx p99",
                    rounds: pairs.map { BenchRound(value: $0.ours.wrk.p99Milliseconds, baseline: $0.baseline.wrk.p99Milliseconds) },
                    goal: bytes == 64 << 10 ? goals.p99of64KiB : nil))
            let processes: [(name: String, cpuPerGiB: (Run) -> Double)] = [
                ("gateway", { $0.cpuPerGiB[0] }), ("cache node", { $0.cpuPerGiB[1] }), ("gateway + cache", { $0.cpuPerGiB[0] + $0.cpuPerGiB[1] }),
            ]
            for (process, cpu) in processes {
                report.figures.append(
                    BenchFigure(
                        name: "random \(label) ranges: CPU, \(process)", unit: "s/GiB", baseline: "nginx's",
                        rounds: pairs.map { BenchRound(value: cpu($0.ours), baseline: $0.baseline.cpuPerGiB[0]) }))
            }
        }
        return report
    }

    /// One wrk run against `url`, with the CPU time `processes` (each with its descendants)
    /// spent meanwhile, per GiB of response bodies.
    static func run(_ wrk: Wrk, _ url: String, script: String, bytes: Int, processes: [pid_t]) async throws -> Run {
        let before = try processes.map(cpuSeconds)
        let result = try await wrk.run(url, script: script)
        let after = try processes.map(cpuSeconds)
        let served = Int64(result.requests) * Int64(bytes)
        return Run(wrk: result, cpuPerGiB: zip(before, after).map { cpuSecondsPerGiB(cpuSeconds: $1 - $0, bytes: served) })
    }

    private static func cpuSeconds(_ pid: pid_t) throws -> Double {
        guard let seconds = ProcessCPU.seconds(ofTree: pid) else { throw BenchError("process \(pid) exited during the bench (see its log)") }
        return seconds
    }

    /// Runs `body` with `icbd ARGUMENTS` running as child `name` (its log in `logs`) and the
    /// address it listens on; stops it (SIGTERM) afterwards, whether `body` returned or threw.
    private static func withChild<R>(
        _ name: String, _ arguments: [String], logs: String, _ body: (ChildProcess, String) async throws -> R
    ) async throws -> R {
        let child = try await ChildProcess(name, arguments, logs: logs)
        do {
            let result = try await body(child, try await child.listeningAddress())
            await child.stop()
            return result
        } catch {
            await child.stop()
            throw error
        }
    }

    /// Registers image `bench` version 1 with one file, as a replicator would; `bootable`: also
    /// present on the bench's repository, as a boot script needs.
    private static func register(_ admin: RPCClient, size: Int64, entries: [UInt8], bootable: Bool) async throws {
        _ = try await admin.unary(CatalogMethods.createImage, .with { $0.name = "bench"; $0.ifMissing = true })
        _ = try await admin.unary(
            CatalogMethods.createVersion,
            .with {
                $0.image = "bench"
                $0.number = 1
                $0.btrfsUuid = UUID().uuidString.lowercased()
                $0.files = [
                    .with {
                        $0.path = "disk.raw"
                        $0.size = size
                        $0.chunkSize = ChunkManifest.defaultChunkSize
                        $0.manifestSha256 = Data(ChunkManifest.digest(fileSize: size, chunkSize: ChunkManifest.defaultChunkSize, entries: entries))
                    }
                ]
            })
        _ = try await admin.clientStreaming(CatalogMethods.putManifest) { writer in
            for start in stride(from: 0, to: entries.count, by: 1 << 20) {
                try await writer.write(
                    .with {
                        $0.image = "bench"
                        $0.version = 1
                        $0.path = "disk.raw"
                        $0.entries = Data(entries[start..<min(start + (1 << 20), entries.count)])
                    })
            }
        }
        _ = try await admin.unary(CatalogMethods.completeVersion, .with { $0.image = "bench"; $0.number = 1 })
        if bootable {
            _ = try await admin.unary(
                CatalogMethods.setPlacement, .with { $0.image = "bench"; $0.version = 1; $0.node = "bench-repo"; $0.state = .present })
        }
    }

    /// The URL of the bench's disk image, by version number, at the gateway on `address`.
    static func diskURL(at address: String) -> String { "http://\(address)/v1/images/bench/1/disk.raw" }

    /// Waits (bounded) until the gateway serves the file: its catalog view and the cache are up.
    private func waitForCache(_ url: String) async throws {
        for _ in 0..<300 {
            if (try? await Self.curl(["-sf", "-o", "/dev/null", "-r", "0-0", url])) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("the gateway did not serve \(url) within 30 s")
    }

    /// 1 MiB that differs from every other chunk and is not all zeros.
    static func chunk(_ index: Int) -> ByteBuffer {
        var state = UInt64(index + 1) &* 0x9e37_79b9_7f4a_7c15
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        for _ in 0..<(1 << 17) {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            buffer.writeInteger(state)
        }
        return buffer
    }

    @discardableResult
    static func curl(_ arguments: [String]) async throws -> String { try await SystemCommand.run("/usr/bin/curl", arguments) }
}
