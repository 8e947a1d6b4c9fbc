import CacheNode
import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDProcess
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf

/// `icbd bench gateway`: random 64 KiB and 1 MiB Range reads (wrk) of a disk image held by a
/// cache node, through a gateway, next to nginx serving the same file from local disk in the
/// same run. In process: a catalog, an in-memory repository (``MemoryRepository``), a cache node
/// and the gateway, over real mutual TLS; nginx and wrk are real processes.
public struct GatewayBenchmark: Sendable {
    /// The image's size, each wrk run's length and connections, the gateway's memory tier and
    /// where the files go.
    public struct Options: Sendable {
        public var megabytes = 1024
        public var seconds = 10
        public var connections = 16
        /// The gateway's memory tier; the default is the gateway's own.
        public var memoryCache = GatewayConfiguration.defaultMemoryCacheBytes
        public var directory = FileManager.default.temporaryDirectory.path

        public init() {}
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
            let site = try await BenchSite.start(repository: repository, directory: directory, services: services, logger: logger) { admin in
                try await Self.register(admin, size: size, entries: entries)
            }
            let catalogAddress = site.catalogAddress
            let cache = try CacheService(
                configuration: CacheConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), directory: directory.appendingPathComponent("cache").path,
                    capacity: size + (256 << 20), site: try Name("hq"), catalog: catalogAddress,
                    tls: try site.identity(.cache, "bench-cache"), name: "bench-cache"),
                logger: logger)
            services.start(cache)
            var configuration = GatewayConfiguration(
                listen: HostPort(host: "127.0.0.1", port: 0), site: try Name("hq"), catalog: catalogAddress,
                tls: try site.identity(.gateway, "bench-gateway"), name: "bench-gateway")
            configuration.memoryCacheBytes = options.memoryCache
            configuration.admissionLimit = 4096
            let gateway = try GatewayService(configuration: configuration, logger: logger)
            services.start(gateway)
            let gatewayURL = "http://127.0.0.1:\(try await gateway.localAddress().port ?? 0)/v1/images/bench/1/disk.raw"
            try await waitForCache(gatewayURL, directory: directory)
            // Warm: the whole image through the gateway once, so every chunk is held by the cache.
            try await Self.curl(["-sf", "-o", "/dev/null", gatewayURL])

            return try await Nginx.with(root: directory.appendingPathComponent("www").path, directory: directory.path) { nginx in
                let nginxURL = "http://127.0.0.1:\(nginx.port)/disk.raw"
                var report = BenchReport(bench: "gateway (memory cache \(options.memoryCache >> 20) MiB)")
                for (label, bytes) in [("64 KiB", 64 << 10), ("1 MiB", 1 << 20)] {
                    let script = directory.appendingPathComponent("ranges-\(bytes).lua").path
                    try Self.rangeScript(size: size, bytes: bytes).write(toFile: script, atomically: true, encoding: .utf8)
                    // Alternate, and keep the better of two runs of each: the machine is shared and noisy.
                    var gatewayRuns: [WrkResult] = []
                    var nginxRuns: [WrkResult] = []
                    for _ in 0..<2 {
                        nginxRuns.append(try await wrk(nginxURL, script: script))
                        gatewayRuns.append(try await wrk(gatewayURL, script: script))
                    }
                    guard let ours = gatewayRuns.max(by: { $0.requestsPerSecond < $1.requestsPerSecond }),
                        let theirs = nginxRuns.max(by: { $0.requestsPerSecond < $1.requestsPerSecond })
                    else { continue }
                    let rateRatio = ours.requestsPerSecond / theirs.requestsPerSecond
                    let latencyRatio = ours.p99Milliseconds / max(theirs.p99Milliseconds, 0.001)
                    if bytes == 64 << 10 {
                        report.figures.append(
                            BenchFigure(
                                name: "random \(label) ranges: requests/s", value: ours.requestsPerSecond, unit: "req/s",
                                baseline: .init(name: "nginx, same file from local disk", value: theirs.requestsPerSecond), ratio: rateRatio,
                                goal: "ratio >= 0.5", met: rateRatio >= 0.5))
                        report.figures.append(
                            BenchFigure(
                                name: "random \(label) ranges: p99 latency", value: ours.p99Milliseconds, unit: "ms",
                                baseline: .init(name: "nginx p99", value: theirs.p99Milliseconds), ratio: latencyRatio,
                                goal: "ratio <= 2.0", met: latencyRatio <= 2.0))
                    } else {
                        let ourRate = ours.requestsPerSecond * Double(bytes) / 1_048_576
                        let theirRate = theirs.requestsPerSecond * Double(bytes) / 1_048_576
                        report.figures.append(
                            BenchFigure(
                                name: "random \(label) ranges: throughput", value: ourRate, unit: "MiB/s",
                                baseline: .init(name: "nginx, same file from local disk", value: theirRate), ratio: ourRate / theirRate,
                                goal: "ratio >= 0.7", met: ourRate / theirRate >= 0.7))
                        report.figures.append(
                            BenchFigure(
                                name: "random \(label) ranges: p99 latency", value: ours.p99Milliseconds, unit: "ms",
                                baseline: .init(name: "nginx p99", value: theirs.p99Milliseconds), ratio: latencyRatio))
                    }
                }
                return report
            }
        }
    }

    /// Registers image `bench` version 1 with one file, as a replicator would.
    private static func register(_ admin: RPCClient, size: Int64, entries: [UInt8]) async throws {
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
    }

    /// Waits (bounded) until the gateway serves the file: its catalog view and the cache are up.
    private func waitForCache(_ url: String, directory: URL) async throws {
        for _ in 0..<300 {
            if (try? await Self.curl(["-sf", "-o", "/dev/null", "-r", "0-0", url])) != nil { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw BenchError("the gateway did not serve \(url) within 30 s")
    }

    struct WrkResult {
        let requestsPerSecond: Double
        let p99Milliseconds: Double
    }

    private func wrk(_ url: String, script: String) async throws -> WrkResult {
        let output = try await SystemCommand.run(
            "/usr/bin/wrk", ["-t2", "-c\(options.connections)", "-d\(options.seconds)s", "--latency", "-s", script, url])
        var rate: Double?
        var p99: Double?
        for line in output.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.first == "Requests/sec:", fields.count >= 2 { rate = Double(fields[1]) }
            if fields.first == "99%", fields.count >= 2 { p99 = Self.milliseconds(String(fields[1])) }
            if line.contains("Non-2xx") { throw BenchError("wrk saw failed requests at \(url): \(line)") }
        }
        guard let rate, let p99 else { throw BenchError("could not read wrk's output:\n\(output)") }
        return WrkResult(requestsPerSecond: rate, p99Milliseconds: p99)
    }

    /// wrk prints `850.00us`, `1.25ms`, `2.01s`.
    private static func milliseconds(_ text: String) -> Double? {
        for (suffix, scale) in [("us", 0.001), ("ms", 1.0), ("s", 1000.0)] where text.hasSuffix(suffix) {
            return Double(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return nil
    }

    private static func rangeScript(size: Int64, bytes: Int) -> String {
        """
        math.randomseed(os.time())
        local slots = \(size / Int64(bytes))
        request = function()
          local first = math.random(0, slots - 1) * \(bytes)
          return wrk.format("GET", nil, {["Range"] = "bytes=" .. first .. "-" .. (first + \(bytes - 1))})
        end
        """
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

/// nginx serving one directory on a free loopback port, while ``with(root:directory:_:)`` runs.
private final class Nginx: Sendable {
    let port: Int
    private let daemon: SpawnedChild

    private init(port: Int, daemon: SpawnedChild) {
        self.port = port
        self.daemon = daemon
    }

    /// Runs `body` with nginx serving `root`, its files in `directory`; stops it afterwards.
    static func with<R>(root: String, directory: String, _ body: (Nginx) async throws -> R) async throws -> R {
        let nginx = try await start(root: root, directory: directory)
        do {
            let result = try await body(nginx)
            await nginx.stop()
            return result
        } catch {
            await nginx.stop()
            throw error
        }
    }

    private static func start(root: String, directory: String) async throws -> Nginx {
        var chosen: Int?
        for _ in 0..<20 {
            let candidate = Int.random(in: 20_000..<60_000)
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(probe)
            if bound == 0 { chosen = candidate; break }
        }
        guard let chosen else { throw BenchError("no free port for nginx") }
        let configuration = """
            worker_processes 2;
            daemon off;
            pid \(directory)/nginx.pid;
            error_log \(directory)/nginx-error.log;
            events { worker_connections 1024; }
            http {
              access_log off;
              sendfile on;
              client_body_temp_path \(directory)/nginx-body;
              proxy_temp_path \(directory)/nginx-proxy;
              fastcgi_temp_path \(directory)/nginx-fastcgi;
              uwsgi_temp_path \(directory)/nginx-uwsgi;
              scgi_temp_path \(directory)/nginx-scgi;
              server { listen 127.0.0.1:\(chosen); root \(root); }
            }
            """
        let path = directory + "/nginx.conf"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let nginx = Nginx(port: chosen, daemon: try await SpawnedChild("/usr/sbin/nginx", ["-c", path, "-e", "\(directory)/nginx-error.log"]))
        for _ in 0..<100 {
            if (try? await GatewayBenchmark.curl(["-sf", "-o", "/dev/null", "-r", "0-0", "http://127.0.0.1:\(chosen)/disk.raw"])) != nil { return nginx }
            try await Task.sleep(for: .milliseconds(50))
        }
        await nginx.stop()
        throw BenchError("nginx did not start (see \(directory)/nginx-error.log)")
    }

    private func stop() async {
        // SIGTERM: a fast stop of the master and its workers.
        daemon.send(SIGTERM)
        _ = try? await daemon.exit()
    }
}
