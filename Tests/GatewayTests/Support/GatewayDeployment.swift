import AsyncHTTPClient
import CacheNode
import Catalog
import CatalogClient
import Crypto
import Foundation
import Gateway
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import NIOHTTP1
import Replicator
import ServiceLifecycle
import ReplicatorClient
import SwiftProtobuf
import Synchronization

/// A catalog, a replicator on a loop-mounted BTRFS and a gateway, in process, with real TLS;
/// admin clients of the catalog and the replicator, and an HTTP client of the gateway.
struct GatewayDeployment {
    let catalog: RPCClient
    let replicator: RPCClient
    let http: HTTPClient
    let base: String
    let catalogAddress: HostPort
    let mint: (Role, String) throws -> TLSIdentity
    let caches: CacheNodes
    /// What the gateway logged at warning level and above.
    let gatewayLog: LogRecords
    /// The gateway's HTTP port.
    let port: Int
    /// Where the cache nodes keep their directories: `cacheRoot/NAME`.
    let cacheRoot: String

    /// The directory of cache node `name`.
    func cacheDirectory(_ name: String) -> String { cacheRoot + "/" + name }

    /// Cache nodes running in process, each in a `ServiceGroup` of its own so that a test can
    /// stop one (by graceful shutdown, as SIGTERM stops a process).
    final class CacheNodes: Sendable {
        private struct Running: Sendable {
            let group: ServiceGroup
            let task: Task<Void, any Error>
        }

        private let logger: Logger
        private let running = Mutex<[String: Running]>([:])
        private let services = Mutex<[String: CacheService]>([:])

        init(logger: Logger) {
            self.logger = logger
        }

        func start(_ service: CacheService, name: String) {
            services.withLock { $0[name] = service }
            let group = ServiceGroup(services: service.services, logger: logger)
            running.withLock { $0[name] = Running(group: group, task: Task { try await group.run() }) }
        }

        /// The cache node started as `name`.
        func service(_ name: String) -> CacheService? {
            services.withLock { $0[name] }
        }

        /// Stops the cache node `name` (its server closes its connections) and waits for it.
        func stop(_ name: String) async {
            guard let node = running.withLock({ $0.removeValue(forKey: name) }) else { return }
            await node.group.triggerGracefulShutdown()
            _ = await node.task.result
        }

        func stopAll() async {
            for name in running.withLock({ Array($0.keys) }) { await stop(name) }
        }
    }

    /// Runs `body` with a deployment; its temporary directory (the catalog's database, the
    /// caches' directories) and BTRFS are removed after it, whether it returns or throws.
    /// `localCache`: the cache node whose directory the gateway reads directly (the same-host path).
    static func with(
        caches cacheNodes: [(name: String, site: String)] = [], localCache: String? = nil,
        configure: (inout GatewayConfiguration) -> Void = { _ in },
        _ body: (GatewayDeployment) async throws -> Void
    ) async throws {
        try await withTemporaryDirectory { directory in
            try await with(in: directory.path, caches: cacheNodes, localCache: localCache, configure: configure, body)
        }
    }

    private static func with(
        in directory: String, caches cacheNodes: [(name: String, site: String)], localCache: String?,
        configure: (inout GatewayConfiguration) -> Void, _ body: (GatewayDeployment) async throws -> Void
    ) async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            let logger = quietLogger()
            let authority = try CertificateAuthority.create(commonName: "icbd gateway test CA \(UUID())")
            let mint: (Role, String) throws -> TLSIdentity = { role, name in
                try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let database = directory + "/catalog.db"
            let catalogService = try CatalogService(
                configuration: CatalogConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), databasePath: database, tls: try mint(.catalog, "cat1"), name: "cat1"),
                logger: logger)
            try await withRunningServices([catalogService], logger: logger) {
                let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalogService.localAddress().port ?? 0)
                let admin = try mint(.admin, "admin")
                try await withRPCClient(
                    RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger
                ) { catalog in
                    _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq"; $0.site.cidrs = ["10.1.0.0/16"] })
                    _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "branch"; $0.site.cidrs = ["10.2.0.0/16"] })
                    var replicatorConfiguration = ReplicatorConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                        tls: try mint(.replicator, "repo-hq"), name: "repo-hq")
                    replicatorConfiguration.heartbeatInterval = .milliseconds(200)
                    let replicator = try ReplicatorService(configuration: replicatorConfiguration, logger: logger)
                    try await withRunningServices(replicator.services, logger: logger) {
                        let replicatorAddress = HostPort(host: "127.0.0.1", port: try await replicator.localAddress().port ?? 0)
                        let caches = CacheNodes(logger: logger)
                        let cacheRoot = directory + "/caches"
                        for node in cacheNodes {
                            var configuration = CacheConfiguration(
                                listen: HostPort(host: "127.0.0.1", port: 0), directory: cacheRoot + "/" + node.name, capacity: 512 << 20,
                                site: try Name(node.site), catalog: catalogAddress, tls: try mint(.cache, node.name), name: node.name)
                            configuration.heartbeatInterval = .milliseconds(200)
                            try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
                            caches.start(try CacheService(configuration: configuration, logger: logger), name: node.name)
                        }
                        do {
                            while try await catalog.unary(CatalogMethods.listNodes, .init()).nodes.filter({ $0.state == .up }).count
                                < 1 + cacheNodes.count
                            {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                            var gatewayConfiguration = GatewayConfiguration(
                                listen: HostPort(host: "127.0.0.1", port: 0), site: try Name("hq"), catalog: catalogAddress,
                                tls: try mint(.gateway, "gw-hq"), name: "gw-hq")
                            gatewayConfiguration.attemptTimeout = .seconds(2)
                            gatewayConfiguration.cacheUsageRefresh = .milliseconds(200)
                            gatewayConfiguration.localCache = localCache.map { cacheRoot + "/" + $0 }
                            configure(&gatewayConfiguration)
                            let gatewayLog = LogRecords()
                            var gatewayLogger = Logger(label: "gateway") { _ in LogRecords.Handler(records: gatewayLog) }
                            gatewayLogger.logLevel = .warning
                            let gateway = try GatewayService(configuration: gatewayConfiguration, logger: gatewayLogger)
                            try await withRunningServices(gateway.services, logger: logger) {
                                let port = try await gateway.localAddress().port ?? 0
                                let http = HTTPClient(eventLoopGroupProvider: .singleton)
                                do {
                                    try await withRPCClient(
                                        RPCClientConfiguration(target: replicatorAddress, expectedRole: .replicator, tls: admin), logger: logger
                                    ) { replicatorClient in
                                        try await body(
                                            GatewayDeployment(
                                                catalog: catalog, replicator: replicatorClient, http: http, base: "http://127.0.0.1:\(port)",
                                                catalogAddress: catalogAddress, mint: mint, caches: caches, gatewayLog: gatewayLog, port: port,
                                                cacheRoot: cacheRoot))
                                    }
                                } catch {
                                    try? await http.shutdown()
                                    throw error
                                }
                                try await http.shutdown()
                            }
                        } catch {
                            await caches.stopAll()
                            throw error
                        }
                        await caches.stopAll()
                    }
                }
            }
        }
    }

    /// One HTTP exchange; the body is collected (up to 256 MiB).
    func request(
        _ path: String, method: HTTPMethodName = .GET, headers: [(String, String)] = []
    ) async throws -> (status: Int, headers: [String: String], body: [UInt8]) {
        var request = HTTPClientRequest(url: base + path)
        request.method = method.nio
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await http.execute(request, timeout: .seconds(60))
        var fields: [String: String] = [:]
        for field in response.headers { fields[field.name.lowercased()] = field.value }
        let body = try await response.body.collect(upTo: 256 << 20)
        return (Int(response.status.code), fields, Array(body.readableBytesView))
    }

    /// GETs `path` whole, running `action` once, as soon as `bytes` of the body have arrived
    /// (a node stopped with the response in flight); returns the status and the body.
    func get(_ path: String, after bytes: Int, _ action: () async throws -> Void) async throws -> (status: Int, body: [UInt8]) {
        let response = try await http.execute(HTTPClientRequest(url: base + path), timeout: .seconds(120))
        var received: [UInt8] = []
        var acted = false
        for try await part in response.body {
            received += part.readableBytesView
            if !acted && received.count >= bytes {
                try await action()
                acted = true
            }
        }
        guard acted else { throw DeploymentError("the body of \(path) ended at \(received.count) bytes, before \(bytes)") }
        return (Int(response.status.code), received)
    }

    /// The sum of the gateway's Prometheus samples whose line starts with `series` (a name, or a
    /// name and the start of its labels, e.g. `icbd_gateway_upstream_chunks_total{node="a"`).
    func metric(_ series: String) async throws -> Double {
        let text = String(decoding: try await request("/metrics").body, as: UTF8.self)
        return text.split(separator: "\n").filter { $0.hasPrefix(series) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }
            .reduce(0, +)
    }

    /// Publishes `files` as the next version of `image` and waits until the gateway lists it.
    @discardableResult
    func publish(_ image: String, _ files: [(String, [UInt8])]) async throws -> Icbd_Replicator_V1_PublishResponse {
        let published = try await replicator.clientStreaming(ReplicatorMethods.publish) { writer in
            try await writer.write(
                .with {
                    $0.start.image = image
                    $0.start.files = files.map { file in .with { $0.path = file.0; $0.size = Int64(file.1.count) } }
                })
            for (index, file) in files.enumerated() {
                for start in stride(from: 0, to: file.1.count, by: 1 << 20) {
                    let piece = ByteBuffer(bytes: file.1[start..<min(start + (1 << 20), file.1.count)])
                    try await writer.write(.with { $0.file = UInt32(index); $0.offset = Int64(start) }, payload: piece)
                }
            }
        }
        try await waitUntil("the gateway lists \(image) v\(published.version)") {
            let answer = try await request("/v1/images/\(image)/\(published.version)/\(files[0].0)", method: .HEAD)
            return answer.status == 200
        }
        return published
    }

    /// Polls `condition` every 20 ms, at most `seconds` (a bound against hangs, not a timing claim).
    func waitUntil(_ what: String, seconds: Int = 15, _ condition: () async throws -> Bool) async throws {
        for _ in 0..<(seconds * 50) {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw DeploymentError("gave up waiting until \(what)")
    }
}

/// Log events kept in memory, for tests to read.
final class LogRecords: Sendable {
    struct Record: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    private let records = Mutex<[Record]>([])

    var all: [Record] { records.withLock { $0 } }

    /// A log handler that appends every event to `records`.
    struct Handler: LogHandler {
        let records: LogRecords
        var logLevel: Logger.Level = .warning
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit }
            let record = Record(level: event.level, message: event.message.description, metadata: merged.mapValues { "\($0)" })
            records.records.withLock { $0.append(record) }
        }
    }
}

enum HTTPMethodName {
    case GET, HEAD, POST
    var nio: NIOHTTP1.HTTPMethod {
        switch self {
        case .GET: .GET
        case .HEAD: .HEAD
        case .POST: .POST
        }
    }
}

struct DeploymentError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A disk of `mebibytes` MiB plus `tail` bytes: distinct data per MiB, MiB 3 all zeros.
func sampleDisk(mebibytes: Int, tail: Int = 12345, seed: UInt8 = 1) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: (mebibytes << 20) + tail)
    var state = UInt64(seed) &* 0x9e37_79b9_7f4a_7c15 | 1
    for index in stride(from: 0, to: bytes.count, by: 8) where index >> 20 != 3 {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        for offset in 0..<min(8, bytes.count - index) { bytes[index + offset] = UInt8(truncatingIfNeeded: state >> (offset * 8)) }
    }
    return bytes
}
