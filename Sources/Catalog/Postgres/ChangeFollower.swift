import Foundation
import ICBDCore
import Logging
import PostgresNIO
import ServiceLifecycle

/// Follows the change log of a PostgreSQL catalog database for the watchers of this process:
/// reads every committed revision, in order and once, into ``RecentChanges`` and then moves
/// the ``RevisionSignal``. The log is the truth; wake-ups (commits here, `NOTIFY` from other
/// processes, a bounded poll) only say when to look, so a lost one costs a delay, not a change.
/// Runs inside ``PostgresCatalogStore/run()`` and stops at its graceful shutdown.
struct ChangeFollower: Sendable {
    let client: PostgresClient
    let configuration: PostgresCatalogStore.Configuration
    let signal: RevisionSignal
    let recent: RecentChanges
    let start: Revision
    let logger: Logger

    /// Revisions read at once.
    static let batch = 512

    /// Catches up after each wake-up until graceful shutdown.
    func follow(kicks: AsyncStream<Void>) async {
        var seen = start
        for await _ in kicks.cancelOnGracefulShutdown() {
            var more = true
            while more && !Task.isShuttingDownGracefully {
                do {
                    let changes = try await PostgresCatalogStore.transaction(
                        client: client, configuration: configuration, logger: logger, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
                    ) { [seen] db in
                        try await PostgresCatalogStore.readChanges(db, after: seen, limit: Self.batch)
                    }
                    for change in changes { recent.append(change) }
                    if let last = changes.last {
                        seen = last.revision
                        signal.advance(to: seen)
                    }
                    more = changes.count == Self.batch
                } catch let error as CatalogStoreError where error.code == .compacted {
                    // This process fell behind the log's retention (a long partition): its
                    // watchers resume from the database and are told to list again if needed.
                    logger.warning("change follower behind the retained log; jumping to the head", metadata: ["after": "\(seen)"])
                    recent.reset()
                    if let head = try? await headRevision() {
                        seen = head
                        signal.advance(to: head)
                    }
                    more = false
                } catch is CancellationError {
                    return
                } catch {
                    logger.warning("reading the change log failed; retrying at the next wake-up", metadata: ["error": "\(error)"])
                    more = false
                }
            }
        }
    }

    /// Holds `LISTEN icbd_catalog` on a connection of its own, reconnecting after failures with
    /// a bounded back-off, until graceful shutdown; every notification, and every
    /// (re)connection, wakes the follower.
    func listen(kick: @escaping @Sendable () -> Void) async {
        var delay = Duration.milliseconds(100)
        var attempt = 0
        while !Self.stopping {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: PostgresCatalogStore.connectionConfiguration(configuration), id: attempt, logger: logger)
                delay = .milliseconds(100)
                do {
                    try await connection.listen(on: PostgresSchema.channel) { notifications in
                        kick()  // changes committed while nobody listened
                        for try await _ in notifications.cancelOnGracefulShutdown() { kick() }
                    }
                } catch {
                    if !Self.stopping {
                        logger.info("change notifications interrupted; reconnecting", metadata: ["error": "\(error)"])
                    }
                }
                try? await connection.close()
            } catch {
                if !Self.stopping {
                    logger.debug("change notifications unavailable; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                }
            }
            guard await Self.pause(delay) else { return }
            delay = min(delay * 2, .seconds(5))
        }
    }

    /// Waits `duration`; false when the service is stopping instead.
    static func pause(_ duration: Duration) async -> Bool {
        _ = await cancelWhenGracefulShutdown { try? await Task.sleep(for: duration) }
        return !stopping
    }

    private static var stopping: Bool { Task.isShuttingDownGracefully || Task.isCancelled }

    private func headRevision() async throws -> Revision {
        try await PostgresCatalogStore.transaction(
            client: client, configuration: configuration, logger: logger, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        ) { db in try await PostgresCatalogStore.revision(db) }
    }
}
