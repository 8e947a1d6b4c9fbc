import CacheClient
import CacheNode
import Catalog
import CatalogClient
import Crypto
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import Replicator
import ReplicatorClient
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// The replicator's `read chunks` log lines: one per ReadChunks call.
final class ReadChunksLog: Sendable {
    struct Call: Sendable, Equatable {
        var version: Int64
        var chunks: Int
        var indexes: [UInt32]
    }

    private let calls = Mutex<[Call]>([])

    func record(_ call: Call) { calls.withLock { $0.append(call) } }

    var all: [Call] { calls.withLock { $0 } }

    /// The chunk count of each call so far.
    var chunksPerCall: [Int] { all.map(\.chunks) }
}

/// A log handler that keeps the replicator's `read chunks` lines and drops the rest.
struct ReadChunksLogHandler: LogHandler {
    let log: ReadChunksLog
    var logLevel: Logger.Level = .debug
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        guard event.message.description == "read chunks", let metadata = event.metadata,
            case .string(let count)? = metadata["chunks"], let chunks = Int(count),
            case .string(let version)? = metadata["version"], case .string(let indexes)? = metadata["indexes"]
        else { return }
        log.record(.init(version: Int64(version) ?? 0, chunks: chunks, indexes: indexes.split(separator: ",").compactMap { UInt32($0) }))
    }
}

/// A published file: its bytes and manifest entries.
struct PublishedDisk {
    let image: String
    let version: Int64
    let path: String
    let bytes: [UInt8]
    let chunkSize = 1 << 20

    /// The SHA-256 of chunk `index` (nil for an all-zero chunk).
    func digest(_ index: Int) -> ChunkDigest? {
        let piece = chunk(index)
        return piece.allSatisfy { $0 == 0 } ? nil : ChunkDigest(bytes: Array(SHA256.hash(data: piece)))
    }

    func chunk(_ index: Int) -> ArraySlice<UInt8> {
        bytes[index * chunkSize..<min((index + 1) * chunkSize, bytes.count)]
    }

    var chunkCount: Int { (bytes.count + chunkSize - 1) / chunkSize }

    /// GetChunks for `indexes`, with position hints.
    func request(_ indexes: [Int]) -> Icbd_Cache_V1_GetChunksRequest {
        .with {
            $0.image = image
            $0.version = version
            $0.path = path
            $0.hashes = indexes.map { Data(digest($0)?.bytes ?? []) }
            $0.indexes = indexes.map(Int64.init)
        }
    }
}

/// A catalog, a replicator on a loop-mounted BTRFS with one published image, in process, with
/// real mutual TLS; caches are started by ``withCache(capacity:directory:configure:_:)``.
struct CacheDeployment {
    /// The deployment's temporary directory: the catalog's database and the caches' directories.
    let directory: String
    let catalog: RPCClient
    let catalogAddress: HostPort
    let mint: @Sendable (Role, String) throws -> TLSIdentity
    let reads: ReadChunksLog
    let disk: PublishedDisk
    let logger: Logger
    /// Stops the replicator (as if its machine went away).
    let stopReplicator: @Sendable () async -> Void
    /// Publishes the next version of the image's `disk.raw` with these bytes.
    let publishNext: @Sendable ([UInt8]) async throws -> PublishedDisk

    /// 8 MiB of distinct chunks, one of them all zero.
    static func diskBytes(seed: UInt8 = 1) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        var state: UInt64 = 0x1234_5678 &+ UInt64(seed)
        for index in bytes.indices where index >> 20 != 3 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            bytes[index] = UInt8(truncatingIfNeeded: state)
        }
        return bytes
    }

    /// Runs `body` with a deployment; its temporary directory and BTRFS are removed after it,
    /// whether it returns or throws.
    static func with(_ body: (CacheDeployment) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in try await with(in: directory.path, body) }
    }

    private static func with(in directory: String, _ body: (CacheDeployment) async throws -> Void) async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            let logger = quietLogger()
            let authority = try CertificateAuthority.create(commonName: "icbd cache test CA \(UUID())")
            let mint: @Sendable (Role, String) throws -> TLSIdentity = { role, name in
                try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let database = directory + "/catalog.db"
            let catalogService = try CatalogService(
                configuration: CatalogConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), databasePath: database, tls: try mint(.catalog, "cat1"), name: "cat1"),
                logger: logger)
            let reads = ReadChunksLog()
            let replicatorLogger = Logger(label: "replicator") { _ in ReadChunksLogHandler(log: reads) }
            try await withRunningServices([catalogService], logger: logger) {
                let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalogService.localAddress().port ?? 0)
                var configuration = ReplicatorConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                    tls: try mint(.replicator, "repo-hq"), name: "repo-hq")
                configuration.heartbeatInterval = .milliseconds(100)
                let replicator = try ReplicatorService(configuration: configuration, logger: replicatorLogger)
                // Its own group, so that a test can stop it (by graceful shutdown) while the rest runs.
                let replicatorGroup = ServiceGroup(services: replicator.services, logger: logger)
                let replicatorTask = Task { try await replicatorGroup.run() }
                let stopReplicator: @Sendable () async -> Void = {
                    await replicatorGroup.triggerGracefulShutdown()
                    _ = await replicatorTask.result
                }
                do {
                    let replicatorAddress = HostPort(host: "127.0.0.1", port: try await replicator.localAddress().port ?? 0)
                    let admin = try mint(.admin, "admin")
                    try await withRPCClient(
                        RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger
                    ) { catalog in
                        _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        while try await catalog.unary(CatalogMethods.listNodes, .init()).nodes.isEmpty {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        let quiet = logger
                        let publishNext: @Sendable ([UInt8]) async throws -> PublishedDisk = { bytes in
                            let published = try await withRPCClient(
                                RPCClientConfiguration(target: replicatorAddress, expectedRole: .replicator, tls: admin), logger: quiet
                            ) { client in
                                try await publish(client, image: "win11", path: "disk.raw", bytes: bytes)
                            }
                            return PublishedDisk(image: "win11", version: published.version, path: "disk.raw", bytes: bytes)
                        }
                        let disk = try await publishNext(diskBytes())
                        try await body(
                            CacheDeployment(
                                directory: directory, catalog: catalog, catalogAddress: catalogAddress, mint: mint, reads: reads,
                                disk: disk, logger: logger, stopReplicator: stopReplicator, publishNext: publishNext))
                    }
                } catch {
                    await stopReplicator()
                    throw error
                }
                await stopReplicator()
            }
        }
    }

    /// Runs a cache node of site `hq` while `body` runs, with a gateway's client of it; its
    /// directory is `directory`, else a fresh one in the deployment's.
    func withCache<R: Sendable>(
        capacity: Int64 = 64 << 20, directory: String? = nil, name: String = "cache-hq", configure: (inout CacheConfiguration) -> Void = { _ in },
        _ body: (CacheService, RPCClient) async throws -> R
    ) async throws -> R {
        let directory = directory ?? self.directory + "/cache-\(UUID())"
        var configuration = CacheConfiguration(
            listen: HostPort(host: "127.0.0.1", port: 0), directory: directory, capacity: capacity, site: try Name("hq"),
            catalog: catalogAddress, tls: try mint(.cache, name), name: name)
        configuration.heartbeatInterval = .milliseconds(100)
        configure(&configuration)
        let cache = try CacheService(configuration: configuration, logger: logger)
        return try await withRunningServices(cache.services, logger: logger) {
            let address = HostPort(host: "127.0.0.1", port: try await cache.localAddress().port ?? 0)
            return try await withRPCClient(
                RPCClientConfiguration(target: address, expectedRole: .cache, tls: try mint(.gateway, "gw-hq")), logger: logger
            ) { client in
                try await body(cache, client)
            }
        }
    }
}

/// Publishes one file through the replicator's Publish, 1 MiB per message.
func publish(_ client: RPCClient, image: String, path: String, bytes: [UInt8]) async throws -> Icbd_Replicator_V1_PublishResponse {
    try await client.clientStreaming(ReplicatorMethods.publish) { writer in
        try await writer.write(
            .with {
                $0.start.image = image
                $0.start.files = [.with { $0.path = path; $0.size = Int64(bytes.count) }]
            })
        for start in stride(from: 0, to: bytes.count, by: 1 << 20) {
            let piece = ByteBuffer(bytes: bytes[start..<min(start + (1 << 20), bytes.count)])
            try await writer.write(.with { $0.file = 0; $0.offset = Int64(start) }, payload: piece)
        }
    }
}

/// Calls GetChunks and returns each chunk's bytes, pieces joined.
func getChunks(_ client: RPCClient, _ request: Icbd_Cache_V1_GetChunksRequest) async throws -> [(ChunkDigest?, [UInt8])] {
    try await client.serverStreaming(CacheMethods.getChunks, request) { responses in
        var chunks: [(ChunkDigest?, [UInt8])] = []
        for try await response in responses.withPayloads {
            if response.message.sha256.isEmpty, !chunks.isEmpty {
                chunks[chunks.count - 1].1 += Array(response.payload.readableBytesView)
            } else {
                chunks.append((ChunkDigest(bytes: response.message.sha256), Array(response.payload.readableBytesView)))
            }
        }
        return chunks
    }
}
