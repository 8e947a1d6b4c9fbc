import NIOCore

/// A short range whose every chunk is zeros or in the memory cache, as slices of the held
/// buffers (uncopied). Such a response is answered at once: no reads, no admission slot, no
/// client-site lookup, and a one-slice body goes out in one write with its head.
struct HeldRange {
    /// The range's bytes, chunk by chunk.
    let slices: [ByteBuffer]
    /// How many of them came from memory (the others are zeros).
    let memoryChunks: Int

    /// Nil unless each of the range's chunks (at most `maximumChunks`) is zeros or held now.
    init?(_ range: ClosedRange<Int64>, of manifest: FileManifest, memory: ChunkMemoryCache, maximumChunks: Int) {
        let first = range.lowerBound / manifest.chunkSize
        let last = range.upperBound / manifest.chunkSize
        guard last - first < Int64(maximumChunks) else { return nil }
        let hashes = (first...last).map { manifest.hash(of: $0) }
        guard let buffers = memory.getAll(hashes.compactMap { $0 }) else { return nil }
        var held = buffers.makeIterator()
        var slices: [ByteBuffer] = []
        slices.reserveCapacity(hashes.count)
        for (index, hash) in zip(first...last, hashes) {
            let part = manifest.part(of: index, in: range)
            // A zero part longer than the shared zeros (chunks over 1 MiB) is left to the streamer.
            guard let buffer = hash == nil ? RangeStreamer.zeros : held.next(),
                let slice = buffer.getSlice(at: buffer.readerIndex + part.lowerBound, length: part.count)
            else { return nil }
            slices.append(slice)
        }
        self.slices = slices
        self.memoryChunks = buffers.count
    }
}
