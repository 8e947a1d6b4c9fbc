/// Least recently used: the baseline. A scan of once-read chunks pushes out a boot's working
/// set, which is what S3-FIFO avoids.
///
/// Recency lives in a queue of (key, stamp) records; a read pushes a newer record and the older
/// one is skipped when it reaches the front (lazy deletion), so every operation is amortized O(1).
public struct LRUPolicy: EvictionPolicy {
    private struct Entry {
        var size: Int64
        var stamp: UInt64
    }

    public let capacity: Int64
    public private(set) var usedBytes: Int64 = 0
    private var entries: [ChunkDigest: Entry] = [:]
    private var recency = FIFOQueue<(key: ChunkDigest, stamp: UInt64)>()
    private var clock: UInt64 = 0

    public init(capacity: Int64) {
        self.capacity = capacity
    }

    public var count: Int { entries.count }

    public func contains(_ key: ChunkDigest) -> Bool { entries[key] != nil }

    public func size(of key: ChunkDigest) -> Int64? { entries[key]?.size }

    public mutating func recordAccess(_ key: ChunkDigest) -> Bool {
        guard entries[key] != nil else { return false }
        clock += 1
        entries[key]?.stamp = clock
        recency.push((key, clock))
        compactIfSparse()
        return true
    }

    public mutating func makeRoom(for bytes: Int64, reserved: Int64) -> [ChunkDigest]? {
        guard reserved + bytes <= capacity else { return nil }
        var evicted: [ChunkDigest] = []
        while usedBytes + reserved + bytes > capacity, let record = recency.pop() {
            guard let entry = entries[record.key], entry.stamp == record.stamp else { continue }
            entries[record.key] = nil
            usedBytes -= entry.size
            evicted.append(record.key)
        }
        return evicted
    }

    public mutating func insert(_ key: ChunkDigest, size: Int64) {
        guard entries[key] == nil else { return }
        clock += 1
        entries[key] = Entry(size: size, stamp: clock)
        recency.push((key, clock))
        usedBytes += size
    }

    public mutating func remove(_ key: ChunkDigest) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        usedBytes -= entry.size
    }

    /// Stale records may pile up under hits; rebuild when they outnumber live ones.
    private mutating func compactIfSparse() {
        guard recency.count > 2 * entries.count + 1024 else { return }
        let live = recency.elements.filter { entries[$0.key]?.stamp == $0.stamp }
        recency.replaceAll(with: live)
    }
}
