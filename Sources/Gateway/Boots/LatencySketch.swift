import Foundation
import Synchronization

/// Read latencies of one boot in constant memory: a count per bucket of a log scale (four
/// buckets an octave from 100 µs to about 2 min, 82 counts), from which percentiles are read as
/// the upper bound of the bucket they fall in (at most 19 % above the true value). Counted with
/// atomic operations, so that the reads of one boot, on any thread, never wait for each other.
final class LatencySketch: Sendable {
    private static let lowest = 100e-6
    private static let bucketsPerOctave = 4.0
    private static let bucketCount = 82

    private let counts: InlineArray<82, Atomic<UInt32>>

    init() {
        counts = InlineArray { _ in Atomic<UInt32>(0) }
    }

    func record(_ latency: Duration) {
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) * 1e-18
        let index: Int
        if seconds <= Self.lowest {
            index = 0
        } else {
            let scaled = (Self.bucketsPerOctave * log2(seconds / Self.lowest)).rounded(.up)
            index = min(Self.bucketCount - 1, Int(scaled))
        }
        counts[index].wrappingAdd(1, ordering: .relaxed)
    }

    /// The latency `fraction` (0…1) of the reads took at most, rounded up to a bucket's bound;
    /// nil without reads.
    func percentile(_ fraction: Double) -> Duration? {
        var snapshot = [Int](repeating: 0, count: Self.bucketCount)
        for index in 0..<Self.bucketCount { snapshot[index] = Int(counts[index].load(ordering: .relaxed)) }
        let count = snapshot.reduce(0, +)
        guard count > 0 else { return nil }
        let rank = max(1, Int((fraction * Double(count)).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in snapshot.enumerated() {
            seen += bucketCount
            if seen >= rank { return .seconds(Self.lowest * exp2(Double(index) / Self.bucketsPerOctave)) }
        }
        return nil
    }
}
