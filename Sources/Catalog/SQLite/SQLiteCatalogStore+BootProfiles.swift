import Foundation
import GRDB
import ICBDCore

extension SQLiteCatalogStore {
    public func putBootProfile(_ profile: BootProfileRecord) async throws {
        _ = try await commit { db, _ in
            let exists =
                try Bool.fetchOne(
                    db, sql: "SELECT EXISTS (SELECT 1 FROM versions WHERE image = ? AND number = ?)",
                    arguments: [profile.image.rawValue, profile.version]) ?? false
            guard exists else {
                throw CatalogStoreError.notFound("image '\(profile.image)' has no version \(profile.version)")
            }
            // Not a change: no revision, no event (a hint, like a heartbeat's time).
            try db.execute(
                sql: """
                    INSERT INTO boot_profiles (image, version, node, recorded_ms, entries) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (image, version, node) DO UPDATE SET recorded_ms = excluded.recorded_ms, entries = excluded.entries
                    """,
                arguments: [
                    profile.image.rawValue, profile.version, profile.node.rawValue, profile.recorded.milliseconds,
                    try SQLiteRows.jsonText(profile.entries),
                ])
        }
    }

    public func bootProfiles(image: Name, version: Int64, atOrBefore: Bool) async throws -> [BootProfileRecord] {
        try await read { db in
            let chosen: Int64? =
                if !atOrBefore {
                    version
                } else {
                    try Int64.fetchOne(
                        db, sql: "SELECT MAX(version) FROM boot_profiles WHERE image = ? AND version <= ?",
                        arguments: [image.rawValue, version])
                }
            guard let chosen else { return [] }
            return try Row.fetchAll(
                db, sql: "SELECT * FROM boot_profiles WHERE image = ? AND version = ? ORDER BY node",
                arguments: [image.rawValue, chosen]
            ).map(SQLiteRows.bootProfile)
        }.value
    }
}

extension SQLiteRows {
    static func bootProfile(_ row: Row) throws -> BootProfileRecord {
        BootProfileRecord(
            image: try name(row, "image"), version: try row.decode(forColumn: "version"), node: try name(row, "node"),
            recorded: try date(row, "recorded_ms"), entries: try json(row, "entries", as: [BootProfileEntry].self))
    }
}
