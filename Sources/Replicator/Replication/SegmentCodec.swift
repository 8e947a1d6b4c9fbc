import CLZ4
import Crypto
import NIOCore
import ICBDRPC

/// One segment of a send stream on the wire: its raw bytes' SHA-256, and the bytes themselves
/// lz4-compressed (one block, fast mode or LZ4 HC: see ``SegmentCompression``) where that makes
/// them smaller and the transfer negotiated it.
enum SegmentCodec {
    /// The largest raw segment (8 MiB: compressed or not it stays under the 16 MiB frame limit).
    static let maximumSegmentSize = 8 << 20
    static let minimumSegmentSize = 64 << 10
    static let defaultSegmentSize = 1 << 20

    struct Encoded: Sendable {
        let data: ByteBuffer
        let lz4: Bool
        let sha256: [UInt8]
    }

    static func encode(_ raw: ByteBuffer, compression: SegmentCompression) -> Encoded {
        let digest = raw.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard compression != .none, raw.readableBytes > 0 else { return Encoded(data: raw, lz4: false, sha256: digest) }
        // The fast mode first: on incompressible (random) data it gives up at GB/s, where LZ4 HC
        // would spend as long as on text; such a segment travels as it is.
        guard let fast = compress(raw, level: nil) else { return Encoded(data: raw, lz4: false, sha256: digest) }
        guard case .high(let level) = compression, let high = compress(raw, level: level), high.readableBytes < fast.readableBytes else {
            return Encoded(data: fast, lz4: true, sha256: digest)
        }
        return Encoded(data: high, lz4: true, sha256: digest)
    }

    /// One lz4 block of `raw` (fast mode, or LZ4 HC at `level`); nil when it is not smaller.
    private static func compress(_ raw: ByteBuffer, level: Int32?) -> ByteBuffer? {
        let bound = Int(LZ4_compressBound(Int32(raw.readableBytes)))
        var compressed = ByteBufferAllocator().buffer(capacity: bound)
        let written = raw.withUnsafeReadableBytes { source in
            compressed.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
                let from = source.baseAddress?.assumingMemoryBound(to: CChar.self)
                let to = target.baseAddress?.assumingMemoryBound(to: CChar.self)
                guard let level else { return Int(LZ4_compress_default(from, to, Int32(source.count), Int32(bound))) }
                return Int(LZ4_compress_HC(from, to, Int32(source.count), Int32(bound), level))
            }
        }
        guard written > 0, written < raw.readableBytes else { return nil }
        return compressed
    }

    /// The raw bytes of a received segment, checked against its SHA-256.
    static func decode(_ data: ByteBuffer, lz4: Bool, rawLength: Int, sha256: [UInt8]) throws(ReplicationError) -> ByteBuffer {
        guard rawLength > 0, rawLength <= maximumSegmentSize else {
            throw ReplicationError(.dataLoss, "a segment of \(rawLength) bytes; segments hold 1 byte to \(maximumSegmentSize)")
        }
        var raw = data
        if lz4 {
            var out = ByteBufferAllocator().buffer(capacity: rawLength)
            let produced = data.withUnsafeReadableBytes { source in
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: rawLength) { target in
                    max(
                        0,
                        Int(
                            LZ4_decompress_safe(
                                source.baseAddress?.assumingMemoryBound(to: CChar.self),
                                target.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(source.count), Int32(rawLength))))
                }
            }
            guard produced == rawLength else {
                throw ReplicationError(.dataLoss, "an lz4 segment does not decompress to its \(rawLength) bytes")
            }
            raw = out
        }
        guard raw.readableBytes == rawLength else {
            throw ReplicationError(.dataLoss, "a segment holds \(raw.readableBytes) bytes, its header says \(rawLength)")
        }
        let actual = raw.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard actual == sha256 else { throw ReplicationError(.dataLoss, "a segment fails its SHA-256") }
        return raw
    }
}
