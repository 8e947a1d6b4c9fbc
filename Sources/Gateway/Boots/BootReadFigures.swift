import Synchronization

/// The running figures of one boot's file reads: bytes, counts, latency, reads in flight and
/// the last read's end. Every read of the boot updates them with atomic operations, without the
/// tracker's lock (the reads of a boot come from many connections on every thread at once); the
/// tracker reads them when it sweeps, shows or ends the boot (``BootTracker``).
final class BootReadFigures: Sendable {
    /// Where the instants below count from (the boot's script).
    private let origin: ContinuousClock.Instant
    private let inFlight = Atomic<Int>(0)
    private let bytes = Atomic<Int64>(0)
    private let diskReads = Atomic<Int>(0)
    private let unavailable = Atomic<Int>(0)
    private let errors = Atomic<Int>(0)
    private let latency = LatencySketch()
    /// Nanoseconds after `origin` of the last read's end and of the last read sent whole (-1:
    /// none). Stored, not raised: of reads ending at once, any one's end will do.
    private let lastEnd = Atomic<Int64>(-1)
    private let lastSent = Atomic<Int64>(-1)

    init(origin: ContinuousClock.Instant) {
        self.origin = origin
    }

    /// A read of the boot began.
    func readStarted() {
        inFlight.wrappingAdd(1, ordering: .relaxed)
    }

    /// Records the end of a read (the reads in flight go down last, so that whoever sees none
    /// in flight sees this read's end too); returns the disk reads sent before this one, if it
    /// was a disk read sent whole.
    func readEnded(_ result: BootTracker.ReadResult, isLoad: Bool, latency: Duration, now: ContinuousClock.Instant) -> Int? {
        let at = Self.nanoseconds(now - origin)
        var diskReadsBefore: Int?
        switch result {
        case .sent(let count):
            bytes.wrappingAdd(Int64(count), ordering: .relaxed)
            lastSent.store(at, ordering: .relaxed)
            if !isLoad {
                diskReadsBefore = diskReads.wrappingAdd(1, ordering: .relaxed).oldValue
                self.latency.record(latency)
            }
        case .refused(status: 503): unavailable.wrappingAdd(1, ordering: .relaxed)
        case .refused, .cut: errors.wrappingAdd(1, ordering: .relaxed)
        }
        lastEnd.store(at, ordering: .relaxed)
        inFlight.wrappingSubtract(1, ordering: .releasing)
        return diskReadsBefore
    }

    /// Reads begun and not ended.
    var readsInFlight: Int { inFlight.load(ordering: .acquiring) }

    /// `record` with the figures so far: bytes, disk reads, 503s, errors, the last read sent
    /// whole, latency percentiles.
    func fill(_ record: inout BootRecord) {
        record.bytesRead = bytes.load(ordering: .relaxed)
        record.diskReads = diskReads.load(ordering: .relaxed)
        record.unavailable = unavailable.load(ordering: .relaxed)
        record.errors = errors.load(ordering: .relaxed)
        record.lastReadAt = lastReadSent
        record.readLatencyP50 = latency.percentile(0.5)
        record.readLatencyP99 = latency.percentile(0.99)
    }

    /// The last read's end, or nil if none ended yet.
    var lastReadEnd: ContinuousClock.Instant? { instant(lastEnd) }

    /// The end of the last read sent whole, or nil.
    private var lastReadSent: ContinuousClock.Instant? { instant(lastSent) }

    private func instant(_ value: borrowing Atomic<Int64>) -> ContinuousClock.Instant? {
        let nanoseconds = value.load(ordering: .acquiring)
        return nanoseconds < 0 ? nil : origin + .nanoseconds(nanoseconds)
    }

    private static func nanoseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000
    }
}
