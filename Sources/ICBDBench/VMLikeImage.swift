import CLZ4
import Foundation
import NIOCore

/// The bench image, per 8 MiB: 1 MiB random (already-compressed files: packages, media), 4 MiB
/// OS-like (``OSLikeBytes``: executables, libraries, text) and 3 MiB zero (free space, which a
/// sparse publish leaves as holes and `btrfs send` does not send). Real OS images are mostly
/// compressible; the earlier composition (per 4 MiB: 2 random, 1 repeated text line, 1 zero)
/// capped any compressor at about 1.45× (docs/benchmarks.md).
enum VMLikeImage {
    static func mebibyte(_ index: Int, generator: inout SplitMix) -> ByteBuffer {
        switch index % 8 {
        case 0: return random(&generator)
        case 1...4: return OSLikeBytes.shared.mebibyte(seed: UInt64(index))
        default: return ByteBuffer(repeating: 0, count: 1 << 20)
        }
    }

    static func random(_ generator: inout SplitMix) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
        for _ in 0..<(1 << 17) { buffer.writeInteger(generator.next()) }
        return buffer
    }
}

/// Bytes that compress like the files of an installed OS: a stream of phrases from a fixed
/// vocabulary (Zipf-distributed, as common instruction sequences, symbols and strings recur),
/// separated by random literal runs.
///
/// Calibrated against this machine's /usr: a tar of /usr/lib/x86_64-linux-gnu gives 2.10× with
/// `lz4 -1` and 2.52× with `lz4 -3` (LZ4 HC), /usr/bin 1.91× and 2.24×; these parameters give
/// about 2.0× and 2.4× (1 MiB blocks, as replication's segments), i.e. no better than real data.
/// The bench prints the ratios it measures on its own bytes.
struct OSLikeBytes: Sendable {
    static let phraseProbability = 0.6
    static let vocabularySize = 2048
    static let meanPhraseLength = 46.0
    static let meanLiteralRun = 10.0

    static let shared = OSLikeBytes()

    private let phrases: [[UInt8]]
    /// Running sums of the Zipf weights 1/(rank + 1).
    private let cumulative: [Double]

    init() {
        var generator = SplitMix(seed: 0x1CBD)
        phrases = (0..<Self.vocabularySize).map { _ in
            var phrase: [UInt8] = []
            Self.appendRandom(min(4 + Self.exponential(mean: Self.meanPhraseLength, &generator), 255), to: &phrase, &generator)
            return phrase
        }
        var sum = 0.0
        cumulative = (0..<Self.vocabularySize).map { rank in
            sum += 1 / Double(rank + 1)
            return sum
        }
    }

    /// One MiB, the same for the same seed.
    func mebibyte(seed: UInt64) -> ByteBuffer {
        var generator = SplitMix(seed: seed &* 0x2545_F491_4F6C_DD1D &+ 1)
        var bytes: [UInt8] = []
        bytes.reserveCapacity((1 << 20) + 512)
        while bytes.count < 1 << 20 {
            if Self.unit(&generator) < Self.phraseProbability {
                bytes += phrases[phraseIndex(Self.unit(&generator) * (cumulative.last ?? 1))]
            } else {
                Self.appendRandom(1 + Self.exponential(mean: Self.meanLiteralRun, &generator), to: &bytes, &generator)
            }
        }
        return ByteBuffer(bytes: bytes.prefix(1 << 20))
    }

    /// The first rank whose running sum exceeds `x`.
    private func phraseIndex(_ x: Double) -> Int {
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] > x { high = middle } else { low = middle + 1 }
        }
        return low
    }

    private static func unit(_ generator: inout SplitMix) -> Double { Double(generator.next() >> 11) * 0x1p-53 }

    private static func exponential(mean: Double, _ generator: inout SplitMix) -> Int { Int(-log(1 - unit(&generator)) * mean) }

    /// `count` random bytes: whole words, little-endian, the last one cut.
    private static func appendRandom(_ count: Int, to bytes: inout [UInt8], _ generator: inout SplitMix) {
        var left = count
        while left > 0 {
            let word = generator.next()
            for shift in 0..<min(8, left) { bytes.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(shift)))) }
            left -= 8
        }
    }

    /// The lz4 ratio (raw / compressed) of `mebibytes` of these bytes, each MiB one block as
    /// replication sends it: the fast mode (`level` nil, as `lz4 -1`) or LZ4 HC at `level`.
    func lz4Ratio(mebibytes: Int, level: Int32?) -> Double {
        var raw = 0
        var compressed = 0
        for index in 0..<mebibytes {
            let block = Array(mebibyte(seed: UInt64(index)).readableBytesView)
            let bound = Int(LZ4_compressBound(Int32(block.count)))
            var output = [CChar](repeating: 0, count: bound)
            let written = block.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { source in
                    guard let level else { return LZ4_compress_default(source.baseAddress, &output, Int32(source.count), Int32(bound)) }
                    return LZ4_compress_HC(source.baseAddress, &output, Int32(source.count), Int32(bound), level)
                }
            }
            raw += block.count
            compressed += Int(max(written, 1))
        }
        return Double(raw) / Double(compressed)
    }
}
