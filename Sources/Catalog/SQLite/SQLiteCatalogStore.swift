import Foundation
import GRDB
import ICBDCore
import Logging
import NIOPosix

/// The embedded catalog store: one SQLite file in WAL mode (through GRDB).
///
/// - Every mutating call is one write transaction (``commit(_:)``): it bumps the revision,
///   appends its events to `changes` and only then commits; `synchronous = FULL`, so a call
///   that returned survives a crash of the process or the machine.
/// - Reads run concurrently with writes on WAL snapshots.
/// - Opening refuses a file that is not a catalog database or whose schema is newer than this
///   code, before writing anything to it.
/// - GRDB's blocking calls run on threads of the store's own (`threads`: one per reader plus
///   the writer), not through GRDB's async API, whose Dispatch-queue actors are the one part of
///   this store we could not rule out when a test run stalled with every thread idle.
public final class SQLiteCatalogStore: CatalogStore {
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
    let pool: DatabasePool
    let threads: NIOThreadPool
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
            config.maximumReaderCount = configuration.maximumReaders
            config.busyMode = .timeout(Double(configuration.busyTimeout.components.seconds))
            config.foreignKeysEnabled = true
            config.label = "icbd.catalog"
            pool = try DatabasePool(path: path, configuration: config)
            // GRDB sets NORMAL with WAL, which may lose the last commits on power loss:
            // a catalog acknowledges only what is on disk.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
            try SQLiteSchema.migrator.migrate(pool)
            let revision = try pool.read { db in try Self.revision(db) }
            signal = RevisionSignal(revision)
            recent = RecentChanges(capacity: configuration.recentChangesInMemory)
            // Last: nothing below throws, so a store whose opening failed leaves no threads.
            threads = NIOThreadPool(numberOfThreads: configuration.maximumReaders + 1)
            threads.start()
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
        do {
            _ = try pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
        } catch {
            // Not fatal: the WAL is replayed when the file is opened next.
            logger.warning("WAL checkpoint on close failed", metadata: ["error": "\(error)"])
        }
        try pool.close()
    }

    /// `PRAGMA integrity_check`: ["ok"] for a sound database.
    public func integrityCheck() async throws -> [String] {
        let pool = self.pool
        return try await blocking { try pool.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") } }
    }

    deinit {
        threads.shutdownGracefully { _ in }
    }

    /// Runs blocking database `work` on the store's threads: a call waiting for the writer
    /// holds one of them, never a thread of the cooperative pool.
    func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try Task.checkCancellation()
        return try await threads.runIfActive(work)
    }

    // MARK: Transactions

    /// Collects the events of one write transaction, stamped with the revision it will commit.
    struct ChangeRecorder {
        let revision: Revision
        private(set) var events: [CatalogEvent] = []

        init(revision: Revision) { self.revision = revision }

        mutating func put(_ entity: CatalogEntity) { events.append(CatalogEvent(.put, entity)) }
        mutating func delete(_ entity: CatalogEntity) { events.append(CatalogEvent(.delete, entity)) }
    }

    /// Runs `body` in one write transaction. When it recorded events, the revision is bumped
    /// and the events appended to the change log in that transaction; watchers are woken once
    /// it committed.
    func commit<T: Sendable>(_ body: @escaping @Sendable (Database, inout ChangeRecorder) throws -> T) async throws -> Revisioned<T> {
        let (pool, recent, signal) = (self.pool, self.recent, self.signal)
        do {
            return try await blocking { try pool.write { db in
                let current = try Self.revision(db)
                var recorder = ChangeRecorder(revision: current.next)
                let value = try body(db, &recorder)
                guard !recorder.events.isEmpty else { return Revisioned(value, at: current) }
                try db.execute(
                    sql: "UPDATE meta SET value = ? WHERE key = 'revision'", arguments: [recorder.revision.rawValue])
                for (position, event) in recorder.events.enumerated() {
                    try db.execute(
                        sql: "INSERT INTO changes (revision, position, change, kind, key, body) VALUES (?, ?, ?, ?, ?, ?)",
                        arguments: [
                            recorder.revision.rawValue, position, event.change.rawValue, event.entity.kind.rawValue,
                            event.entity.key, try ChangeCoding.encode(event.entity),
                        ])
                }
                let change = CatalogChange(revision: recorder.revision, events: recorder.events)
                db.afterNextTransaction(onCommit: { _ in
                    recent.append(change)
                    signal.advance(to: change.revision)
                })
                return Revisioned(value, at: recorder.revision)
            } }
        } catch {
            throw Self.translate(error)
        }
    }

    /// Runs `body` on a read snapshot, with the revision of that snapshot.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> Revisioned<T> {
        let pool = self.pool
        do {
            return try await blocking { try pool.read { db in
                Revisioned(try body(db), at: try Self.revision(db))
            } }
        } catch {
            throw Self.translate(error)
        }
    }

    /// A write transaction that records no change (staging data nobody can see yet).
    func writeUnversioned<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pool = self.pool
        do {
            return try await blocking { try pool.write(body) }
        } catch {
            throw Self.translate(error)
        }
    }

    static func revision(_ db: Database) throws -> Revision {
        Revision(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0)
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
