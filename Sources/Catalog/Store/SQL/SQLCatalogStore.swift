import Foundation
import ICBDCore

/// A catalog store on an SQL database. The statements and rules of every entity are written
/// once, as extensions of this protocol (`SQLCatalogStore+Images.swift`, …); a store conforms by
/// running transactions on its database — ``SQLiteCatalogStore`` through GRDB,
/// ``PostgresCatalogStore`` through postgres-nio — and by making committed changes known to its
/// watchers. What differs between the databases (connections, locking, isolation, change
/// notification, schema and migrations) lives in those two types only.
protocol SQLCatalogStore: CatalogStore {
    associatedtype Transaction: SQLTransaction

    /// Runs `body` in one write transaction, serialized with every other writer of the database
    /// (of this process and of others), and commits it; rolls back when `body` throws. `body`
    /// gets the revision committed last. When `body` returns a change, the store makes it known
    /// to the watchers once it committed, in commit order, before this returns.
    func write<T: Sendable>(
        _ body: @escaping @Sendable (Transaction, Revision) async throws -> (T, CatalogChange?)
    ) async throws -> T

    /// Runs `body` on a read-only snapshot of the database.
    func read<T: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T

    /// The changes committed in memory (``RecentChanges``), ahead of the log.
    var recent: RecentChanges { get }
    /// The latest committed revision this process knows of, and its watchers.
    var signal: RevisionSignal { get }
}

/// Collects the events of one write transaction, stamped with the revision it will commit.
struct ChangeRecorder {
    let revision: Revision
    private(set) var events: [CatalogEvent] = []

    init(revision: Revision) { self.revision = revision }

    mutating func put(_ entity: CatalogEntity) { events.append(CatalogEvent(.put, entity)) }
    mutating func delete(_ entity: CatalogEntity) { events.append(CatalogEvent(.delete, entity)) }
}

extension SQLCatalogStore {
    /// Runs `body` in one write transaction. When it recorded events, the revision is bumped
    /// and the events appended to the change log in that transaction.
    func commit<T: Sendable>(
        _ body: @escaping @Sendable (Transaction, inout ChangeRecorder) async throws -> T
    ) async throws -> Revisioned<T> {
        try await write { db, current in
            var recorder = ChangeRecorder(revision: current.next)
            let value = try await body(db, &recorder)
            guard !recorder.events.isEmpty else { return (Revisioned(value, at: current), nil) }
            let revision = recorder.revision
            try await db.execute("UPDATE meta SET value = \(revision) WHERE key = 'revision'")
            for (position, event) in recorder.events.enumerated() {
                let body = try ChangeCoding.encode(event.entity)
                try await db.execute(
                    """
                    INSERT INTO changes (revision, position, change, kind, key, body)
                    VALUES (\(revision), \(position), \(event.change), \(event.entity.kind), \(event.entity.key), \(body))
                    """)
            }
            return (Revisioned(value, at: revision), CatalogChange(revision: revision, events: recorder.events))
        }
    }

    /// Runs `body` on a read snapshot, with the revision of that snapshot.
    func readRevisioned<T: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> Revisioned<T> {
        try await read { db in
            let revision = try await Self.revision(db)
            return Revisioned(try await body(db), at: revision)
        }
    }

    /// A write transaction that records no change (staging data nobody can see yet, hints).
    func writeUnversioned<T: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> T) async throws -> T {
        try await write { db, _ in (try await body(db), nil) }
    }

    static func revision(_ db: Transaction) async throws -> Revision {
        Revision(try await db.integer("SELECT value FROM meta WHERE key = 'revision'") ?? 0)
    }
}

extension Revisioned {
    func map<T>(_ transform: (Value) throws -> T) rethrows -> Revisioned<T> {
        Revisioned<T>(try transform(value), at: revision)
    }
}
