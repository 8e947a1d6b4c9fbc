/// Which chunks a full cache gives up. A pure state machine over chunk keys and sizes: the
/// store tells it what was inserted, read and removed, and asks it which keys to evict so that
/// some bytes fit. No disks, no clocks, no locks.
public protocol EvictionPolicy: Sendable {
    /// The bytes all held entries may take together.
    var capacity: Int64 { get }
    /// The bytes of the entries held.
    var usedBytes: Int64 { get }
    var count: Int { get }

    func contains(_ key: ChunkDigest) -> Bool
    func size(of key: ChunkDigest) -> Int64?

    /// A read of `key`; returns whether it is held (a hit).
    mutating func recordAccess(_ key: ChunkDigest) -> Bool

    /// Removes entries, in the policy's order, until `usedBytes + reserved + bytes <= capacity`;
    /// returns the keys removed (their files must go). Returns nil, removing nothing, when
    /// `reserved + bytes` alone exceeds the capacity.
    mutating func makeRoom(for bytes: Int64, reserved: Int64) -> [ChunkDigest]?

    /// Adds `key` (room was made for it). Inserting a key already held does nothing.
    mutating func insert(_ key: ChunkDigest, size: Int64)

    /// Forgets `key` (its file is corrupt or gone).
    mutating func remove(_ key: ChunkDigest)
}

/// The policies the cache offers: S3-FIFO by default, plain LRU for comparison.
public enum EvictionPolicyKind: String, Sendable, CaseIterable {
    case s3fifo
    case lru

    public func make(capacity: Int64) -> any EvictionPolicy {
        switch self {
        case .s3fifo: S3FIFOPolicy(capacity: capacity)
        case .lru: LRUPolicy(capacity: capacity)
        }
    }
}

/// A first-in first-out queue with amortized O(1) push and pop, for the policies' queues.
struct FIFOQueue<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }

    mutating func push(_ element: Element) {
        storage.append(element)
    }

    mutating func pop() -> Element? {
        guard head < storage.count else { return nil }
        let element = storage[head]
        head += 1
        if head > 1024 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    /// The elements from oldest to newest.
    var elements: ArraySlice<Element> { storage[head...] }

    mutating func replaceAll(with elements: [Element]) {
        storage = elements
        head = 0
    }
}

extension FIFOQueue: Sendable where Element: Sendable {}
