import HTTPTypes
import Hummingbird
import NIOCore

/// Writes a byte range of a file to a response, chunk by chunk, in order. Up to `readAhead`
/// chunks are read in parallel ahead of the one being written; a new read starts only when a
/// chunk has been written, so a slow client slows the upstream reads and memory stays at
/// `readAhead` chunks whatever the range. Zero chunks are written from one shared buffer of
/// zeros, never fetched. (A short range already in memory never gets here: ``HeldRange``; nor
/// a range within one chunk, read before its head is written.)
struct RangeStreamer: Sendable {
    let manifest: FileManifest
    let readAhead: Int
    /// Exactly the bytes `part` of chunk `index` (of `length` bytes).
    let chunk: @Sendable (_ index: Int64, _ hash: [UInt8], _ length: Int, _ part: Range<Int>) async throws -> ByteBuffer

    /// 1 MiB of zeros, sliced for zero chunks.
    static let zeros = ByteBuffer(repeating: 0, count: 1 << 20)

    func write(_ range: ClosedRange<Int64>, to writer: inout any ResponseBodyWriter) async throws -> Int {
        let first = range.lowerBound / manifest.chunkSize
        let last = range.upperBound / manifest.chunkSize
        var written = 0
        try await withThrowingTaskGroup(of: (Int64, ByteBuffer).self) { group in
            var nextToStart = first
            var nextToWrite = first
            var ready: [Int64: ByteBuffer] = [:]
            while nextToWrite <= last {
                // Keep the window full: chunks being read or waiting to be written.
                while nextToStart <= last, nextToStart - nextToWrite < Int64(readAhead) {
                    let index = nextToStart
                    nextToStart += 1
                    guard let hash = manifest.hash(of: index) else { continue }
                    let length = Int(manifest.length(of: index))
                    let part = manifest.part(of: index, in: range)
                    let chunk = self.chunk
                    group.addTask { (index, try await chunk(index, hash, length, part)) }
                }
                if manifest.hash(of: nextToWrite) == nil {
                    written += try await writeZeros(manifest.part(of: nextToWrite, in: range).count, to: &writer)
                    nextToWrite += 1
                    continue
                }
                if let buffer = ready.removeValue(forKey: nextToWrite) {
                    try await writer.write(buffer)
                    written += buffer.readableBytes
                    nextToWrite += 1
                    continue
                }
                guard let (index, buffer) = try await group.next() else {
                    throw GatewayError(status: .internalServerError, reason: "chunk \(nextToWrite) was never read")
                }
                ready[index] = buffer
            }
        }
        return written
    }

    private func writeZeros(_ count: Int, to writer: inout any ResponseBodyWriter) async throws -> Int {
        var remaining = count
        while remaining > 0 {
            let piece = min(remaining, Self.zeros.readableBytes)
            try await writer.write(Self.zeros.getSlice(at: 0, length: piece) ?? ByteBuffer())
            remaining -= piece
        }
        return count
    }
}
