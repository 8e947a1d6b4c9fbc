import Foundation
import ICBDCore
import Logging
import PostgresNIO

/// Brings a catalog database to this code's schema, one catalog process at a time (a session
/// advisory lock), or refuses it with the reason before writing anything.
struct PostgresMigrator {
    let connection: PostgresConnection
    let url: PostgresDatabaseURL
    let logger: Logger

    /// Migrates and returns the database's revision.
    func migrate() async throws -> Revision {
        let db = PostgresTransaction(connection: connection, logger: logger)
        try await db.execute("SELECT pg_advisory_lock(\(PostgresSchema.migrationLock))")
        do {
            let revision = try await migrateLocked(db)
            try await db.execute("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))")
            return revision
        } catch {
            try? await db.execute("SELECT pg_advisory_unlock(\(PostgresSchema.migrationLock))")
            throw error
        }
    }

    private func migrateLocked(_ db: PostgresTransaction) async throws -> Revision {
        let tables = try await db.fetchAll(
            "SELECT table_name::text AS name FROM information_schema.tables WHERE table_schema = current_schema() ORDER BY table_name"
        ) { try $0.text(required: "name") }
        if !tables.isEmpty && !tables.contains("icbd_migrations") {
            throw CatalogStoreError(
                .storage,
                "\(url) is a PostgreSQL database but not an icbd catalog (it has tables \(tables.prefix(5).joined(separator: ", "))); choose another --db"
            )
        }
        var applied: [String] = []
        if tables.contains("icbd_migrations") {
            applied = try await db.fetchAll("SELECT id FROM icbd_migrations ORDER BY applied_ms, id") { try $0.text(required: "id") }
        }
        let unknown = Set(applied).subtracting(PostgresSchema.knownMigrations).sorted()
        guard unknown.isEmpty else {
            throw CatalogStoreError(
                .storage,
                "\(url) was written by a newer icbd: its schema has migrations this icbd \(SoftwareVersion.current) does not know (\(unknown.joined(separator: ", "))); run a newer icbd or restore a backup. The database was not changed.",
                details: ["unknown_migrations": unknown.joined(separator: ",")])
        }
        for migration in PostgresSchema.migrations where !applied.contains(migration.id) {
            try await db.execute("BEGIN")
            do {
                try await db.execute(SQLStatement(stringLiteral: PostgresSchema.migrationsTable))
                for statement in migration.sql.components(separatedBy: ";\n") {
                    let trimmed = statement.trimmingCharacters(in: .whitespacesAndNewlines)
                    guard !trimmed.isEmpty else { continue }
                    try await db.execute(SQLStatement(stringLiteral: trimmed))
                }
                try await db.execute("INSERT INTO icbd_migrations (id, applied_ms) VALUES (\(migration.id), \(Date()))")
                try await db.execute("COMMIT")
                logger.info("catalog database migrated", metadata: ["db": "\(url)", "migration": "\(migration.id)"])
            } catch {
                try? await db.execute("ROLLBACK")
                throw error
            }
        }
        return Revision(try await db.integer("SELECT value FROM meta WHERE key = 'revision'") ?? 0)
    }
}
