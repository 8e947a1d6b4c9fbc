/// When each held chunk was last verified (its bytes hashed and compared with its name) by this
/// process, and which one the scrubber verifies next. A pure state machine: no disks, no clocks.
///
/// The rule it serves (docs/cache.md, "Verification"): a chunk is hashed before it is served
/// when this process has not verified it within `interval` — so the first read of every entry
/// found on disk at start is verified, and so is any entry the scrubber has not reached for a
/// while. Entries filled from upstream were verified on arrival. Between verifications a read
/// trusts the file: corruption that appears after a verification is caught by the scrubber or
/// by the next read after `interval`, whichever comes first.
struct VerificationSchedule: Sendable {
    private struct Mark: Sendable {
        let digest: ChunkDigest
        let at: ContinuousClock.Instant
    }

    /// How long a verification counts. `.zero`: every read verifies.
    let interval: Duration
    private var verifiedAt: [ChunkDigest: ContinuousClock.Instant] = [:]
    /// Verifications, oldest first; a mark whose time is not its chunk's current one is stale.
    private var marks = FIFOQueue<Mark>()
    /// Chunks found on disk at start, not verified by this process yet.
    private var neverVerified: [ChunkDigest] = []

    init(interval: Duration) {
        self.interval = interval
    }

    /// Verifications queued for the scrubber, stale ones included.
    var pendingMarks: Int { marks.count }

    /// A chunk found on disk when the store opened: due at once.
    mutating func loaded(_ digest: ChunkDigest) {
        neverVerified.append(digest)
    }

    /// Whether a read of `digest` at `now` must hash it first.
    func isDue(_ digest: ChunkDigest, at now: ContinuousClock.Instant) -> Bool {
        guard interval > .zero, let last = verifiedAt[digest] else { return true }
        return now - last >= interval
    }

    /// `digest`'s bytes matched its name at `now` (verified on read, by the scrubber, or on
    /// arrival from upstream).
    mutating func verified(_ digest: ChunkDigest, at now: ContinuousClock.Instant) {
        verifiedAt[digest] = now
        marks.push(Mark(digest: digest, at: now))
        // Stale marks are dropped by `nextDue`; without a scrubber calling it, they are dropped
        // here, so the queue stays within a small multiple of the entries held.
        if marks.count > 2 * verifiedAt.count + 1024 {
            marks.replaceAll(with: verifiedAt.map { Mark(digest: $0.key, at: $0.value) }.sorted { $0.at < $1.at })
        }
    }

    /// `digest` is no longer held (evicted or dropped).
    mutating func forget(_ digest: ChunkDigest) {
        verifiedAt[digest] = nil
    }

    /// The chunk the scrubber should verify next at `now`: one held but never verified by this
    /// process, else the one verified longest ago when that was `interval` or more ago; nil
    /// when none is due.
    mutating func nextDue(at now: ContinuousClock.Instant, isHeld: (ChunkDigest) -> Bool) -> ChunkDigest? {
        while let digest = neverVerified.popLast() {
            if verifiedAt[digest] == nil && isHeld(digest) { return digest }
        }
        while let mark = marks.elements.first {
            guard verifiedAt[mark.digest] == mark.at else {
                _ = marks.pop()  // stale: verified again since, or gone
                continue
            }
            guard now - mark.at >= interval else { return nil }
            _ = marks.pop()
            return mark.digest
        }
        return nil
    }
}
