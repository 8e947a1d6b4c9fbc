import CacheClient
import CatalogClient
import Crypto
import Foundation
import HTTPTypes
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import ReplicatorClient
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
    /// The bytes of the chunk the response needs (`0..<length` for all of it).
    let part: Range<Int>
    /// The client's site: whose caches come first.
    let site: String
}

/// Reads chunks from upstreams: memory first, then the local cache node's files (the same-host
/// path, ``SameHostChunks``, when the gateway has one), then the plan's nodes one after another
/// until one answers (each attempt bounded by `attemptTimeout`; the local node first, so that a
/// miss fills it); a node that fails is ejected for a while. Concurrent reads of one chunk share
/// one upstream read.
///
/// No byte from an upstream reaches a client or memory unchecked: a cache node or repository is
/// another host, and what it sends is not trusted. The first read of a chunk fetches it whole
/// and hashes it (SHA-256) against the manifest; the whole is kept in memory, and when the read
/// wanted only part of it, its 64 KiB blocks' digests are kept too (``VerifiedBlocks``). A later
/// part read of such a chunk, once memory no longer holds it, fetches from a cache node only
/// the blocks it needs and checks each against those digests. Bytes that do not match are
/// DATA_LOSS: the node is logged, counted and ejected, and the next node of the plan is tried.
final class ChunkSource: Sendable {
    private let view: CatalogView
    private let clients: RPCClientPool
    private let health: PassiveHealth
    private let memory: ChunkMemoryCache
    private let sameHost: SameHostChunks?
    private let sameHostNotes: SameHostReadNotes?
    private let blocks: VerifiedBlocks
    private let metrics: GatewayMetrics
    private let attemptTimeout: Duration
    private let logger: Logger
    private let inFlight = Mutex<[[UInt8]: Task<ByteBuffer, any Error>]>([:])

    init(
        view: CatalogView, clients: RPCClientPool, health: PassiveHealth, memory: ChunkMemoryCache, sameHost: SameHostChunks?,
        sameHostNotes: SameHostReadNotes?, blocks: VerifiedBlocks, metrics: GatewayMetrics, attemptTimeout: Duration, logger: Logger
    ) {
        self.view = view
        self.clients = clients
        self.health = health
        self.memory = memory
        self.sameHost = sameHost
        self.sameHostNotes = sameHostNotes
        self.blocks = blocks
        self.metrics = metrics
        self.attemptTimeout = attemptTimeout
        self.logger = logger
    }

    /// The bytes of `request.part` of the chunk, exactly, cut from a verified chunk.
    /// `sameHostTried`: the caller read the local file already and found none (or a wrong one).
    func chunk(_ request: ChunkRequest, sameHostTried: Bool = false) async throws -> ByteBuffer {
        if let held = memory.get(request.hash) {
            metrics.memoryRead(hit: true)
            return try Self.slice(held, request.part)
        }
        metrics.memoryRead(hit: false)
        if !sameHostTried, let bytes = await readSameHost(request) { return bytes }
        if request.part.count < request.length, let digests = blocks.digests(of: request.hash) {
            return try await fetchPart(request, digests: digests)
        }
        let task: Task<ByteBuffer, any Error> = inFlight.withLock { inFlight in
            if let running = inFlight[request.hash] { return running }
            let task = Task { try await self.fetch(request) }
            inFlight[request.hash] = task
            return task
        }
        defer { _ = inFlight.withLock { $0.removeValue(forKey: request.hash) } }
        // Cancelling this response does not cancel a read another response may share; the
        // read ends by its own timeouts.
        return try Self.slice(try await task.value, request.part)
    }

    /// The bytes `part` of a chunk from the local cache node's file (the same-host path) when it
    /// holds the chunk: what a range within one chunk is answered with at once, without a
    /// streamed body. Nil without a same-host path or such a file.
    func sameHostPart(_ request: ChunkRequest) async -> ByteBuffer? {
        await readSameHost(request)
    }

    /// The part from the local cache node's file of the chunk when that file was verified
    /// before and the part is in the page cache (``SameHostChunks/readResident(_:length:part:)``):
    /// what the event loop answers with. Nil otherwise, counting nothing: the long way then
    /// reads, counts and explains.
    func residentSameHostPart(_ request: ChunkRequest) -> ByteBuffer? {
        guard let bytes = sameHost?.readResident(request.hash, length: request.length, part: request.part) else { return nil }
        metrics.sameHostRead(.hit)
        sameHostNotes?.note(image: request.image, version: request.version, path: request.path, index: request.index, hash: request.hash)
        return bytes
    }

    /// The part from the local cache node's file of the chunk (the same-host path), verified;
    /// nil when there is no such path, no such file, or a file that is not the chunk (logged).
    private func readSameHost(_ request: ChunkRequest) async -> ByteBuffer? {
        guard let sameHost else { return nil }
        switch await sameHost.read(request.hash, length: request.length, part: request.part) {
        case .bytes(let bytes):
            metrics.sameHostRead(.hit)
            sameHostNotes?.note(image: request.image, version: request.version, path: request.path, index: request.index, hash: request.hash)
            return bytes
        case .absent:
            metrics.sameHostRead(.absent)
        case .wrong(let problem):
            metrics.sameHostRead(.refused)
            logger.error(
                "the local cache node's file is not the chunk; reading it from the nodes",
                metadata: [
                    "image": "\(request.image)", "version": "\(request.version)", "path": "\(request.path)", "chunk": "\(request.index)",
                    "problem": "\(problem)",
                ])
        }
        return nil
    }

    /// Reads the whole chunk from the first upstream of the plan that answers it verified, and
    /// keeps it in memory (and, for a part read, its blocks' digests).
    private func fetch(_ request: ChunkRequest) async throws -> ByteBuffer {
        let buffer = try await firstVerified(request) { try await self.read(request, from: $0) }
        memory.put(request.hash, buffer)
        if request.part.count < request.length { blocks.record(request.hash, verified: buffer) }
        return buffer
    }

    /// Reads the blocks that cover `request.part` from the first upstream of the plan that
    /// answers them matching `digests`, and cuts the part from them.
    private func fetchPart(_ request: ChunkRequest, digests: [SHA256.Digest]) async throws -> ByteBuffer {
        let span = VerifiedBlocks.span(of: request.part, length: request.length)
        let bytes = try await firstVerified(request) { try await self.read(request, span: span, digests: digests, from: $0) }
        return try Self.slice(bytes, request.part.lowerBound - span.lowerBound..<request.part.upperBound - span.lowerBound)
    }

    /// The first answer of the plan's upstreams, in order, that `read` returns; an upstream that
    /// fails is ejected, and one that sent wrong bytes also counted and logged as an error.
    private func firstVerified(
        _ request: ChunkRequest, _ read: (Upstream) async throws -> ByteBuffer
    ) async throws -> ByteBuffer {
        let plan = UpstreamPlan.order(
            chunk: request.hash, site: request.site, image: request.image, version: request.version, snapshot: view.snapshot,
            local: sameHost?.nodeName, isEjected: health.isEjected)
        guard !plan.isEmpty else {
            throw GatewayError.unavailable("no cache node or repository is up to read from", retryAfter: 5)
        }
        var failures: [String] = []
        for upstream in plan {
            let started = ContinuousClock.now
            do {
                let buffer = try await read(upstream)
                metrics.upstreamRead(upstream, duration: ContinuousClock.now - started)
                return buffer
            } catch {
                if Task.isCancelled { throw CancellationError() }
                health.eject(upstream.name)
                metrics.failover(from: upstream)
                failures.append("\(upstream): \(error)")
                let metadata: Logger.Metadata = [
                    "node": "\(upstream.name)", "image": "\(request.image)", "version": "\(request.version)", "path": "\(request.path)",
                    "chunk": "\(request.index)", "error": "\(error)",
                ]
                if error is UpstreamDataLoss || (error as? RPCError)?.cause is UpstreamDataLoss {
                    metrics.corruptChunk(from: upstream)
                    logger.error("upstream sent bytes that are not the chunk; node ejected, trying the next", metadata: metadata)
                } else {
                    logger.warning("upstream read failed; trying the next node", metadata: metadata)
                }
            }
        }
        throw GatewayError(status: .badGateway, reason: "every upstream failed: \(failures.joined(separator: "; "))")
    }

    /// The whole chunk from `upstream`, its length and SHA-256 checked against the manifest's.
    private func read(_ request: ChunkRequest, from upstream: Upstream) async throws -> ByteBuffer {
        let buffer: ByteBuffer
        switch upstream.kind {
        case .cache:
            buffer = try await readFromCache(request, span: 0..<request.length, from: upstream)
        case .repository:
            buffer = try await readFromRepository(request, from: upstream)
        }
        guard buffer.readableBytes == request.length else {
            throw UpstreamDataLoss("\(buffer.readableBytes) bytes for a chunk of \(request.length)")
        }
        let digest = buffer.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard digest == request.hash else {
            throw UpstreamDataLoss("the bytes sent do not hash to the manifest's SHA-256 of the chunk")
        }
        return buffer
    }

    /// The blocks of `span` of the chunk from `upstream`, each checked against `digests` (a
    /// repository sends whole chunks: the whole is checked and the span cut from it).
    private func read(_ request: ChunkRequest, span: Range<Int>, digests: [SHA256.Digest], from upstream: Upstream) async throws -> ByteBuffer {
        guard upstream.kind == .cache else {
            return try Self.slice(try await read(request, from: upstream), span)
        }
        let bytes = try await readFromCache(request, span: span, from: upstream)
        guard VerifiedBlocks.match(bytes, span: span, digests: digests) else {
            throw UpstreamDataLoss("bytes \(span) sent do not hash to the blocks of the chunk verified earlier")
        }
        return bytes
    }

    /// Bytes `span` of the chunk as a cache node sends them (unchecked; at most `span.count`).
    private func readFromCache(_ request: ChunkRequest, span: Range<Int>, from upstream: Upstream) async throws -> ByteBuffer {
        let client = try clients.client(for: upstream.address, role: upstream.role)
        let call = Icbd_Cache_V1_GetChunksRequest.with {
            $0.hashes = [Data(request.hash)]
            $0.image = request.image
            $0.version = request.version
            $0.path = request.path
            $0.indexes = [request.index]
            if span.count < request.length {
                $0.offset = Int64(span.lowerBound)
                $0.length = Int64(span.count)
            }
        }
        return try await client.serverStreaming(CacheMethods.getChunks, call, options: RPCCallOptions(timeout: attemptTimeout)) { responses in
            var parts: [ByteBuffer] = []
            var received = 0
            var first = true
            for try await part in responses.withPayloads {
                if first {
                    guard Array(part.message.sha256) == request.hash else {
                        throw UpstreamDataLoss("the cache answered another chunk")
                    }
                    first = false
                } else if !part.message.sha256.isEmpty {
                    throw UpstreamDataLoss("the cache answered more than the chunk asked for")
                }
                received += part.payload.readableBytes
                guard received <= span.count else {
                    throw UpstreamDataLoss("the cache sent more than the \(span.count) bytes asked for")
                }
                parts.append(part.payload)
            }
            return Self.joined(parts)
        }
    }

    /// The whole chunk as a repository sends it (unchecked; at most the chunk's length).
    private func readFromRepository(_ request: ChunkRequest, from upstream: Upstream) async throws -> ByteBuffer {
        let client = try clients.client(for: upstream.address, role: upstream.role)
        let call = Icbd_Replicator_V1_ReadChunksRequest.with {
            $0.image = request.image
            $0.version = request.version
            $0.path = request.path
            $0.chunks = [UInt32(request.index)]
        }
        return try await client.serverStreaming(ReplicatorMethods.readChunks, call, options: RPCCallOptions(timeout: attemptTimeout)) { responses in
            var parts: [ByteBuffer] = []
            var received = 0
            for try await part in responses.withPayloads {
                guard part.message.index == UInt32(request.index), Array(part.message.sha256) == request.hash else {
                    throw UpstreamDataLoss("the repository answered another chunk")
                }
                received += part.payload.readableBytes
                guard received <= request.length else {
                    throw UpstreamDataLoss("the repository sent more than the chunk's \(request.length) bytes")
                }
                parts.append(part.payload)
            }
            return Self.joined(parts)
        }
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

/// An upstream's answer that is not the chunk asked for (another hash named, too many or too
/// few bytes, bytes that do not hash to the manifest's SHA-256): the node is not to be trusted
/// for now. Thrown inside an RPC call it comes out as the RPC error DATA_LOSS with this cause.
struct UpstreamDataLoss: Error, RPCErrorConvertible, CustomStringConvertible {
    let problem: String

    init(_ problem: String) {
        self.problem = problem
    }

    var rpcError: RPCError { RPCError(code: .dataLoss, message: problem, cause: self) }
    var description: String { "DATA_LOSS: \(problem)" }
}
