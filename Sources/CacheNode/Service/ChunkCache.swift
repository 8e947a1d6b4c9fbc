import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf
import NIOCore

/// The cache's read path: hits from the store, misses through single-flight upstream fills.
public final class ChunkCache: Sendable {
    public let store: ChunkStore
    public let metrics: CacheMetrics
    let scheduler: FillScheduler
    let readAhead: Int
    let logger: Logger
    /// Told of every chunk served (boot profiles).
    let observer: (@Sendable (ChunkWant) -> Void)?

    /// The most chunks one GetChunks call may ask for.
    public static let maximumChunksPerCall = 1024
    /// Chunks larger than this go out in several messages (a frame carries at most 16 MiB).
    static let maximumPiece = 8 << 20

    init(
        store: ChunkStore, metrics: CacheMetrics, scheduler: FillScheduler, readAhead: Int, logger: Logger,
        observer: (@Sendable (ChunkWant) -> Void)? = nil
    ) {
        self.store = store
        self.metrics = metrics
        self.scheduler = scheduler
        self.readAhead = readAhead
        self.logger = logger
        self.observer = observer
    }

    /// Chunks held that a GetChunks call reads (and verifies) from disk ahead of the one it sends.
    static let diskReadAhead = 4

    /// Streams the chunks asked for, in order; misses are fetched `readAhead` chunks ahead, and
    /// hits read from disk ``diskReadAhead`` chunks ahead, so reading, verifying and sending
    /// overlap.
    func serve(_ request: Icbd_Cache_V1_GetChunksRequest, to writer: RPCResponseWriter<Icbd_Cache_V1_GetChunksResponse>)
        async throws
    {
        let wants = try Self.wants(of: request)
        let part = try Self.part(of: request)
        var prefetched = 0
        var missing: Set<Int> = []
        var diskReadsStarted = 0
        var diskReads: [Int: Task<ByteBuffer?, Never>] = [:]
        // Reads still running when the call ends are not waited for; they end on their own.
        defer { for read in diskReads.values { read.cancel() } }
        for (position, want) in wants.enumerated() {
            let horizon = min(wants.count, position + max(1, readAhead))
            if prefetched < horizon {
                var fills: [ChunkWant] = []
                for ahead in prefetched..<horizon where !store.contains(wants[ahead].digest) {
                    missing.insert(ahead)
                    fills.append(wants[ahead])
                }
                scheduler.prefetch(fills, priority: .demand)  // counts the joins of flights under way
                prefetched = horizon
            }
            let diskHorizon = min(wants.count, position + Self.diskReadAhead)
            while diskReadsStarted < diskHorizon {
                let ahead = diskReadsStarted
                diskReadsStarted += 1
                guard !missing.contains(ahead) else { continue }
                let store = store
                let digest = wants[ahead].digest
                diskReads[ahead] = Task { await store.read(digest, part: part) }
            }
            let bytes: ByteBuffer
            if let read = diskReads.removeValue(forKey: position), let held = await read.value {
                metrics.hit(bytes: held.readableBytes)
                bytes = held
            } else {
                let wasMissing = missing.remove(position) != nil
                let whole = try await chunk(want, knownMissing: true, prefetched: wasMissing)
                bytes = part?.cut(whole) ?? whole
            }
            if let part { try Self.check(bytes, holds: part) }
            try await send(want.digest, bytes, to: writer)
            observer?(want)
        }
    }

    /// One chunk: from the store when held (verified), else from upstream.
    public func chunk(_ want: ChunkWant, knownMissing: Bool = false, prefetched: Bool = false) async throws -> ByteBuffer {
        if !knownMissing, let bytes = await store.read(want.digest) {
            metrics.hit(bytes: bytes.readableBytes)
            return bytes
        }
        metrics.miss()
        // A flight that ended just before we joined left the chunk in the store: read it there.
        for _ in 0..<4 {
            if let bytes = try await scheduler.chunk(want, prefetched: prefetched) { return bytes }
            if let bytes = await store.read(want.digest) { return bytes }
        }
        throw RPCError(code: .unavailable, message: "chunk \(want.digest) was evicted each time it was fetched; the cache is too small")
    }

    /// Counts chunks that a gateway on this host read from the store's files itself (the
    /// same-host path) as reads of its own: their recency for eviction, hits, boot profiles.
    /// Returns how many of them the store holds (the others are ignored).
    func noteSameHostReads(_ wants: [ChunkWant]) -> Int {
        var held = 0
        for want in wants where store.noteAccess(want.digest) {
            held += 1
            metrics.sameHostRead()
            observer?(want)
        }
        return held
    }

    private func send(_ digest: ChunkDigest, _ bytes: ByteBuffer, to writer: RPCResponseWriter<Icbd_Cache_V1_GetChunksResponse>)
        async throws
    {
        var rest = bytes
        var first = true
        repeat {
            let piece = rest.readSlice(length: min(rest.readableBytes, Self.maximumPiece)) ?? ByteBuffer()
            var message = Icbd_Cache_V1_GetChunksResponse()
            if first { message.sha256 = Data(digest.bytes) }
            first = false
            try await writer.write(message, payload: piece)
        } while rest.readableBytes > 0
        metrics.served(bytes: bytes.readableBytes)
    }

    /// Fetches batches for the scheduler until it finishes: one upstream worker.
    func runWorker(fetcher: UpstreamFetcher) async {
        var previous: FillBatch?
        while let batch = await scheduler.nextBatch(after: previous) {
            let start = ContinuousClock.now
            await fetcher.fetch(batch) { digest, result in
                if case .success(let bytes) = result {
                    await store.store(digest, bytes)
                    metrics.filled(after: ContinuousClock.now - start)
                }
                scheduler.complete(digest, with: result)
            }
            previous = batch
        }
    }

    /// The bytes of one chunk a request asks for: `offset` and `length` (0: to the end), with
    /// exactly one hash; nil for whole chunks.
    static func part(of request: Icbd_Cache_V1_GetChunksRequest) throws(RPCError) -> ChunkPart? {
        guard request.offset != 0 || request.length != 0 else { return nil }
        guard request.hashes.count == 1 else {
            throw RPCError(code: .invalidArgument, message: "`offset` and `length` need exactly one hash, not \(request.hashes.count)")
        }
        let largest = ChunkManifest.chunkSizes.upperBound
        guard (0..<largest).contains(request.offset), (0...largest).contains(request.length) else {
            throw RPCError(
                code: .invalidArgument,
                message: "`offset` \(request.offset) and `length` \(request.length) must lie within a chunk (at most \(largest) bytes)")
        }
        return ChunkPart(offset: Int(request.offset), length: Int(request.length))
    }

    /// Refuses a part that the chunk does not hold: it was cut short at the chunk's end.
    static func check(_ bytes: ByteBuffer, holds part: ChunkPart) throws(RPCError) {
        guard bytes.readableBytes == 0 || (part.length != 0 && bytes.readableBytes < part.length) else { return }
        throw RPCError(
            code: .invalidArgument,
            message: "bytes from \(part.offset)\(part.length == 0 ? "" : " to \(part.offset + part.length)") lie outside the chunk")
    }

    /// The request as wants, validated.
    static func wants(of request: Icbd_Cache_V1_GetChunksRequest) throws(RPCError) -> [ChunkWant] {
        guard request.hashes.count <= maximumChunksPerCall else {
            throw RPCError(
                code: .invalidArgument, message: "at most \(maximumChunksPerCall) chunks per call, \(request.hashes.count) asked")
        }
        var digests: [ChunkDigest] = []
        digests.reserveCapacity(request.hashes.count)
        for (position, hash) in request.hashes.enumerated() {
            guard let digest = ChunkDigest(bytes: hash) else {
                throw RPCError(code: .invalidArgument, message: "hash \(position) has \(hash.count) bytes; a SHA-256 has 32")
            }
            guard !digest.isZeroEntry else {
                throw RPCError(
                    code: .invalidArgument,
                    message: "hash \(position) is the zero-chunk entry: zero chunks are never stored; the reader fills them in")
            }
            digests.append(digest)
        }
        if !request.image.isEmpty {
            do { _ = try Name(request.image) } catch { throw RPCError(code: .invalidArgument, message: "image: \(error)") }
        }
        guard !request.indexes.isEmpty else {
            return digests.map { ChunkWant(digest: $0, source: .content(image: request.image)) }
        }
        guard request.indexes.count == digests.count else {
            throw RPCError(
                code: .invalidArgument,
                message: "`indexes` must be parallel to `hashes`: \(request.indexes.count) indexes for \(digests.count) hashes")
        }
        guard !request.image.isEmpty, request.version > 0 else {
            throw RPCError(code: .invalidArgument, message: "`indexes` need the image and the version (from 1) they belong to")
        }
        do { _ = try VersionFilePath(request.path) } catch { throw RPCError(code: .invalidArgument, message: "path: \(error)") }
        return try zip(digests, request.indexes).map { (digest, index) throws(RPCError) in
            guard index >= 0, index < ChunkManifest.maximumChunkCount else {
                throw RPCError(code: .invalidArgument, message: "chunk index \(index) is out of range")
            }
            return ChunkWant(
                digest: digest, source: .position(image: request.image, version: request.version, path: request.path, index: UInt32(index)))
        }
    }
}
