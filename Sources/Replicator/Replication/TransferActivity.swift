import ICBDRPC
import Logging
import Synchronization

/// When a transfer last heard from its source, for ``withWatchedClient(_:activity:timeout:logger:_:)``.
final class TransferActivity: Sendable {
    private let last = Mutex(ContinuousClock.now)
    private let expiredFlag = Atomic(false)

    /// A message arrived.
    func touch() { last.withLock { $0 = .now } }

    /// How long since the last message (or since the activity was made).
    func idle() -> Duration { ContinuousClock.now - last.withLock { $0 } }

    /// Whether the watch ended the client for inactivity.
    var expired: Bool { expiredFlag.load(ordering: .relaxed) }

    fileprivate func expire() { expiredFlag.store(true, ordering: .relaxed) }
}

/// Runs `body` with a client of `configuration`'s peer, as `withRPCClient` does, and shuts the
/// client down (failing its calls in flight) when `activity` is not touched for `timeout`; the
/// body's failure is then UNAVAILABLE, "the source sent nothing for …". nil: no watch.
func withWatchedClient<Result: Sendable>(
    _ configuration: RPCClientConfiguration, activity: TransferActivity, timeout: Duration?, logger: Logger,
    _ body: (RPCClient) async throws -> Result
) async throws -> Result {
    let client = try RPCClient(configuration: configuration, logger: logger)
    do {
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                await withTaskGroup(of: Void.self) { connection in
                    connection.addTask { await client.run() }
                    if let timeout {
                        connection.addTask {
                            while !Task.isCancelled {
                                let idle = activity.idle()
                                if idle >= timeout { return activity.expire() }
                                try? await Task.sleep(for: timeout - idle)
                            }
                        }
                    }
                    // The client's run ends on cancellation; the watch ends when it expires.
                    _ = await connection.next()
                    connection.cancelAll()
                }
            }
            defer { group.cancelAll() }
            return try await body(client)
        }
    } catch where activity.expired {
        throw ReplicationError(.unavailable, "the source sent nothing for \(timeout.map { "\($0)" } ?? "")")
    }
}
