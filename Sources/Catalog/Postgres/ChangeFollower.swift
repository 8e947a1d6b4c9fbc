import Foundation
import ICBDCore
import Logging
import NIOSSL
import PostgresNIO

/// Follows the change log of a PostgreSQL catalog database for the watchers of this process:
/// reads every committed revision, in order and once, into ``RecentChanges`` and then moves
/// the ``RevisionSignal``. The log is the truth; wake-ups (commits here, `NOTIFY` from other
/// processes, a bounded poll) only say when to look, so a lost one costs a delay, not a change.
struct ChangeFollower: Sendable {
    let client: PostgresClient
    let configuration: PostgresCatalogStore.Configuration
    let signal: RevisionSignal
    let recent: RecentChanges
    let start: Revision
    let logger: Logger

    /// Revisions read at once.
    static let batch = 512

    /// Catches up after each wake-up until cancelled.
    func follow(kicks: AsyncStream<Void>) async {
        var seen = start
        for await _ in kicks {
            var more = true
            while more && !Task.isCancelled {
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
    /// a bounded back-off; every notification, and every (re)connection, wakes the follower.
    func listen(kick: @escaping @Sendable () -> Void) async {
        var delay = Duration.milliseconds(100)
        var attempt = 0
        while !Task.isCancelled {
            attempt += 1
            do {
                let connection = try await PostgresConnection.connect(
                    configuration: Self.connectionConfiguration(configuration), id: attempt, logger: logger)
                delay = .milliseconds(100)
                do {
                    try await connection.listen(on: PostgresSchema.channel) { notifications in
                        kick()  // changes committed while nobody listened
                        for try await _ in notifications { kick() }
                    }
                } catch {
                    if !Task.isCancelled {
                        logger.info("change notifications interrupted; reconnecting", metadata: ["error": "\(error)"])
                    }
                }
                try? await connection.close()
            } catch {
                if !Task.isCancelled {
                    logger.debug("change notifications unavailable; retrying", metadata: ["error": "\(error)", "delay": "\(delay)"])
                }
            }
            guard (try? await Task.sleep(for: delay)) != nil else { return }
            delay = min(delay * 2, .seconds(5))
        }
    }

    private func headRevision() async throws -> Revision {
        try await client.withConnection { connection in
            Revision(
                try await PGTransaction(connection: connection, logger: logger)
                    .scalar(Int64.self, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0)
        }
    }

    static func connectionConfiguration(_ configuration: PostgresCatalogStore.Configuration) throws -> PostgresConnection.Configuration {
        let url = configuration.url
        let tls: PostgresConnection.Configuration.TLS
        if let settings = try PostgresCatalogStore.tlsSettings(url) {
            let context = try NIOSSLContext(configuration: settings)
            tls = url.sslMode == .prefer ? .prefer(context) : .require(context)
        } else {
            tls = .disable
        }
        var settings = PostgresConnection.Configuration(
            host: url.host, port: url.port, username: url.user, password: configuration.password, database: url.database, tls: tls)
        settings.options.connectTimeout = .seconds(Int64(configuration.operationTimeout.components.seconds))
        return settings
    }
}
