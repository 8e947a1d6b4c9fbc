import CacheNode
import Catalog
import Foundation
import CacheClient
import ICBDCore
import ReplicatorClient
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf
import Synchronization

/// `icbd bench cache`: a cache node in process between a catalog and an in-memory repository
/// (a ReadChunks server that counts the bytes it sends), over real mutual TLS:
///
/// - miss storm: `callers` callers ask at once for every chunk of one 64 MiB version: upstream
///   bytes / unique bytes (goal 1.0: each chunk crosses the WAN once);
/// - hit path: GetChunks of chunks held (read from disk, sent over TLS; verified as the cache's
///   schedule says) next to reading the same chunk files from the page cache in the same process
///   (goal ratio >= 0.6), and next to a plain swift-nio-ssl socket copy of as many bytes: the
///   ceiling of any path over TLS on this machine;
/// - eviction: S3-FIFO's hit ratio next to LRU's on a synthetic trace of boots of three versions
///   and two scans (``EvictionTrace``).
public struct CacheBenchmark: Sendable {
    /// The miss storm's callers and version size, the hit path's MiB per round, the cache's directory.
    public struct Options: Sendable {
        public var callers = 200
        public var versionMegabytes = 64
        public var hitMegabytes = 2048
        public var directory = FileManager.default.temporaryDirectory.path

        public init(callers: Int, versionMegabytes: Int, hitMegabytes: Int, directory: String) {
            self.callers = callers
            self.versionMegabytes = versionMegabytes
            self.hitMegabytes = hitMegabytes
            self.directory = directory
        }
    }

    let options: Options
    let logger: Logger

    public init(options: Options, logger: Logger) {
        self.options = options
        self.logger = logger
    }

    public func run() async throws -> BenchReport {
        let directory = URL(fileURLWithPath: options.directory).appendingPathComponent("icbd-bench-cache-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let chunks = (0..<options.versionMegabytes).map { Self.chunk($0) }
        // The cache's server and the reading client get an event loop each, as in `bench rpc`:
        // encryption and decryption run on different threads, whatever NIO's placement.
        let loops = BenchEventLoops()
        let repository = MemoryRepository(chunks: chunks)
        let report = try await BenchServices.with(logger: logger) { services in
            let site = try await BenchSite.start(repository: repository, directory: directory, services: services, logger: logger)
            let catalogAddress = site.catalogAddress
            let gatewayIdentity = try site.identity(.gateway, "bench-gateway")
            let cacheIdentity = try site.identity(.cache, "bench-cache")
            let cache = try CacheService(
                configuration: CacheConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), directory: directory.appendingPathComponent("cache").path,
                    capacity: Int64(options.versionMegabytes + 64) << 20, site: try Name("hq"), catalog: catalogAddress,
                    tls: cacheIdentity, name: "bench-cache"),
                group: loops.server, logger: logger)
            services.start(cache)
            let cacheAddress = HostPort(host: "127.0.0.1", port: try await cache.localAddress().port ?? 0)
            let client = try RPCClient(
                configuration: RPCClientConfiguration(target: cacheAddress, expectedRole: .cache, tls: gatewayIdentity), group: loops.client,
                logger: logger)
            services.start(client)
            var report = BenchReport(bench: "cache")
            report.figures += try await missStorm(client, chunks: chunks, repository: repository)
            report.figures += try await hitPath(
                client, chunks: chunks, cacheDirectory: directory.appendingPathComponent("cache").path,
                tls: (cacheIdentity, gatewayIdentity), loops: loops)
            report.figures += eviction()
            return report
        }
        try await loops.shutdown()
        return report
    }

    private func request(_ chunks: [(ChunkDigest, ByteBuffer)]) -> Icbd_Cache_V1_GetChunksRequest {
        .with {
            $0.image = "bench"
            $0.version = 1
            $0.path = "disk.raw"
            $0.hashes = chunks.map { Data($0.0.bytes) }
            $0.indexes = chunks.indices.map(Int64.init)
        }
    }

    /// Reads every response; returns the bytes received.
    private func drain(_ client: RPCClient, _ request: Icbd_Cache_V1_GetChunksRequest) async throws -> Int {
        try await client.serverStreaming(CacheMethods.getChunks, request) { responses in
            var bytes = 0
            for try await response in responses.withPayloads { bytes += response.payload.readableBytes }
            return bytes
        }
    }

    private func missStorm(_ client: RPCClient, chunks: [(ChunkDigest, ByteBuffer)], repository: MemoryRepository) async throws
        -> [BenchFigure]
    {
        let request = request(chunks)
        let start = ContinuousClock.now
        let received = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<options.callers {
                group.addTask { try await drain(client, request) }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - start
        let unique = chunks.reduce(0) { $0 + $1.1.readableBytes }
        guard received == unique * options.callers else {
            throw RPCError(code: .internal, message: "the miss storm received \(received) bytes, not \(unique * options.callers)")
        }
        let ratio = Double(repository.bytesSent.load(ordering: .relaxed)) / Double(unique)
        return [
            BenchFigure(
                name: "miss storm: upstream bytes / unique bytes", value: ratio, unit: "x", goal: "value <= 1.0", met: ratio <= 1.0),
            BenchFigure(
                name: "miss storm: \(options.callers) callers x \(options.versionMegabytes) MiB served",
                value: Double(received) / elapsed.seconds / 1_048_576, unit: "MiB/s"),
        ]
    }

    private func hitPath(
        _ client: RPCClient, chunks: [(ChunkDigest, ByteBuffer)], cacheDirectory: String, tls: (server: TLSIdentity, client: TLSIdentity),
        loops: BenchEventLoops
    ) async throws -> [BenchFigure] {
        let rounds = max(1, options.hitMegabytes / max(1, options.versionMegabytes))
        let request = request(chunks)
        let paths = chunks.map { "\(cacheDirectory)/chunks/\($0.0.hex.prefix(2))/\($0.0.hex)" }
        // Warm-up of each path, then rounds that run the three back to back, so drift on a noisy
        // machine hits all alike; medians.
        _ = try await drain(client, request)
        _ = try Self.readFiles(paths)
        _ = try await PlainTLSCopy.run(totalBytes: 64 << 20, server: tls.server, client: tls.client, loops: loops, logger: logger)
        var rpc: [Double] = []
        var pageCache: [Double] = []
        var plainTLS: [Double] = []
        for _ in 0..<5 {
            var start = ContinuousClock.now
            var bytes = 0
            for _ in 0..<rounds { bytes += try await drain(client, request) }
            rpc.append(Double(bytes) / (ContinuousClock.now - start).seconds / 1_048_576)
            start = ContinuousClock.now
            bytes = 0
            for _ in 0..<rounds { bytes += try Self.readFiles(paths) }
            pageCache.append(Double(bytes) / (ContinuousClock.now - start).seconds / 1_048_576)
            let plain = try await PlainTLSCopy.run(
                totalBytes: bytes, server: tls.server, client: tls.client, loops: loops, logger: logger)
            plainTLS.append(Double(bytes) / plain.seconds / 1_048_576)
        }
        let rpcMedian = rpc.sorted()[2]
        let pageMedian = pageCache.sorted()[2]
        let plainMedian = plainTLS.sorted()[2]
        // What verification costs when it is due: SHA-256 of the same bytes, alone.
        let start = ContinuousClock.now
        for chunk in chunks { _ = ChunkDigest(of: chunk.1) }
        let hashRate = Double(chunks.count) / (ContinuousClock.now - start).seconds
        return [
            BenchFigure(
                name: "hit path: GetChunks over TLS", value: rpcMedian, unit: "MiB/s",
                baseline: .init(name: "page cache read", value: pageMedian), ratio: rpcMedian / pageMedian, goal: "ratio >= 0.6",
                met: rpcMedian / pageMedian >= 0.6),
            BenchFigure(
                name: "hit path: GetChunks over TLS", value: rpcMedian, unit: "MiB/s",
                baseline: .init(name: "plain TLS socket copy", value: plainMedian), ratio: rpcMedian / plainMedian),
            BenchFigure(
                name: "ceiling: plain TLS socket copy", value: plainMedian, unit: "MiB/s",
                baseline: .init(name: "page cache read", value: pageMedian), ratio: plainMedian / pageMedian),
            BenchFigure(name: "SHA-256 of 1 MiB chunks (one core)", value: hashRate, unit: "MiB/s"),
        ]
    }

    private func eviction() -> [BenchFigure] {
        var figures: [BenchFigure] = []
        for (label, between) in [("boots of 3 versions + 2 scans", 0), ("same + 600 once-read chunks between boots", 600)] {
            var options = EvictionTrace.Options()
            options.scanBetweenBoots = between
            let trace = EvictionTrace(options: options)
            let reads = trace.reads()
            let s3fifo = trace.hitRatio(.s3fifo, reads: reads)
            let lru = trace.hitRatio(.lru, reads: reads)
            figures.append(
                BenchFigure(
                    name: "hit ratio, \(label): S3-FIFO", value: s3fifo, unit: "",
                    baseline: .init(name: "LRU", value: lru), ratio: s3fifo / lru, goal: "ratio >= 1.0", met: s3fifo >= lru))
        }
        return figures
    }

    /// Reads the files whole with `pread` into a fresh buffer each (as the cache does).
    private static func readFiles(_ paths: [String]) throws -> Int {
        var total = 0
        for path in paths {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw RPCError(code: .internal, message: "cannot open \(path)") }
            defer { close(fd) }
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            let read = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { pointer in
                max(0, pread(fd, pointer.baseAddress, 1 << 20, 0))
            }
            total += read
        }
        return total
    }

    /// Chunk `index` of the bench version: 1 MiB of bytes no other chunk has.
    static func chunk(_ index: Int) -> (ChunkDigest, ByteBuffer) {
        var random = SplitMix(seed: UInt64(index) &+ 1)
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        for _ in 0..<(1 << 17) { buffer.writeInteger(random.next()) }
        return (ChunkDigest(of: buffer), buffer)
    }
}

/// A repository in memory: serves ReadChunks of `bench` v1 `disk.raw` and counts what it sends.
final class MemoryRepository: RPCService, Sendable {
    let chunks: [ByteBuffer]
    let bytesSent = Atomic<Int64>(0)

    init(chunks: [(ChunkDigest, ByteBuffer)]) {
        self.chunks = chunks.map(\.1)
    }

    func register(into router: inout RPCRouter) {
        router.serverStreaming(ReplicatorMethods.readChunks) { request, writer, _ in
            for index in request.chunks {
                guard Int(index) < self.chunks.count else { throw RPCError(code: .invalidArgument, message: "no chunk \(index)") }
                let chunk = self.chunks[Int(index)]
                self.bytesSent.add(Int64(chunk.readableBytes), ordering: .relaxed)
                try await writer.write(
                    .with {
                        $0.index = index
                        $0.sha256 = Data(ChunkDigest(of: chunk).bytes)
                    }, payload: chunk)
            }
        }
    }
}
