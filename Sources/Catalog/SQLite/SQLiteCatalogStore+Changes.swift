import Foundation
import GRDB
import ICBDCore

extension SQLiteCatalogStore {
    public func currentRevision() async throws -> Revision {
        signal.current
    }

    public func changes(after revision: Revision, limit: Int) async throws -> [CatalogChange] {
        if let recent = recent.changes(after: revision, limit: limit) { return recent }
        return try await read { db -> [CatalogChange] in
            let compacted = Revision(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
            guard revision >= compacted else {
                throw CatalogStoreError(
                    .compacted,
                    "revision \(revision) is older than the retained change log (it starts after revision \(compacted)); list again and watch from the listing's revision",
                    details: ["compacted_revision": "\(compacted)"])
            }
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT revision, change, body FROM changes WHERE revision > ? AND revision <= ? ORDER BY revision, position",
                arguments: [revision.rawValue, revision.rawValue + Int64(limit)])
            var changes: [CatalogChange] = []
            for row in rows {
                let at = Revision(try row.decode(forColumn: "revision") as Int64)
                let event = CatalogEvent(
                    try SQLiteRows.enumValue(row, "change", as: CatalogEvent.Change.self),
                    try Self.decodeEntity(try row.decode(forColumn: "body")))
                if changes.last?.revision == at {
                    changes[changes.count - 1].events.append(event)
                } else {
                    changes.append(CatalogChange(revision: at, events: [event]))
                }
            }
            return changes
        }.value
    }

    public func waitForRevision(after revision: Revision) async throws -> Revision {
        try await signal.wait(after: revision)
    }

    public func compactChanges(retaining: Int) async throws -> Revision {
        try await writeUnversioned { db in
            let head = try Self.revision(db)
            let compacted = Revision(try Int64.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'compacted'") ?? 0)
            let target = Revision(max(0, head.rawValue - Int64(max(1, retaining))))
            guard target > compacted else { return compacted }
            try db.execute(sql: "DELETE FROM changes WHERE revision <= ?", arguments: [target.rawValue])
            try db.execute(sql: "UPDATE meta SET value = ? WHERE key = 'compacted'", arguments: [target.rawValue])
            return target
        }
    }

    static func decodeEntity(_ body: Data) throws -> CatalogEntity {
        do { return try ChangeCoding.decode(body) } catch {
            throw SQLiteRows.damaged("a change-log entry does not decode: \(error)")
        }
    }
}
