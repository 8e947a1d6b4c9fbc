import ICBDCore
import Synchronization

/// The last committed revisions, kept in memory in commit order, so that watchers that keep
/// up are served without reading the log back from the database. Bounded by `capacity`.
final class RecentChanges: Sendable {
    private struct State {
        var changes: [CatalogChange] = []
        var start = 0  // ring: the oldest change is at `start` once full
    }

    private let capacity: Int
    private let state = Mutex(State())

    init(capacity: Int) {
        self.capacity = max(0, capacity)
    }

    /// Called after each commit, in commit order.
    func append(_ change: CatalogChange) {
        guard capacity > 0 else { return }
        state.withLock { state in
            if state.changes.count < capacity {
                state.changes.append(change)
            } else {
                state.changes[state.start] = change
                state.start = (state.start + 1) % capacity
            }
        }
    }

    /// Forgets every change (the next appended one need not follow the last one kept).
    func reset() {
        state.withLock { $0 = State() }
    }

    /// The changes after `revision`, at most `limit`, when memory holds all of them from
    /// `revision + 1` on; nil when the log must be read.
    func changes(after revision: Revision, limit: Int) -> [CatalogChange]? {
        state.withLock { state in
            guard let oldest = state.changes.isEmpty ? nil : state.changes[state.start] else { return nil }
            guard oldest.revision <= revision.next else { return nil }
            let offset = Int(revision.rawValue - oldest.revision.rawValue + 1)
            let count = state.changes.count
            guard offset <= count else { return [] }
            return (offset..<min(count, offset + limit)).map { state.changes[(state.start + $0) % count] }
        }
    }
}
