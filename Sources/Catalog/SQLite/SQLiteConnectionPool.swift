import GRDB
import Synchronization

/// SQLite connections lent to one transaction at a time. A transaction runs its statements one
/// by one, with awaits in between; holding its connection for the whole transaction keeps
/// everybody else's statements out of it. Waiting for a connection suspends the task, it never
/// blocks a thread.
final class SQLiteConnectionPool: Sendable {
    private struct State {
        var idle: [DatabaseQueue]
        var waiting: [CheckedContinuation<DatabaseQueue, Never>] = []
    }

    private let state: Mutex<State>
    let connections: [DatabaseQueue]

    init(_ connections: [DatabaseQueue]) {
        self.connections = connections
        state = Mutex(State(idle: connections))
    }

    /// Runs `body` with a connection of its own, waiting for one to come back when all are lent.
    func withConnection<T: Sendable>(_ body: (DatabaseQueue) async throws -> T) async throws -> T {
        let connection = await take()
        defer { give(connection) }
        return try await body(connection)
    }

    private func take() async -> DatabaseQueue {
        if let connection = state.withLock({ $0.idle.popLast() }) { return connection }
        return await withCheckedContinuation { continuation in
            let connection: DatabaseQueue? = state.withLock { state in
                if let connection = state.idle.popLast() { return connection }
                state.waiting.append(continuation)
                return nil
            }
            if let connection { continuation.resume(returning: connection) }
        }
    }

    private func give(_ connection: DatabaseQueue) {
        let waiter: CheckedContinuation<DatabaseQueue, Never>? = state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.idle.append(connection)
                return nil
            }
            return state.waiting.removeFirst()
        }
        waiter?.resume(returning: connection)
    }
}
