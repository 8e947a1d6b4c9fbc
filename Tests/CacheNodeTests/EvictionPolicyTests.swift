import Crypto
import Synchronization
import Testing

@testable import CacheNode

/// A digest for test key `n`.
func key(_ n: Int) -> ChunkDigest {
    ChunkDigest(bytes: Array(SHA256.hash(data: Array("key \(n)".utf8)))) ?? key(n + 1)
}

/// Reads `key` through `policy` like the store does: a hit records an access, a miss inserts
/// (making room first). Returns whether it was a hit.
@discardableResult
func read(_ key: ChunkDigest, size: Int64 = 1, in policy: inout some EvictionPolicy) -> Bool {
    if policy.recordAccess(key) { return true }
    _ = policy.makeRoom(for: size, reserved: 0)
    policy.insert(key, size: size)
    return false
}

@Suite("Eviction policies as pure state machines")
struct EvictionPolicyTests {
    @Test(arguments: EvictionPolicyKind.allCases)
    func neverHoldsMoreThanItsCapacity(kind: EvictionPolicyKind) {
        var policy = kind.make(capacity: 1000)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 {
            let size = Int64.random(in: 1...50, using: &generator)
            let target = key(Int.random(in: 0..<400, using: &generator))
            if policy.recordAccess(target) { continue }
            guard let evicted = policy.makeRoom(for: size, reserved: 0) else {
                Issue.record("room for \(size) bytes was refused")
                return
            }
            #expect(evicted.allSatisfy { !policy.contains($0) })
            policy.insert(target, size: size)
            #expect(policy.usedBytes <= policy.capacity)
        }
        #expect(policy.count > 0)
    }

    @Test(arguments: EvictionPolicyKind.allCases)
    func refusesWhatCannotFitAndCountsReservations(kind: EvictionPolicyKind) {
        var policy = kind.make(capacity: 100)
        #expect(policy.makeRoom(for: 101, reserved: 0) == nil)
        for n in 0..<10 { read(key(n), size: 10, in: &policy) }
        #expect(policy.usedBytes == 100)
        // 30 bytes reserved for chunks being written: 40 must go for 10 more.
        let evicted = policy.makeRoom(for: 10, reserved: 30)
        #expect(evicted?.count == 4)
        #expect(policy.usedBytes == 60)
        #expect(policy.makeRoom(for: 80, reserved: 30) == nil)
    }

    @Test(arguments: EvictionPolicyKind.allCases)
    func removeForgetsAnEntry(kind: EvictionPolicyKind) {
        var policy = kind.make(capacity: 100)
        read(key(1), size: 10, in: &policy)
        policy.remove(key(1))
        #expect(!policy.contains(key(1)))
        #expect(policy.usedBytes == 0)
        #expect(policy.makeRoom(for: 100, reserved: 0) == [])
    }

    @Test func lruEvictsTheLeastRecentlyUsed() {
        var policy = LRUPolicy(capacity: 3)
        for n in 1...3 { read(key(n), in: &policy) }
        read(key(1), in: &policy)  // 2 is now the least recent
        read(key(4), in: &policy)
        #expect(!policy.contains(key(2)))
        #expect(policy.contains(key(1)) && policy.contains(key(3)) && policy.contains(key(4)))
    }

    @Test func s3fifoDropsOnceReadChunksFirstAndPromotesReadOnes() {
        var policy = S3FIFOPolicy(capacity: 10)
        for n in 1...10 { read(key(n), in: &policy) }
        read(key(1), in: &policy)  // read again while in the small queue
        read(key(11), in: &policy)
        // The small queue was over its share: 1 (read) moved to main, 2 (unread) left.
        #expect(policy.isInMain(key(1)))
        #expect(!policy.contains(key(2)))
        #expect(policy.remembers(key(2)))
        // A key the ghost remembers comes back straight into main.
        read(key(2), in: &policy)
        #expect(policy.isInMain(key(2)))
    }

    /// A boot's working set, read by several workstations, then a scan of many once-read chunks
    /// larger than the cache: LRU loses the working set, S3-FIFO keeps it.
    @Test func s3fifoKeepsAWorkingSetThroughAScanLRUDoesNot() {
        func survivors(_ policy: inout some EvictionPolicy) -> Int {
            let workingSet = (0..<50).map(key)
            for _ in 0..<3 { for chunk in workingSet { read(chunk, in: &policy) } }
            for n in 1000..<1300 { read(key(n), in: &policy) }
            return workingSet.filter { policy.contains($0) }.count
        }
        var s3fifo = S3FIFOPolicy(capacity: 100)
        var lru = LRUPolicy(capacity: 100)
        #expect(survivors(&s3fifo) == 50)
        #expect(survivors(&lru) == 0)
    }
}
