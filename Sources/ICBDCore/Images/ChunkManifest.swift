import Crypto

/// The manifest of a file: one entry per fixed-size chunk, the chunk's SHA-256, or 32 zero
/// bytes for a chunk whose bytes are all zero (nobody stores or ships those).
///
/// Its digest is the file's strong identity (the HTTP ETag). It covers a header as well as the
/// entries, so two files with equal entries but other sizes or chunk sizes differ:
///
///     SHA-256( "icbd.manifest.v1" | chunk_size: u64 big-endian | file_size: u64 big-endian | entries )
public enum ChunkManifest {
    /// Bytes per entry.
    public static let entrySize = 32
    /// The chunk size used unless a publisher says otherwise.
    public static let defaultChunkSize: Int64 = 1 << 20
    /// Chunk sizes the catalog accepts (powers of two).
    public static let chunkSizes: ClosedRange<Int64> = 4096...(64 << 20)
    /// The most entries one file may have: 1 TiB at 1 MiB chunks (32 MiB of manifest).
    public static let maximumChunkCount: Int64 = 1 << 20
    /// The entry of an all-zero chunk.
    public static let zeroEntry = [UInt8](repeating: 0, count: entrySize)

    /// ceil(fileSize / chunkSize); 0 for an empty file.
    public static func chunkCount(fileSize: Int64, chunkSize: Int64) -> Int64 {
        guard fileSize > 0, chunkSize > 0 else { return 0 }
        return (fileSize - 1) / chunkSize + 1
    }

    /// Whether `chunkSize` is a power of two within ``chunkSizes``.
    public static func isValidChunkSize(_ chunkSize: Int64) -> Bool {
        chunkSizes.contains(chunkSize) && chunkSize & (chunkSize - 1) == 0
    }

    /// Computes a manifest's digest from its entries, fed in any pieces.
    public struct Hasher {
        private var sha = SHA256()

        public init(fileSize: Int64, chunkSize: Int64) {
            update(entries: Array("icbd.manifest.v1".utf8))
            update(entries: Self.bigEndian(UInt64(bitPattern: chunkSize)))
            update(entries: Self.bigEndian(UInt64(bitPattern: fileSize)))
        }

        public mutating func update(entries: [UInt8]) {
            entries.withUnsafeBytes { sha.update(bufferPointer: $0) }
        }

        public mutating func update(entries: ArraySlice<UInt8>) {
            entries.withUnsafeBytes { sha.update(bufferPointer: $0) }
        }

        public func finalize() -> [UInt8] {
            Array(sha.finalize())
        }

        private static func bigEndian(_ value: UInt64) -> [UInt8] {
            (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
        }
    }

    /// The digest of a whole manifest held in memory.
    public static func digest(fileSize: Int64, chunkSize: Int64, entries: [UInt8]) -> [UInt8] {
        var hasher = Hasher(fileSize: fileSize, chunkSize: chunkSize)
        hasher.update(entries: entries)
        return hasher.finalize()
    }
}

extension Array where Element == UInt8 {
    /// Parses lowercase or uppercase hex, two digits a byte; nil if it is not hex.
    public init?(hex: String) {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        func value(_ digit: UInt8) -> UInt8? {
            switch digit {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(digits.count / 2)
        var index = 0
        while index < digits.count {
            guard let high = value(digits[index]), let low = value(digits[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
            index += 2
        }
        self = bytes
    }

    /// Lowercase hex, two digits a byte.
    public var hexString: String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(count * 2)
        for byte in self {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
