import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func changes(after revision: Revision, limit: Int) async throws -> [CatalogChange] {
        if let recent = recent.changes(after: revision, limit: limit) { return recent }
        return try await read { db in try await Self.readChanges(db, after: revision, limit: limit) }
    }

    public func waitForRevision(after revision: Revision) async throws -> Revision {
        try await signal.wait(after: revision)
    }

    public func compactChanges(retaining: Int) async throws -> Revision {
        try await writeUnversioned { db in
            let head = try await Self.revision(db)
            let compacted = Revision(try await db.integer("SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
            let target = Revision(max(0, head.rawValue - Int64(max(1, retaining))))
            guard target > compacted else { return compacted }
            try await db.execute("DELETE FROM changes WHERE revision <= \(target)")
            try await db.execute("UPDATE meta SET value = \(target) WHERE key = 'compacted'")
            return target
        }
    }

    /// The committed revisions after `revision`, oldest first, at most `limit`; call it in one
    /// snapshot so that compaction cannot cut a hole in the answer.
    static func readChanges(_ db: Transaction, after revision: Revision, limit: Int) async throws -> [CatalogChange] {
        let compacted = Revision(try await db.integer("SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
        guard revision >= compacted else {
            throw CatalogStoreError(
                .compacted,
                "revision \(revision) is older than the retained change log (it starts after revision \(compacted)); list again and watch from the listing's revision",
                details: ["compacted_revision": "\(compacted)"])
        }
        let events = try await db.fetchAll(
            """
            SELECT revision, change, body FROM changes WHERE revision > \(revision) AND revision <= \(revision.rawValue + Int64(limit))
            ORDER BY revision, position
            """
        ) { row in
            (
                Revision(try row.integer(required: "revision")),
                CatalogEvent(
                    try CatalogRows.enumValue(row, "change", as: CatalogEvent.Change.self), try decodeEntity(try row.blob(required: "body")))
            )
        }
        var changes: [CatalogChange] = []
        for (at, event) in events {
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
            throw CatalogRows.damaged("a change-log entry does not decode: \(error)")
        }
    }
}
