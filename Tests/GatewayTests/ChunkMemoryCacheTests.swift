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
