import Synchronization

/// The chunks asked for most recently, at most `capacity` of them (oldest forgotten first):
/// whether a chunk that is not in memory was wanted a moment ago, i.e. is probably wanted again.
final class RecentChunks: Sendable {
    private struct State {
        var members: Set<[UInt8]> = []
        var order: [[UInt8]] = []
        var next = 0
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// Records `hash`; returns whether it was among the recent ones already.
    func touch(_ hash: [UInt8]) -> Bool {
        state.withLock { state in
            guard !state.members.contains(hash) else { return true }
            if state.order.count < capacity {
                state.order.append(hash)
            } else {
                state.members.remove(state.order[state.next])
                state.order[state.next] = hash
                state.next = (state.next + 1) % capacity
            }
            state.members.insert(hash)
            return false
        }
    }
}
