import CatalogClient
import Foundation
import ICBDCore
import ICBDRPC

extension SQLCatalogStore {
    public func revoke(_ revocation: RevocationRecord, at now: Date) async throws -> (RevocationRecord, created: Bool) {
        // Not a change: no revision, no event (servers poll the list).
        try await writeUnversioned { db -> (RevocationRecord, created: Bool) in
            try await db.execute("DELETE FROM revocations WHERE expires_ms <= \(now)")
            if let kept = try await db.fetchOne("SELECT * FROM revocations WHERE serial = \(revocation.serial.hex)", CatalogRows.revocation) {
                return (kept, false)
            }
            let count = Int(try await db.integer("SELECT COUNT(*) AS value FROM revocations") ?? 0)
            guard count < RevocationRecord.maximumEntries else { throw CatalogStoreError.revocationListFull(count) }
            try await db.execute(
                """
                INSERT INTO revocations (serial, name, revoked_ms, expires_ms, reason)
                VALUES (\(revocation.serial.hex), \(revocation.name), \(revocation.revoked), \(revocation.expires), \(revocation.reason))
                """)
            return (revocation, true)
        }
    }

    public func revocations(at now: Date) async throws -> [RevocationRecord] {
        try await read { db in
            try await db.fetchAll(
                "SELECT * FROM revocations WHERE expires_ms > \(now) ORDER BY serial LIMIT \(RevocationRecord.maximumEntries)",
                CatalogRows.revocation)
        }
    }
}
