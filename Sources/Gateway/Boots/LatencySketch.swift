import Foundation

/// Read latencies of one boot in constant memory: a count per bucket of a log scale (four
/// buckets an octave from 100 µs to about 2 min, 82 counts), from which percentiles are read as
/// the upper bound of the bucket they fall in (at most 19 % above the true value).
struct LatencySketch: Sendable, Equatable {
    private static let lowest = 100e-6
    private static let bucketsPerOctave = 4.0
    private static let bucketCount = 82

    private var counts = [UInt32](repeating: 0, count: bucketCount)
    private(set) var count = 0

    mutating func record(_ latency: Duration) {
        let seconds = Double(latency.components.seconds) + Double(latency.components.attoseconds) * 1e-18
        let index: Int
        if seconds <= Self.lowest {
            index = 0
        } else {
            let scaled = (Self.bucketsPerOctave * log2(seconds / Self.lowest)).rounded(.up)
            index = min(Self.bucketCount - 1, Int(scaled))
        }
        counts[index] &+= 1
        count += 1
    }

    /// The latency `fraction` (0…1) of the reads took at most, rounded up to a bucket's bound;
    /// nil without reads.
    func percentile(_ fraction: Double) -> Duration? {
        guard count > 0 else { return nil }
        let rank = max(1, Int((fraction * Double(count)).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() {
            seen += Int(bucketCount)
            if seen >= rank { return .seconds(Self.lowest * exp2(Double(index) / Self.bucketsPerOctave)) }
        }
        return nil
    }
}
