import Synchronization

/// The chunks asked for most recently, at most `capacity` of them (oldest forgotten first), with
/// how often each was asked for while remembered: whether a chunk that is not in memory is
/// wanted over and over (a boot storm), or was only met again by chance (random reads).
final class RecentChunks: Sendable {
    private struct State {
        var asks: [[UInt8]: Int] = [:]
        var order: [[UInt8]] = []
        var next = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Records an ask for `hash`; returns how many times it was asked for before, while remembered.
    func touch(_ hash: [UInt8]) -> Int {
        state.withLock { state in
            if let earlier = state.asks[hash] {
                state.asks[hash] = earlier + 1
                return earlier
            }
            if state.order.count < capacity {
                state.order.append(hash)
            } else {
                state.asks[state.order[state.next]] = nil
                state.order[state.next] = hash
                state.next = (state.next + 1) % capacity
            }
            state.asks[hash] = 1
            return 0
        }
    }
}
