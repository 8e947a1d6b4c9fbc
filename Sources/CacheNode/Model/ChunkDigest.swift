import Crypto
import ICBDCore
import NIOCore

/// The SHA-256 of a chunk: its name in the cache, on disk and on the wire.
public struct ChunkDigest: Hashable, Sendable, CustomStringConvertible {
    // Four words hash and compare faster than an array of 32 bytes.
    private let words: (UInt64, UInt64, UInt64, UInt64)

    /// The digest from its 32 bytes; nil for any other length.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var words: [UInt64] = [0, 0, 0, 0]
        for (offset, byte) in bytes.enumerated() {
            words[offset / 8] = words[offset / 8] << 8 | UInt64(byte)
        }
        self.words = (words[0], words[1], words[2], words[3])
    }

    /// The digest of `bytes`.
    public init(of bytes: ByteBuffer) {
        let digest = bytes.withUnsafeReadableBytes { SHA256.hash(data: $0) }
        // A SHA-256 digest has 32 bytes: the initializer cannot fail.
        self = ChunkDigest(bytes: Array(digest)) ?? ChunkDigest(words: (0, 0, 0, 0))
    }

    /// The digest named by 64 lowercase hex digits (a file name in the store); nil otherwise.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 64 else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(32)
        for index in stride(from: 0, to: 64, by: 2) {
            guard let high = Self.nibble(utf8[index]), let low = Self.nibble(utf8[index + 1]) else { return nil }
            bytes.append(high << 4 | low)
        }
        self.init(bytes: bytes)
    }

    private init(words: (UInt64, UInt64, UInt64, UInt64)) {
        self.words = words
    }

    public static func == (lhs: ChunkDigest, rhs: ChunkDigest) -> Bool {
        lhs.words == rhs.words
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(words.0)
        hasher.combine(words.1)
    }

    public var bytes: [UInt8] {
        [words.0, words.1, words.2, words.3].flatMap { word in (0..<8).map { UInt8(truncatingIfNeeded: word >> (56 - 8 * $0)) } }
    }

    /// 64 lowercase hex digits.
    public var hex: String { bytes.hexString }

    public var description: String { hex }

    /// The manifest entry of an all-zero chunk: never stored, never asked for.
    public var isZeroEntry: Bool { words == (0, 0, 0, 0) }

    private static func nibble(_ character: UInt8) -> UInt8? {
        switch character {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): character - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): character - UInt8(ascii: "a") + 10
        default: nil
        }
    }
}
