import Foundation
import ICBDCore
import Logging
import NIOCore
import NIOSSL
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// The catalog store on a PostgreSQL server (postgres-nio), for several stateless catalog
/// processes on one database (docs/operations.md). The statements are the shared ones of
/// ``SQLCatalogStore``; this type runs their transactions.
///
/// - It runs as two services (``services``): the connection pool (postgres-nio's
///   `PostgresClient`), then the store itself, whose ``run()`` follows the change log until
///   graceful shutdown. A process adds them to its `ServiceGroup` before the services that use
///   the store (``CatalogService/storeServices``), so that graceful shutdown stops those first,
///   then the follower, then the pool; calls need them running.
/// - Every mutating call is one transaction that first locks the revision row
///   (`SELECT … FOR UPDATE`): writers, in this process or another, commit one after another,
///   each revision exactly once, and an `expected` revision is compared under that lock, so
///   of two racing writers exactly one wins. A failed call rolls back whole.
/// - Reads run in REPEATABLE READ snapshots and answer with the snapshot's revision.
/// - The change log (`changes`) is the truth for watchers. The follower reads it in revision
///   order into memory (``RecentChanges``) and wakes the watchers (``RevisionSignal``); it is
///   woken by commits of this process, by `NOTIFY icbd_catalog` from the others and by a
///   bounded poll, so a lost notification delays a change by at most one poll interval and
///   loses nothing.
/// - Opening migrates the schema under an advisory lock, on a connection of its own, and
///   refuses a database written by a newer icbd, or one that is not a catalog, before writing
///   to it.
public final class PostgresCatalogStore: SQLCatalogStore, Service {
    /// How the store reaches its database.
    public struct Configuration: Sendable {
        public var url: PostgresDatabaseURL
        /// From `PGPASSWORD` or `--db-password-file` (``PostgresPassword``).
        public var password: String?
        /// Connections in the pool. Default 16.
        public var maximumConnections = 16
        /// The longest any call waits for the database (connecting included) before failing
        /// with `.unavailable`. Default 10 s.
        public var operationTimeout: Duration = .seconds(10)
        /// How often the change log is read even without a notification. Default 1 s.
        public var pollInterval: Duration = .seconds(1)
        /// Recent revisions kept in memory for watchers.
        public var recentChangesInMemory = 1024

        public init(url: PostgresDatabaseURL, password: String?) {
            self.url = url
            self.password = password
        }
    }

    public let configuration: Configuration
    let client: PostgresClient
    let logger: Logger
    let signal: RevisionSignal
    let recent: RecentChanges
    private let follower: ChangeFollower
    private let kicks: (stream: AsyncStream<Void>, continuation: AsyncStream<Void>.Continuation)

    /// Connects, migrates (or checks) the schema and returns the store, to be run as a service.
    public static func open(_ configuration: Configuration, logger: Logger) async throws -> PostgresCatalogStore {
        let clientConfiguration = try clientConfiguration(configuration)
        do {
            let revision = try await withDeadline(configuration.operationTimeout, "connecting to \(configuration.url)") {
                let connection = try await PostgresConnection.connect(
                    configuration: try connectionConfiguration(configuration), id: 0, logger: logger)
                do {
                    let revision = try await PostgresMigrator(connection: connection, url: configuration.url, logger: logger).migrate()
                    try await connection.close()
                    return revision
                } catch {
                    try? await connection.close()
                    throw error
                }
            }
            logger.info("catalog database open", metadata: ["db": "\(configuration.url)", "revision": "\(revision)"])
            return PostgresCatalogStore(
                configuration: configuration, client: PostgresClient(configuration: clientConfiguration, backgroundLogger: logger),
                revision: revision, logger: logger)
        } catch {
            throw translate(error, url: configuration.url)
        }
    }

    private init(configuration: Configuration, client: PostgresClient, revision: Revision, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.signal = RevisionSignal(revision)
        self.recent = RecentChanges(capacity: configuration.recentChangesInMemory)
        self.kicks = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        self.follower = ChangeFollower(
            client: client, configuration: configuration, signal: signal, recent: recent, start: revision, logger: logger)
    }

    /// What a process runs for this store, in start order: the connection pool, then the change
    /// follower (``run()``). Each once.
    public var services: [any Service] { [client, self] }

    /// Runs the change follower, its `LISTEN` connection and its poll until graceful shutdown,
    /// on the connection pool, which must run too (``services``).
    public func run() async {
        let (follower, kicks, pollInterval) = (self.follower, self.kicks, configuration.pollInterval)
        await withDiscardingTaskGroup { group in
            group.addTask { await follower.follow(kicks: kicks.stream) }
            group.addTask { await follower.listen(kick: { kicks.continuation.yield() }) }
            group.addTask {
                while await ChangeFollower.pause(pollInterval) { kicks.continuation.yield() }
            }
        }
    }

    /// The TLS settings `sslmode` asks for; nil for `disable`.
    static func tlsSettings(_ url: PostgresDatabaseURL) throws -> TLSConfiguration? {
        var settings = TLSConfiguration.makeClientConfiguration()
        switch url.sslMode {
        case .disable:
            return nil
        case .prefer, .require:
            settings.certificateVerification = .none
        case .verifyFull:
            settings.certificateVerification = .fullVerification
            if let root = url.sslRootCertificate {
                do {
                    settings.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(root))
                } catch {
                    throw CatalogStoreError(.invalidArgument, "sslrootcert \(root) is not a readable PEM certificate file: \(error)")
                }
            }
        }
        return settings
    }

    static func clientConfiguration(_ configuration: Configuration) throws -> PostgresClient.Configuration {
        let url = configuration.url
        let tls: PostgresClient.Configuration.TLS =
            switch (url.sslMode, try tlsSettings(url)) {
            case (_, nil): .disable
            case (.prefer, let settings?): .prefer(settings)
            case (_, let settings?): .require(settings)
            }
        var client = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.user, password: configuration.password, database: url.database, tls: tls)
        client.options.maximumConnections = max(1, configuration.maximumConnections)
        client.options.connectTimeout = configuration.operationTimeout
        return client
    }

    /// A single connection's settings (migrations, `LISTEN`), as the pool's.
    static func connectionConfiguration(_ configuration: Configuration) throws -> PostgresConnection.Configuration {
        let url = configuration.url
        let tls: PostgresConnection.Configuration.TLS
        if let settings = try tlsSettings(url) {
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

    // MARK: Transactions

    /// Read from the database, not from memory: another catalog process may have committed
    /// since this one last looked.
    public func currentRevision() async throws -> Revision {
        let head = try await read { db in try await Self.revision(db) }
        if head > signal.current { kicks.continuation.yield() }
        return head
    }

    /// A transaction holding the revision row's lock. A change is announced to the other
    /// processes (`NOTIFY`) in the transaction that commits it, and read by this process's
    /// follower before this returns.
    func write<T: Sendable>(
        _ body: @escaping @Sendable (PostgresTransaction, Revision) async throws -> (T, CatalogChange?)
    ) async throws -> T {
        let (value, change) = try await transaction("BEGIN ISOLATION LEVEL READ COMMITTED") { db in
            let current = Revision(try await db.integer("SELECT value FROM meta WHERE key = 'revision' FOR UPDATE") ?? 0)
            let (value, change) = try await body(db, current)
            if let change {
                try await db.execute("SELECT pg_notify(\(PostgresSchema.channel), \(String(change.revision.rawValue)))")
            }
            return (value, change)
        }
        if let change, change.revision > signal.current { await awaitFollower(change.revision) }
        return value
    }

    /// Waits (boundedly) until the follower has read `revision` into memory, so that this
    /// process's watchers see a write before it is acknowledged, as with SQLite. The write has
    /// committed whatever happens here.
    private func awaitFollower(_ revision: Revision) async {
        kicks.continuation.yield()
        let signal = self.signal
        _ = try? await Self.withDeadline(configuration.operationTimeout, "following the change log") {
            try await signal.wait(after: Revision(revision.rawValue - 1))
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresTransaction) async throws -> T) async throws -> T {
        try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// BEGIN … COMMIT on a pooled connection, rolled back when `body` throws; bounded by the
    /// operation timeout.
    private func transaction<T: Sendable>(
        _ begin: SQLStatement, _ body: @escaping @Sendable (PostgresTransaction) async throws -> T
    ) async throws -> T {
        try await Self.transaction(client: client, configuration: configuration, logger: logger, begin, body)
    }

    static func transaction<T: Sendable>(
        client: PostgresClient, configuration: Configuration, logger: Logger,
        _ begin: SQLStatement, _ body: @escaping @Sendable (PostgresTransaction) async throws -> T
    ) async throws -> T {
        do {
            return try await withDeadline(configuration.operationTimeout, "a catalog database transaction") {
                try await client.withConnection { connection in
                    let db = PostgresTransaction(connection: connection, logger: logger)
                    try await db.execute(begin)
                    do {
                        let value = try await body(db)
                        try await db.execute("COMMIT")
                        return value
                    } catch {
                        // A broken connection has rolled back by itself; the pool drops it.
                        try? await db.execute("ROLLBACK")
                        throw error
                    }
                }
            }
        } catch {
            throw translate(error, url: configuration.url)
        }
    }

    /// Runs `body`, failing with `.unavailable` when it takes longer than `limit`. Returns at
    /// the deadline even if `body` does not react to cancellation (a query on a connection
    /// whose server vanished): `body` is cancelled and left to finish on its own.
    static func withDeadline<T: Sendable>(
        _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let race = DeadlineRace<T>()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                race.start(
                    continuation,
                    work: Task {
                        do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                    },
                    timer: Task {
                        guard (try? await Task.sleep(for: limit)) != nil else { return }
                        race.finish(
                            .failure(CatalogStoreError(.unavailable, "the catalog database did not answer \(what) within \(limit); retry")))
                    })
            }
        } onCancel: {
            race.finish(.failure(CancellationError()))
        }
    }

    /// Domain errors pass; PostgreSQL's become availability or storage errors.
    static func translate(_ error: any Error, url: PostgresDatabaseURL) -> any Error {
        switch error {
        case is CatalogStoreError, is CancellationError:
            return error
        case let error as PSQLError:
            if error.code == .server {
                let state = error.serverInfo?[.sqlState] ?? ""
                let message = error.serverInfo?[.message] ?? "\(error)"
                // 08: connection exceptions; 57P0x: shutting down / starting up; 53: out of
                // resources; 40001/40P01: serialization failure / deadlock.
                if state.hasPrefix("08") || state.hasPrefix("57P") || state.hasPrefix("53") || state == "40001" || state == "40P01" {
                    return CatalogStoreError(
                        .unavailable, "the catalog database \(url) cannot answer now (\(state): \(message)); retry", cause: error)
                }
                if state == "57014" { return CancellationError() }
                return CatalogStoreError(.storage, "catalog database error (\(state)): \(message)", cause: error)
            }
            if error.code == .queryCancelled { return CancellationError() }
            return CatalogStoreError(.unavailable, "the catalog database \(url) is unreachable (\(error.code)); retry", cause: error)
        default:
            // Socket errors, and the pool giving up on connecting (its circuit breaker).
            return CatalogStoreError(.unavailable, "the catalog database \(url) is unreachable (\(error)); retry", cause: error)
        }
    }
}

/// The first of a body and its deadline to finish resumes the caller; the other is cancelled.
private final class DeadlineRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var early: Result<T, any Error>?
        var tasks: [Task<Void, Never>] = []
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<T, any Error>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let early: Result<T, any Error>? = state.withLock { state in
            state.tasks = [work, timer]
            if let early = state.early { return early }
            state.continuation = continuation
            return nil
        }
        if let early {
            work.cancel()
            timer.cancel()
            continuation.resume(with: early)
        }
    }

    func finish(_ result: Result<T, any Error>) {
        let (continuation, tasks): (CheckedContinuation<T, any Error>?, [Task<Void, Never>]) = state.withLock { state in
            guard let continuation = state.continuation else {
                if state.early == nil { state.early = result }
                return (nil, [])
            }
            state.continuation = nil
            state.early = result
            return (continuation, state.tasks)
        }
        for task in tasks { task.cancel() }
        continuation?.resume(with: result)
    }
}
