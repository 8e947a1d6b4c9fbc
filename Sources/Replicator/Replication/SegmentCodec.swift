import CLZ4
import Crypto
import NIOCore
import ICBDRPC

/// One segment of a send stream on the wire: its raw bytes' SHA-256, and the bytes themselves
/// lz4-compressed (one block) where that makes them smaller and the transfer negotiated it.
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

    static func encode(_ raw: ByteBuffer, compress: Bool) -> Encoded {
        let digest = raw.withUnsafeReadableBytes { Array(SHA256.hash(data: $0)) }
        guard compress, raw.readableBytes > 0 else { return Encoded(data: raw, lz4: false, sha256: digest) }
        let bound = Int(LZ4_compressBound(Int32(raw.readableBytes)))
        var compressed = ByteBufferAllocator().buffer(capacity: bound)
        let written = raw.withUnsafeReadableBytes { source in
            compressed.writeWithUnsafeMutableBytes(minimumWritableBytes: bound) { target in
                Int(
                    LZ4_compress_default(
                        source.baseAddress?.assumingMemoryBound(to: CChar.self),
                        target.baseAddress?.assumingMemoryBound(to: CChar.self), Int32(source.count), Int32(bound)))
            }
        }
        // Incompressible (random) data travels as it is.
        guard written > 0, written < raw.readableBytes else { return Encoded(data: raw, lz4: false, sha256: digest) }
        return Encoded(data: compressed, lz4: true, sha256: digest)
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
