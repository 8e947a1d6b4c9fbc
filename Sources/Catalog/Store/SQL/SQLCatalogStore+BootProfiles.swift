import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func putBootProfile(_ profile: BootProfileRecord) async throws {
        let entries = try CatalogRows.jsonText(profile.entries)
        // Not a change: no revision, no event (a hint, like a heartbeat's time).
        try await writeUnversioned { db in
            let exists = try await db.boolean(
                "SELECT EXISTS (SELECT 1 FROM versions WHERE image = \(profile.image) AND number = \(profile.version)) AS value")
            guard exists else {
                throw CatalogStoreError.notFound("image '\(profile.image)' has no version \(profile.version)")
            }
            try await db.execute(
                """
                INSERT INTO boot_profiles (image, version, node, recorded_ms, entries)
                VALUES (\(profile.image), \(profile.version), \(profile.node), \(profile.recorded), \(entries))
                ON CONFLICT (image, version, node) DO UPDATE SET recorded_ms = excluded.recorded_ms, entries = excluded.entries
                """)
        }
    }

    public func bootProfiles(image: Name, version: Int64, atOrBefore: Bool) async throws -> [BootProfileRecord] {
        try await read { db in
            let chosen: Int64? =
                if !atOrBefore {
                    version
                } else {
                    try await db.integer("SELECT MAX(version) AS value FROM boot_profiles WHERE image = \(image) AND version <= \(version)")
                }
            guard let chosen else { return [] }
            return try await db.fetchAll(
                "SELECT * FROM boot_profiles WHERE image = \(image) AND version = \(chosen) ORDER BY node", CatalogRows.bootProfile)
        }
    }
}
