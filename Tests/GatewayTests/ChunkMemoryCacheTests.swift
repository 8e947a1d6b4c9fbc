import NIOCore
import Testing

@testable import Gateway

@Suite("Gateway: the memory chunk cache")
struct ChunkMemoryCacheTests {
    let a = [UInt8](repeating: 1, count: 32)
    let b = [UInt8](repeating: 2, count: 32)

    @Test func aRangeIsServedFromMemoryOnlyWhenEveryChunkIsHeld() {
        let memory = ChunkMemoryCache(capacityBytes: 1 << 20)
        memory.put(a, ByteBuffer(repeating: 1, count: 1000))
        #expect(memory.getAll([a, b]) == nil)
        #expect(memory.statistics.hits == 0, "a partial answer counts nothing")
        memory.put(b, ByteBuffer(repeating: 2, count: 2000))
        let buffers = memory.getAll([b, a])
        #expect(buffers?.map(\.readableBytes) == [2000, 1000])
        #expect(memory.statistics.hits == 2)
    }

    @Test func heldBytesStayWithinTheCapacity() {
        let memory = ChunkMemoryCache(capacityBytes: 64 << 10)
        for index in 0..<100 {
            memory.put([UInt8](repeating: UInt8(index), count: 32), ByteBuffer(repeating: UInt8(index), count: 4096))
            #expect(memory.statistics.bytes <= 64 << 10)
        }
        // The most recent chunk is kept.
        #expect(memory.getAll([[UInt8](repeating: 99, count: 32)])?.first?.readableBytes == 4096)
    }
}

@Suite("Gateway: which chunks were asked for a moment ago")
struct RecentChunksTests {
    @Test func asksAreCountedUntilTheChunkIsPushedOutByNewerOnes() {
        let recent = RecentChunks(capacity: 3)
        let hashes = (0..<5).map { [UInt8](repeating: UInt8($0), count: 32) }
        #expect(recent.touch(hashes[0]) == 0)
        #expect(recent.touch(hashes[0]) == 1)
        #expect(recent.touch(hashes[0]) == 2)
        for hash in hashes[1...3] { #expect(recent.touch(hash) == 0) }
        // Capacity 3: hashes[0] was the oldest and is forgotten; 1, 2 and 3 remain.
        #expect(recent.touch(hashes[0]) == 0)
        #expect(recent.touch(hashes[3]) == 1)
        #expect(recent.touch(hashes[1]) == 0, "pushed out by hashes[0]")
    }
}
