import Logging
import NIOCore
import NIOPosix
import Synchronization

/// The disk-backed chunk store: files named by SHA-256 under a hard capacity bound.
///
/// - Room is reserved (evicting as the policy says, files removed at once) before a chunk is
///   written, so the bytes on disk never exceed the capacity, also under concurrent fills.
/// - Reads are verified on a schedule (``VerificationSchedule``): the first read of an entry
///   after the store opened, and any read of an entry not verified for `verifyInterval`, hash it
///   first; fills were verified on arrival; ``scrubNext()`` re-verifies entries in the
///   background. An entry whose bytes do not hash to its name is dropped, never served.
/// - The index is the directory itself, scanned at start: after a crash the store serves what it
///   held; half-written chunks live only in `tmp/` and are removed.
/// - When the directory stops taking writes (full, read-only) the store goes pass-through: reads
///   of what it holds still work, nothing new is stored, ``passThroughReason`` says why.
public final class ChunkStore: Sendable {
    private struct State {
        var policy: any EvictionPolicy
        var verification: VerificationSchedule
        var reserved: Int64 = 0
        var passThroughReason: String?
    }

    private let files: ChunkFiles
    private let state: Mutex<State>
    private let metrics: CacheMetrics
    private let logger: Logger
    private let threadPool: NIOThreadPool

    /// Opens (creating) the store in `directory` and loads its index. A directory that cannot
    /// be prepared or written starts the store in pass-through mode. `verifyInterval`: how long
    /// a verification counts before a read hashes the entry again (`.zero`: every read).
    public init(
        directory: String, capacity: Int64, policy: EvictionPolicyKind, metrics: CacheMetrics, logger: Logger,
        verifyInterval: Duration = .seconds(3600), threadPool: NIOThreadPool = .singleton
    ) {
        self.files = ChunkFiles(directory: directory)
        self.metrics = metrics
        self.logger = logger
        self.threadPool = threadPool
        var state = State(policy: policy.make(capacity: capacity), verification: VerificationSchedule(interval: verifyInterval))
        do {
            try files.prepare()
            var found = try files.scan()
            // Oldest first would be better; without access times, the directory order will do.
            found.sort { $0.1 < $1.1 }
            for (digest, size) in found {
                guard let evicted = state.policy.makeRoom(for: size, reserved: 0) else {
                    files.remove(digest)  // larger than the whole capacity (it was lowered)
                    continue
                }
                for key in evicted {
                    files.remove(key)
                    state.verification.forget(key)
                }
                state.policy.insert(digest, size: size)
                state.verification.loaded(digest)
            }
            if !files.probeWritable() {
                state.passThroughReason = "the cache directory \(directory) takes no writes"
            }
        } catch {
            state.passThroughReason = "\(error)"
        }
        self.state = Mutex(state)
        if let reason = state.passThroughReason {
            logger.warning("cache directory unusable: serving as a pass-through", metadata: ["reason": "\(reason)"])
        }
        logger.info(
            "chunk store opened",
            metadata: ["chunks": "\(state.policy.count)", "bytes": "\(state.policy.usedBytes)", "capacity": "\(capacity)"])
    }

    public var capacity: Int64 { state.withLock { $0.policy.capacity } }
    public var usedBytes: Int64 { state.withLock { $0.policy.usedBytes } }
    public var count: Int { state.withLock { $0.policy.count } }
    /// Bytes reserved for chunks being written.
    public var reservedBytes: Int64 { state.withLock { $0.reserved } }
    /// Held and reserved bytes, read together: never more than the capacity.
    public var occupiedBytes: Int64 { state.withLock { $0.policy.usedBytes + $0.reserved } }
    /// Why the store stores nothing new; nil while it works.
    public var passThroughReason: String? { state.withLock { $0.passThroughReason } }

    public func contains(_ digest: ChunkDigest) -> Bool {
        state.withLock { $0.policy.contains(digest) }
    }

    /// Records a read of the chunk made elsewhere (a gateway reading the file itself) for the
    /// eviction policy; returns whether the chunk is held.
    public func noteAccess(_ digest: ChunkDigest) -> Bool {
        state.withLock { $0.policy.recordAccess(digest) }
    }

    /// The chunk's bytes, or those of `part`; nil when it is not held (or was corrupt, and is
    /// now dropped). Hashed against its digest first when its verification is due (see
    /// ``VerificationSchedule``): then the whole chunk is read, else only `part`.
    public func read(_ digest: ChunkDigest, part: ChunkPart? = nil) async -> ByteBuffer? {
        let now = ContinuousClock.now
        let access = state.withLock { state -> (held: Bool, due: Bool) in
            (state.policy.recordAccess(digest), state.verification.isDue(digest, at: now))
        }
        guard access.held else { return nil }
        guard access.due, let part else { return await load(digest, verify: access.due, part: part) }
        return await load(digest, verify: true).map { part.cut($0) }
    }

    /// Verifies the entry the schedule names next (never verified by this process, else verified
    /// longest ago and due); returns the bytes it hashed, 0 for a corrupt entry (dropped), nil
    /// when none is due. Does not count as an access for eviction.
    public func scrubNext() async -> Int? {
        let now = ContinuousClock.now
        let next = state.withLock { state in
            state.verification.nextDue(at: now) { state.policy.contains($0) }
        }
        guard let next else { return nil }
        return await load(next, verify: true)?.readableBytes ?? 0
    }

    /// Reads the file of `digest`, hashing it when `verify`; drops the entry when the file is
    /// gone, unreadable or corrupt.
    private func load(_ digest: ChunkDigest, verify: Bool, part: ChunkPart? = nil) async -> ByteBuffer? {
        let files = files
        let outcome: Result<(ByteBuffer?, Bool, Duration), any Error>
        do {
            outcome = .success(
                try await threadPool.runIfActive {
                    guard let bytes = try files.read(digest, part: verify ? nil : part) else { return (nil, false, .zero) }
                    guard verify else { return (bytes, true, .zero) }
                    let start = ContinuousClock.now
                    let matches = ChunkDigest(of: bytes) == digest
                    return (bytes, matches, ContinuousClock.now - start)
                })
        } catch {
            outcome = .failure(error)
        }
        switch outcome {
        case .success((let bytes?, true, let verifyTime)):
            if verify {
                metrics.verified(after: verifyTime)
                let now = ContinuousClock.now
                state.withLock { state in
                    if state.policy.contains(digest) { state.verification.verified(digest, at: now) }
                }
            }
            return bytes
        case .success((nil, _, _)):
            logger.warning("chunk file vanished; dropped from the index", metadata: ["chunk": "\(digest)"])
            drop(digest)
        case .success((.some, false, _)):
            logger.error("chunk on disk does not match its hash; dropped, will be fetched again", metadata: ["chunk": "\(digest)"])
            metrics.corruptEntry()
            drop(digest)
        case .failure(let error):
            logger.error("chunk unreadable; dropped, will be fetched again", metadata: ["chunk": "\(digest)", "error": "\(error)"])
            metrics.corruptEntry()
            drop(digest)
        }
        return nil
    }

    /// Stores a verified chunk unless it is held already, the store is a pass-through, or the
    /// chunk is larger than the capacity. Returns whether it was stored.
    @discardableResult
    public func store(_ digest: ChunkDigest, _ bytes: ByteBuffer) async -> Bool {
        let size = Int64(bytes.readableBytes)
        let files = files
        let reserved = state.withLock { state -> Bool in
            guard state.passThroughReason == nil, !state.policy.contains(digest),
                let evicted = state.policy.makeRoom(for: size, reserved: state.reserved)
            else { return false }
            // Removed under the lock: a reservation never counts on bytes still on disk.
            for key in evicted {
                files.remove(key)
                state.verification.forget(key)
            }
            metrics.evicted(evicted.count)
            state.reserved += size
            return true
        }
        guard reserved else { return false }
        do {
            try await threadPool.runIfActive { try files.write(digest, bytes) }
            let now = ContinuousClock.now
            state.withLock { state in
                state.reserved -= size
                state.policy.insert(digest, size: size)
                // Its bytes were verified on arrival: the schedule starts from here.
                state.verification.verified(digest, at: now)
            }
            return true
        } catch {
            let entered = state.withLock { state -> Bool in
                state.reserved -= size
                guard let error = error as? ChunkFileError, error.meansNoWrites, state.passThroughReason == nil else { return false }
                state.passThroughReason = "\(error)"
                return true
            }
            if entered {
                logger.warning("cache directory takes no writes: serving as a pass-through", metadata: ["error": "\(error)"])
            } else {
                logger.error("chunk not stored", metadata: ["chunk": "\(digest)", "error": "\(error)"])
            }
            return false
        }
    }

    /// In pass-through mode, tries a write; leaves the mode when it works again.
    public func probe() async {
        guard passThroughReason != nil else { return }
        let files = files
        let writable = (try? await threadPool.runIfActive { files.probeWritable() }) ?? false
        guard writable else { return }
        state.withLock { $0.passThroughReason = nil }
        logger.info("cache directory takes writes again: caching resumed")
    }

    private func drop(_ digest: ChunkDigest) {
        state.withLock { state in
            state.policy.remove(digest)
            state.verification.forget(digest)
            files.remove(digest)
        }
    }
}
