import NIOCore

/// The bytes of one chunk a reader asks for: from `offset`, `length` of them (0: to the end).
public struct ChunkPart: Sendable, Hashable {
    public let offset: Int
    public let length: Int

    public init(offset: Int, length: Int) {
        self.offset = offset
        self.length = length
    }

    /// The part of the whole chunk `bytes`, cut at its end (empty when it starts beyond it).
    func cut(_ bytes: ByteBuffer) -> ByteBuffer {
        let start = min(offset, bytes.readableBytes)
        let count = length == 0 ? bytes.readableBytes - start : min(length, bytes.readableBytes - start)
        return bytes.getSlice(at: bytes.readerIndex + start, length: count) ?? ByteBuffer()
    }
}
