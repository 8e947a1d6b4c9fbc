import Crypto
import NIOCore
import Synchronization

/// The SHA-256 of each 64 KiB block of chunks whose whole bytes matched the manifest.
///
/// Only a whole chunk can be checked against the manifest's SHA-256, so the first read of a
/// chunk moves all of it. Its blocks' digests, computed here from those verified bytes (never
/// taken from a node), let a later read of part of the same chunk move only the blocks it needs
/// and still check every byte it hands out. Bounded: at most `capacity` chunks (512 bytes of
/// digests each for a 1 MiB chunk); the one recorded longest ago is forgotten first.
final class VerifiedBlocks: Sendable {
    /// The unit a part read moves and checks.
    static let blockSize = 64 << 10

    private let digests: Mutex<InsertionOrderedCache<[UInt8], [SHA256.Digest]>>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(0, capacity)
        digests = Mutex(InsertionOrderedCache(capacity: capacity))
    }

    /// Records the block digests of `chunk`, whose whole `bytes` matched the manifest.
    func record(_ chunk: [UInt8], verified bytes: ByteBuffer) {
        guard capacity > 0 else { return }
        let blocks = bytes.withUnsafeReadableBytes { raw in
            stride(from: 0, to: raw.count, by: Self.blockSize).map { start in
                SHA256.hash(data: UnsafeRawBufferPointer(rebasing: raw[start..<min(start + Self.blockSize, raw.count)]))
            }
        }
        digests.withLock { (digests: inout InsertionOrderedCache<[UInt8], [SHA256.Digest]>) -> Void in digests.insert(blocks, for: chunk) }
    }

    /// The block digests of `chunk`, when its whole bytes were verified here.
    func digests(of chunk: [UInt8]) -> [SHA256.Digest]? {
        digests.withLock { $0[chunk] }
    }

    /// The bytes of the blocks that cover `part` of a chunk of `length` bytes.
    static func span(of part: Range<Int>, length: Int) -> Range<Int> {
        let start = part.lowerBound / blockSize * blockSize
        let end = min(length, (part.upperBound + blockSize - 1) / blockSize * blockSize)
        return start..<end
    }

    /// Whether `bytes`, the blocks of `span` (as ``span(of:length:)`` gives it), hash to `digests`.
    static func match(_ bytes: ByteBuffer, span: Range<Int>, digests: [SHA256.Digest]) -> Bool {
        guard bytes.readableBytes == span.count, span.lowerBound % blockSize == 0 else { return false }
        return bytes.withUnsafeReadableBytes { raw in
            stride(from: 0, to: raw.count, by: blockSize).allSatisfy { start in
                let block = (span.lowerBound + start) / blockSize
                guard block < digests.count else { return false }
                let bytes = UnsafeRawBufferPointer(rebasing: raw[start..<min(start + blockSize, raw.count)])
                return SHA256.hash(data: bytes) == digests[block]
            }
        }
    }
}
