import CacheNode
import Catalog
import Foundation
import HTTPTypes
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf
import Synchronization

/// One chunk of one file that a response needs.
struct ChunkRequest: Sendable {
    let image: String
    let version: Int64
    let path: String
    let index: Int64
    let hash: [UInt8]
    let length: Int
    /// The bytes of the chunk the response needs (all of it: `0..<length`).
    let part: Range<Int>
    /// The client's site: whose caches come first.
    let site: String

    var isWhole: Bool { part.count == length }
}

/// Reads chunks from upstreams: memory first, then the plan's nodes one after another until
/// one answers (each attempt bounded by `attemptTimeout`); a node that fails is ejected for a
/// while. Concurrent reads of one chunk share one upstream read.
///
/// A response that needs only part of a chunk reads only that part from a cache node, unless
/// the whole chunk is worth holding in memory: it is being read already, or it was asked for
/// twice recently (``RecentChunks``: a storm's third reader of a chunk fetches it whole, and
/// later readers find it in memory). "Recently" is among as many distinct chunks as memory
/// holds, the reuse distance of a memory hit. Random reads over more than memory holds meet a
/// chunk again within that distance by chance (a quarter of the time at 256 MiB of a 1 GiB
/// image), and twice far less often: they stay partial instead of fetching 1 MiB for 64 KiB.
final class ChunkSource: Sendable {
    private let view: CatalogView
    private let clients: UpstreamClients
    private let health: PassiveHealth
    private let memory: ChunkMemoryCache
    private let metrics: GatewayMetrics
    private let attemptTimeout: Duration
    private let logger: Logger
    private let inFlight = Mutex<[[UInt8]: Task<ByteBuffer, any Error>]>([:])
    private let recent: RecentChunks
    /// Earlier asks, while remembered, after which a part read fetches the whole chunk.
    static let asksBeforeWholeFetch = 2

    init(
        view: CatalogView, clients: UpstreamClients, health: PassiveHealth, memory: ChunkMemoryCache, metrics: GatewayMetrics,
        attemptTimeout: Duration, logger: Logger
    ) {
        self.view = view
        self.clients = clients
        self.health = health
        self.memory = memory
        self.recent = RecentChunks(capacity: memory.capacityBytes / Int(ChunkManifest.defaultChunkSize))
        self.metrics = metrics
        self.attemptTimeout = attemptTimeout
        self.logger = logger
    }

    /// The bytes of `request.part` of the chunk, exactly.
    func chunk(_ request: ChunkRequest) async throws -> ByteBuffer {
        if let held = memory.get(request.hash) {
            metrics.memoryRead(hit: true)
            return try Self.slice(held, request.part)
        }
        metrics.memoryRead(hit: false)
        let askedRecently = recent.touch(request.hash) >= Self.asksBeforeWholeFetch
        let task: Task<ByteBuffer, any Error>? = inFlight.withLock { inFlight in
            if let running = inFlight[request.hash] { return running }
            guard request.isWhole || (askedRecently && memory.capacityBytes > 0) else { return nil }
            let task = Task { try await self.fetch(request, part: nil) }
            inFlight[request.hash] = task
            return task
        }
        guard let task else { return try await fetch(request, part: request.part) }
        defer { _ = inFlight.withLock { $0.removeValue(forKey: request.hash) } }
        // Cancelling this response does not cancel a read another response may share; the
        // read ends by its own timeouts.
        return try Self.slice(try await task.value, request.part)
    }

    /// Reads the whole chunk (`part` nil; kept in memory) or only `part` of it.
    private func fetch(_ request: ChunkRequest, part: Range<Int>?) async throws -> ByteBuffer {
        let plan = UpstreamPlan.order(
            chunk: request.hash, site: request.site, image: request.image, version: request.version, snapshot: view.snapshot,
            isEjected: health.isEjected)
        guard !plan.isEmpty else {
            throw GatewayError.unavailable("no cache node or repository is up to read from", retryAfter: 5)
        }
        var failures: [String] = []
        for upstream in plan {
            let started = ContinuousClock.now
            do {
                let buffer = try await read(request, part: part, from: upstream)
                metrics.upstreamRead(upstream, duration: ContinuousClock.now - started)
                if part == nil { memory.put(request.hash, buffer) }
                return buffer
            } catch {
                if Task.isCancelled { throw CancellationError() }
                health.eject(upstream.name)
                metrics.failover(from: upstream)
                failures.append("\(upstream): \(error)")
                logger.warning(
                    "upstream read failed; trying the next node",
                    metadata: ["node": "\(upstream.name)", "chunk": "\(request.index)", "image": "\(request.image)", "error": "\(error)"])
            }
        }
        throw GatewayError(status: .badGateway, reason: "every upstream failed: \(failures.joined(separator: "; "))")
    }

    /// The whole chunk, or `part` of it, from `upstream` (a repository always sends it whole).
    private func read(_ request: ChunkRequest, part: Range<Int>?, from upstream: Upstream) async throws -> ByteBuffer {
        let client = try clients.client(for: upstream)
        let options = RPCCallOptions(timeout: attemptTimeout)
        var buffer: ByteBuffer
        switch upstream.kind {
        case .cache:
            let call = Icbd_Cache_V1_GetChunksRequest.with {
                $0.hashes = [Data(request.hash)]
                $0.image = request.image
                $0.version = request.version
                $0.path = request.path
                $0.indexes = [request.index]
                if let part {
                    $0.offset = Int64(part.lowerBound)
                    $0.length = Int64(part.count)
                }
            }
            buffer = try await client.serverStreaming(CacheMethods.getChunks, call, options: options) { responses in
                var parts: [ByteBuffer] = []
                var first = true
                for try await part in responses.withPayloads {
                    if first {
                        guard Array(part.message.sha256) == request.hash else {
                            throw RPCError(code: .dataLoss, message: "the cache answered another chunk")
                        }
                        first = false
                    } else if !part.message.sha256.isEmpty {
                        throw RPCError(code: .dataLoss, message: "the cache answered more than the chunk asked for")
                    }
                    parts.append(part.payload)
                }
                return Self.joined(parts)
            }
        case .repository:
            let call = Icbd_Replicator_V1_ReadChunksRequest.with {
                $0.image = request.image
                $0.version = request.version
                $0.path = request.path
                $0.chunks = [UInt32(request.index)]
            }
            buffer = try await client.serverStreaming(ReplicatorMethods.readChunks, call, options: options) { responses in
                var parts: [ByteBuffer] = []
                for try await part in responses.withPayloads {
                    guard part.message.index == UInt32(request.index), Array(part.message.sha256) == request.hash else {
                        throw RPCError(code: .dataLoss, message: "the repository answered another chunk")
                    }
                    parts.append(part.payload)
                }
                return Self.joined(parts)
            }
        }
        if let part, upstream.kind == .repository, buffer.readableBytes == request.length {
            buffer = try Self.slice(buffer, part)
        }
        let expected = part?.count ?? request.length
        guard buffer.readableBytes == expected else {
            throw RPCError(code: .dataLoss, message: "\(buffer.readableBytes) bytes for \(expected) of a chunk of \(request.length)")
        }
        return buffer
    }

    private static func slice(_ buffer: ByteBuffer, _ part: Range<Int>) throws -> ByteBuffer {
        guard part.count != buffer.readableBytes else { return buffer }
        guard let slice = buffer.getSlice(at: buffer.readerIndex + part.lowerBound, length: part.count) else {
            throw GatewayError(status: .badGateway, reason: "a chunk of \(buffer.readableBytes) bytes has no bytes \(part)")
        }
        return slice
    }

    private static func joined(_ parts: [ByteBuffer]) -> ByteBuffer {
        guard parts.count != 1, var first = parts.first else { return parts.first ?? ByteBuffer() }
        for var part in parts.dropFirst() { first.writeBuffer(&part) }
        return first
    }
}
