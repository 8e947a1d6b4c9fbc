/// How a transfer compresses its segments. Every mode writes plain lz4 blocks, so the receiver
/// decodes them all alike (`LZ4_decompress_safe`) and nothing on the wire names the mode.
enum SegmentCompression: Sendable, Equatable {
    case none
    /// lz4's fast mode (`LZ4_compress_default`): hundreds of MB/s per core.
    case fast
    /// LZ4 HC (`LZ4_compress_HC`) at `level`: a better ratio, far slower.
    case high(level: Int32)

    /// One-core speeds of LZ4 HC levels on OS-like data, measured on the project's shared
    /// 2-core machine (`lz4 -b3`, `-b9` on a tar of /usr/lib; docs/benchmarks.md), highest
    /// level first.
    static let highLevels: [(level: Int32, bytesPerSecond: Int64)] = [(9, 40_000_000), (3, 100_000_000)]

    /// A level is used only when it compresses this many times faster than the link carries:
    /// at a ratio of about 2.5 the compressor must read 2.5 raw bytes per byte sent, and it
    /// shares its core with the segment's SHA-256 and TLS.
    static let speedMargin: Int64 = 4

    /// The compression of a transfer that negotiated lz4 over a link of `rate` bytes per
    /// second (0: no rate configured): the highest LZ4 HC level (best ratio) whose speed exceeds the link's
    /// rate by ``speedMargin``; else (a fast or unknown link) lz4's fast mode.
    static func forLink(bytesPerSecond rate: Int64) -> SegmentCompression {
        guard rate > 0 else { return .fast }
        for candidate in highLevels where candidate.bytesPerSecond >= rate * speedMargin {
            return .high(level: candidate.level)
        }
        return .fast
    }
}
