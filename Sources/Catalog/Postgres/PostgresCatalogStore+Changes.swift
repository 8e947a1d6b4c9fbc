import Foundation
import ICBDCore

extension PostgresCatalogStore {
    /// Read from the database, not from memory: another catalog process may have committed
    /// since this one last looked.
    public func currentRevision() async throws -> Revision {
        let head = try await read { _ in () }.revision
        if head > signal.current { kick() }
        return head
    }

    public func changes(after revision: Revision, limit: Int) async throws -> [CatalogChange] {
        if let recent = recent.changes(after: revision, limit: limit) { return recent }
        return try await read { db in try await Self.readChanges(db, after: revision, limit: limit) }.value
    }

    public func waitForRevision(after revision: Revision) async throws -> Revision {
        try await signal.wait(after: revision)
    }

    public func compactChanges(retaining: Int) async throws -> Revision {
        try await writeUnversioned { db in
            let head = try await Self.revision(db)
            let compacted = Revision(try await db.scalar(Int64.self, sql: "SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
            let target = Revision(max(0, head.rawValue - Int64(max(1, retaining))))
            guard target > compacted else { return compacted }
            try await db.execute(sql: "DELETE FROM changes WHERE revision <= ?", arguments: [target.rawValue])
            try await db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'compacted'", arguments: [target.rawValue])
            return target
        }
    }

    static func revision(_ db: PGTransaction) async throws -> Revision {
        Revision(try await db.scalar(Int64.self, sql: "SELECT value FROM meta WHERE key = 'revision'") ?? 0)
    }

    /// The committed revisions after `revision`, oldest first, at most `limit`; call it in one
    /// snapshot so that compaction cannot cut a hole in the answer.
    static func readChanges(_ db: PGTransaction, after revision: Revision, limit: Int) async throws -> [CatalogChange] {
        let compacted = Revision(try await db.scalar(Int64.self, sql: "SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
        guard revision >= compacted else {
            throw CatalogStoreError(
                .compacted,
                "revision \(revision) is older than the retained change log (it starts after revision \(compacted)); list again and watch from the listing's revision",
                details: ["compacted_revision": "\(compacted)"])
        }
        let rows = try await db.fetchAll(
            sql: "SELECT revision, change, body FROM changes WHERE revision > ? AND revision <= ? ORDER BY revision, position",
            arguments: [revision.rawValue, revision.rawValue + Int64(limit)])
        var changes: [CatalogChange] = []
        for row in rows {
            let at = Revision(try row.decode(forColumn: "revision") as Int64)
            let event = CatalogEvent(
                try PostgresRows.enumValue(row, "change", as: CatalogEvent.Change.self), try decodeEntity(try row.decode(forColumn: "body"))
            )
            if changes.last?.revision == at {
                changes[changes.count - 1].events.append(event)
            } else {
                changes.append(CatalogChange(revision: at, events: [event]))
            }
        }
        return changes
    }

    static func decodeEntity(_ body: Data) throws -> CatalogEntity {
        do { return try ChangeCoding.decode(body) } catch {
            throw PostgresRows.damaged("a change-log entry does not decode: \(error)")
        }
    }
}
