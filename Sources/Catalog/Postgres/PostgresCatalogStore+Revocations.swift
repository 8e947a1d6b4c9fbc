import Foundation
import ICBDCore
import ICBDRPC
import CatalogClient

extension PostgresCatalogStore {
    public func revoke(_ revocation: RevocationRecord, at now: Date) async throws -> (RevocationRecord, created: Bool) {
        // Not a change: no revision, no event (servers poll the list).
        try await writeUnversioned { db -> (RevocationRecord, created: Bool) in
            try await db.execute(sql: "DELETE FROM revocations WHERE expires_ms <= ?", arguments: [now.milliseconds])
            if let kept = try await db.fetchAll(sql: "SELECT * FROM revocations WHERE serial = ?", arguments: [revocation.serial.hex]).first {
                return (try PostgresRows.revocation(kept), false)
            }
            let count = try await db.scalar(Int64.self, sql: "SELECT COUNT(*) FROM revocations") ?? 0
            guard count < RevocationRecord.maximumEntries else { throw CatalogStoreError.revocationListFull(Int(count)) }
            try await db.execute(
                sql: "INSERT INTO revocations (serial, name, revoked_ms, expires_ms, reason) VALUES (?, ?, ?, ?, ?)",
                arguments: [
                    revocation.serial.hex, revocation.name, revocation.revoked.milliseconds, revocation.expires.milliseconds,
                    revocation.reason,
                ])
            return (revocation, true)
        }
    }

    public func revocations(at now: Date) async throws -> [RevocationRecord] {
        try await read { db in
            try await db.fetchAll(
                sql: "SELECT * FROM revocations WHERE expires_ms > ? ORDER BY serial LIMIT ?",
                arguments: [now.milliseconds, RevocationRecord.maximumEntries]
            ).map(PostgresRows.revocation)
        }.value
    }
}

extension PostgresRows {
    static func revocation(_ row: PGRow) throws -> RevocationRecord {
        let text: String = try row.decode(forColumn: "serial")
        guard let serial = CertificateSerial(parsing: text) else { throw damaged("serial '\(text)' is not a certificate serial") }
        return RevocationRecord(
            serial: serial, name: try row.decode(forColumn: "name"), revoked: try date(row, "revoked_ms"),
            expires: try date(row, "expires_ms"), reason: try row.decode(forColumn: "reason"))
    }
}
