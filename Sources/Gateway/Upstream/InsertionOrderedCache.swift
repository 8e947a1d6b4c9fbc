/// A dictionary of at most `capacity` entries: inserting a new key when it is full forgets the
/// key inserted longest ago (updating a key's value does not move it). A value type: keep it
/// under the owner's lock.
struct InsertionOrderedCache<Key: Hashable, Value> {
    private var values: [Key: Value] = [:]
    /// Keys in the order they were inserted: a ring once full.
    private var order: [Key] = []
    private var oldest = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    subscript(key: Key) -> Value? { values[key] }

    /// Sets `key`'s value, forgetting the oldest key when a new one does not fit.
    mutating func insert(_ value: Value, for key: Key) {
        guard capacity > 0 else { return }
        if values.updateValue(value, forKey: key) != nil { return }
        if order.count < capacity {
            order.append(key)
        } else {
            values.removeValue(forKey: order[oldest])
            order[oldest] = key
            oldest = (oldest + 1) % capacity
        }
    }

    /// Forgets `key`'s value (its place in the ring is reused when the ring comes round to it).
    mutating func remove(_ key: Key) {
        values.removeValue(forKey: key)
    }
}

extension InsertionOrderedCache: Sendable where Key: Sendable, Value: Sendable {}
