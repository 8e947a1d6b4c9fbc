/// S3-FIFO (Yang et al., SOSP 2023): a small FIFO takes new chunks, a main FIFO keeps chunks read
/// again, a ghost FIFO remembers keys recently dropped from the small one.
///
/// - A new key enters the small queue, unless the ghost remembers it: then it enters main.
/// - A read bumps the key's frequency (at most 3); nothing moves.
/// - Eviction takes from the small queue while it holds at least `smallFraction` of the bytes:
///   a key read since it entered moves to main, an unread one leaves (its key goes to the ghost).
///   Otherwise from main: a key read since its last pass goes back in (frequency minus one), an
///   unread one leaves.
///
/// So a scan of once-read chunks passes through the small queue and leaves, while a boot's
/// working set, read by several workstations, settles in main.
public struct S3FIFOPolicy: EvictionPolicy {
    private enum Queue { case small, main }

    private struct Entry {
        var size: Int64
        var frequency: UInt8
        var queue: Queue
        /// Which record in its queue is the live one (older records are skipped).
        var stamp: UInt64
    }

    public let capacity: Int64
    /// The share of the capacity the small queue may hold before eviction takes from it.
    public let smallFraction: Double
    public private(set) var usedBytes: Int64 = 0
    private var smallBytes: Int64 = 0
    private var entries: [ChunkDigest: Entry] = [:]
    private var small = FIFOQueue<(key: ChunkDigest, stamp: UInt64)>()
    private var main = FIFOQueue<(key: ChunkDigest, stamp: UInt64)>()
    private var ghost = FIFOQueue<(key: ChunkDigest, stamp: UInt64)>()
    /// Keys in the ghost queue, with their stamp there and their size.
    private var ghostKeys: [ChunkDigest: (stamp: UInt64, size: Int64)] = [:]
    private var ghostBytes: Int64 = 0
    private var clock: UInt64 = 0

    public init(capacity: Int64, smallFraction: Double = 0.1) {
        self.capacity = capacity
        self.smallFraction = smallFraction
    }

    public var count: Int { entries.count }

    public func contains(_ key: ChunkDigest) -> Bool { entries[key] != nil }

    public func size(of key: ChunkDigest) -> Int64? { entries[key]?.size }

    /// Whether the ghost queue remembers `key` (for tests).
    func remembers(_ key: ChunkDigest) -> Bool { ghostKeys[key] != nil }

    /// Whether `key` is in the main queue (for tests).
    func isInMain(_ key: ChunkDigest) -> Bool { entries[key]?.queue == .main }

    public mutating func recordAccess(_ key: ChunkDigest) -> Bool {
        guard let entry = entries[key] else { return false }
        entries[key]?.frequency = min(entry.frequency + 1, 3)
        return true
    }

    public mutating func makeRoom(for bytes: Int64, reserved: Int64) -> [ChunkDigest]? {
        guard reserved + bytes <= capacity else { return nil }
        var evicted: [ChunkDigest] = []
        while usedBytes + reserved + bytes > capacity, !entries.isEmpty {
            let fromSmall = Double(smallBytes) >= smallFraction * Double(capacity) || main.isEmpty
            if let key = fromSmall ? evictFromSmall() : evictFromMain() {
                evicted.append(key)
            } else if let key = fromSmall ? evictFromMain() : evictFromSmall() {
                evicted.append(key)
            } else {
                break  // every entry has a live record in its queue; this is not reached
            }
        }
        return evicted
    }

    public mutating func insert(_ key: ChunkDigest, size: Int64) {
        guard entries[key] == nil else { return }
        clock += 1
        if let remembered = ghostKeys.removeValue(forKey: key) {  // its record in `ghost` goes stale
            ghostBytes -= remembered.size
            entries[key] = Entry(size: size, frequency: 0, queue: .main, stamp: clock)
            main.push((key, clock))
        } else {
            entries[key] = Entry(size: size, frequency: 0, queue: .small, stamp: clock)
            small.push((key, clock))
            smallBytes += size
        }
        usedBytes += size
    }

    public mutating func remove(_ key: ChunkDigest) {
        guard let entry = entries.removeValue(forKey: key) else { return }
        usedBytes -= entry.size
        if entry.queue == .small { smallBytes -= entry.size }
    }

    /// Drops the oldest unread key of the small queue (promoting read ones to main on the way).
    private mutating func evictFromSmall() -> ChunkDigest? {
        while let record = small.pop() {
            guard var entry = entries[record.key], entry.queue == .small, entry.stamp == record.stamp else { continue }
            smallBytes -= entry.size
            clock += 1
            if entry.frequency > 0 {
                entry.queue = .main
                entry.frequency = 0
                entry.stamp = clock
                entries[record.key] = entry
                main.push((record.key, clock))
            } else {
                entries[record.key] = nil
                usedBytes -= entry.size
                remember(record.key, size: entry.size)
                return record.key
            }
        }
        return nil
    }

    /// Drops the oldest unread key of the main queue (giving read ones another round).
    private mutating func evictFromMain() -> ChunkDigest? {
        while let record = main.pop() {
            guard var entry = entries[record.key], entry.queue == .main, entry.stamp == record.stamp else { continue }
            clock += 1
            if entry.frequency > 0 {
                entry.frequency -= 1
                entry.stamp = clock
                entries[record.key] = entry
                main.push((record.key, clock))
            } else {
                entries[record.key] = nil
                usedBytes -= entry.size
                return record.key
            }
        }
        return nil
    }

    /// The ghost remembers about as many bytes of keys as main may hold.
    private mutating func remember(_ key: ChunkDigest, size: Int64) {
        clock += 1
        ghostKeys[key] = (clock, size)
        ghost.push((key, clock))
        ghostBytes += size
        let limit = capacity - Int64(smallFraction * Double(capacity))
        while ghostBytes > limit, let record = ghost.pop() {
            guard let remembered = ghostKeys[record.key], remembered.stamp == record.stamp else { continue }
            ghostKeys[record.key] = nil
            ghostBytes -= remembered.size
        }
        if ghost.count > 2 * ghostKeys.count + 1024 {
            ghost.replaceAll(with: ghost.elements.filter { ghostKeys[$0.key]?.stamp == $0.stamp })
        }
    }
}
