import Foundation
import GRDB
import ICBDCore
import Logging

/// The embedded catalog store: one SQLite file in WAL mode, through GRDB. The
/// statements are the shared ones of ``SQLCatalogStore``; this type runs their transactions.
///
/// - Every mutating call is one write transaction (`BEGIN IMMEDIATE`) on the one writer
///   connection: it bumps the revision, appends its events to `changes` and only then commits;
///   `synchronous = FULL`, so a call that returned survives a crash of the process or the
///   machine. Committed changes reach the watchers in memory (``RecentChanges``,
///   ``RevisionSignal``) in commit order, before the call returns.
/// - Reads run on reader connections (`maximumReaders`), each in its own WAL snapshot,
///   concurrently with the writer.
/// - Opening refuses a file that is not a catalog database or whose schema is newer than this
///   code, before writing anything to it.
/// - Nothing runs in the background: there is no service to run.
public final class SQLiteCatalogStore: SQLCatalogStore {
    /// How the store opens its database.
    public struct Configuration: Sendable {
        /// Concurrent readers (WAL snapshots). Default 4.
        public var maximumReaders = 4
        /// How long a write waits for another process holding the database lock. Default 10 s.
        public var busyTimeout: Duration = .seconds(10)
        /// Recent revisions kept in memory so that watchers rarely read the log from disk.
        public var recentChangesInMemory = 1024

        public init() {}
    }

    public let path: String
    let writer: SQLiteConnectionPool
    let readers: SQLiteConnectionPool
    let logger: Logger
    let signal: RevisionSignal
    let recent: RecentChanges

    /// Opens (and creates or migrates) the catalog database at `path`.
    public init(path: String, configuration: Configuration = .init(), logger: Logger) throws {
        self.path = path
        self.logger = logger
        do {
            try Self.checkCompatible(path: path)
            var config = GRDB.Configuration()
            config.busyMode = .timeout(Double(configuration.busyTimeout.components.seconds))
            config.foreignKeysEnabled = true
            // A transaction spans several calls on its connection (SQLiteTransaction).
            config.allowsUnsafeTransactions = true
            config.label = "icbd.catalog"
            var writerConfig = config
            writerConfig.journalMode = .wal
            // GRDB's default with WAL, NORMAL, may lose the last commits on power loss: a
            // catalog acknowledges only what is on disk.
            writerConfig.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            let writer = try DatabaseQueue(path: path, configuration: writerConfig)
            try SQLiteSchema.migrator.migrate(writer)
            let revision = try writer.read { db in Revision(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0) }
            var readerConfig = config
            readerConfig.readonly = true
            let readers = try (0..<max(1, configuration.maximumReaders)).map { _ in
                try DatabaseQueue(path: path, configuration: readerConfig)
            }
            self.writer = SQLiteConnectionPool([writer])
            self.readers = SQLiteConnectionPool(readers)
            signal = RevisionSignal(revision)
            recent = RecentChanges(capacity: configuration.recentChangesInMemory)
            logger.info("catalog database open", metadata: ["db": "\(path)", "revision": "\(revision)"])
        } catch let error as CatalogStoreError {
            throw error
        } catch {
            throw CatalogStoreError(.storage, "cannot open the catalog database \(path): \(error)", cause: error)
        }
    }

    /// Refuses, without writing, a file that is not an icbd catalog or comes from a newer schema.
    static func checkCompatible(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { return }
        var config = GRDB.Configuration()
        config.readonly = true
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw CatalogStoreError(.storage, "\(path) is not a readable SQLite database: \(error)", cause: error)
        }
        defer { try? queue.close() }
        try queue.read { db in
            let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            if applicationID != SQLiteSchema.applicationID && !tables.isEmpty && !tables.contains("grdb_migrations") {
                throw CatalogStoreError(
                    .storage, "\(path) is an SQLite database but not an icbd catalog (it has tables \(tables.prefix(5).joined(separator: ", "))); choose another --db")
            }
            let applied = try SQLiteSchema.migrator.appliedIdentifiers(db)
            let unknown = applied.subtracting(SQLiteSchema.knownMigrations).sorted()
            guard unknown.isEmpty else {
                throw CatalogStoreError(
                    .storage,
                    "\(path) was written by a newer icbd: its schema has migrations this icbd \(SoftwareVersion.current) does not know (\(unknown.joined(separator: ", "))); run a newer icbd or restore a backup. The file was not changed.",
                    details: ["unknown_migrations": unknown.joined(separator: ",")])
            }
        }
    }

    /// Flushes the WAL into the database file and closes it.
    public func close() throws {
        for reader in readers.connections { try reader.close() }
        guard let writer = writer.connections.first else { return }
        do {
            _ = try writer.writeWithoutTransaction { db in
                if db.isInsideTransaction { try db.rollback() }
                return try db.checkpoint(.truncate)
            }
        } catch {
            // Not fatal: the WAL is replayed when the file is opened next.
            logger.warning("WAL checkpoint on close failed", metadata: ["error": "\(error)"])
        }
        try writer.close()
    }

    /// `PRAGMA integrity_check`: ["ok"] for a sound database.
    public func integrityCheck() async throws -> [String] {
        try await read { db in try await db.fetchAll("PRAGMA integrity_check") { try $0.text(required: "integrity_check") } }
    }

    public func currentRevision() async throws -> Revision {
        signal.current
    }

    // MARK: Transactions

    func write<T: Sendable>(
        _ body: @escaping @Sendable (SQLiteTransaction, Revision) async throws -> (T, CatalogChange?)
    ) async throws -> T {
        do {
            return try await writer.withConnection { connection in
                let current: Revision
                do {
                    current = try await connection.writeWithoutTransaction { db in
                        try Self.begin(db, .immediate)
                        return Revision(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0)
                    }
                } catch {
                    // A caller cancelled while this ran interrupts it, maybe after its BEGIN:
                    // the writer goes back without a transaction open.
                    Self.rollBack(connection)
                    throw error
                }
                // The commit waits for its fsync, through the async API, in a task of its own:
                // GRDB skips the block of a cancelled task, and a caller cancelled between BEGIN
                // IMMEDIATE and COMMIT would give the writer back holding the database's write
                // lock, for other processes (or another store on the file) to wait on in vain.
                let commit = { try await Task { try await connection.writeWithoutTransaction { db in try db.commit() } }.value }
                let (value, change) = try await Self.finishing(connection, commit: commit) {
                    try await body(SQLiteTransaction(connection: connection), current)
                }
                // Still holding the writer: watchers learn of changes in commit order.
                if let change {
                    recent.append(change)
                    signal.advance(to: change.revision)
                }
                return value
            }
        } catch {
            throw Self.translate(error)
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteTransaction) async throws -> T) async throws -> T {
        do {
            return try await readers.withConnection { connection in
                // A WAL reader waits for nobody: its begin, statements and end run right away.
                try connection.inDatabase { db in try Self.begin(db, .deferred) }
                return try await Self.finishing(connection, commit: { try connection.inDatabase { db in try db.commit() } }) {
                    try await body(SQLiteTransaction(connection: connection))
                }
            }
        } catch {
            throw Self.translate(error)
        }
    }

    /// Begins a transaction, first rolling back one still open because a rollback failed
    /// (``rollBack(_:)`` cannot report it).
    private static func begin(_ db: Database, _ kind: Database.TransactionKind) throws {
        if db.isInsideTransaction { try db.rollback() }
        try db.beginTransaction(kind)
    }

    /// Runs `body` in the transaction open on `connection` and ends it there, whatever becomes of
    /// the caller: `commit` when `body` returns, a rollback when `body` or `commit` throws, so the
    /// connection never goes back to its pool with a transaction open.
    private static func finishing<T: Sendable>(
        _ connection: DatabaseQueue, commit: () async throws -> Void, _ body: () async throws -> T
    ) async throws -> T {
        do {
            let value = try await body()
            try await commit()
            return value
        } catch {
            rollBack(connection)
            throw error
        }
    }

    /// Ends the transaction open on `connection` without keeping anything; the next `begin`
    /// retries a rollback that failed here.
    private static func rollBack(_ connection: DatabaseQueue) {
        try? connection.inDatabase { db in if db.isInsideTransaction { try db.rollback() } }
    }

    /// Domain errors pass; SQLite's become storage or availability errors with its message.
    static func translate(_ error: any Error) -> any Error {
        switch error {
        case is CatalogStoreError, is CancellationError:
            return error
        case let error as DatabaseError:
            switch error.resultCode {
            case .SQLITE_BUSY, .SQLITE_LOCKED:
                return CatalogStoreError(.unavailable, "the catalog database is busy (\(error.message ?? "locked")); retry", cause: error)
            case .SQLITE_FULL:
                return CatalogStoreError(.unavailable, "the catalog database's disk is full", cause: error)
            case .SQLITE_INTERRUPT:
                return CancellationError()
            default:
                return CatalogStoreError(.storage, "catalog database error: \(error)", cause: error)
            }
        default:
            return CatalogStoreError(.storage, "catalog database error: \(error)", cause: error)
        }
    }
}
