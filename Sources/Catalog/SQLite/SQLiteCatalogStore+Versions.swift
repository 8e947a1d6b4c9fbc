import Foundation
import GRDB
import ICBDCore

extension SQLiteCatalogStore {
    public func createVersion(_ spec: NewVersion, by publisher: Publisher, at now: Date) async throws -> Revisioned<VersionRecord> {
        try await commit { db, changes in
            try Self.authorizeNewVersion(db, publisher, of: spec.image, changes: &changes)
            let newest = try Int64.fetchOne(db, sql: "SELECT MAX(number) FROM versions WHERE image = ?", arguments: [spec.image.rawValue])
            let existing = try spec.number.flatMap { try Self.fetchVersion(db, image: spec.image, number: $0) }
            let number = try CatalogRules.versionNumber(requested: spec.number, newest: newest, existing: existing, image: spec.image)
            if let parent = spec.parent {
                try CatalogRules.checkParent(
                    parent, of: number, parentVersion: try Self.fetchVersion(db, image: spec.image, number: parent), image: spec.image)
            }
            try db.execute(
                sql: """
                    INSERT INTO versions (image, number, parent, state, btrfs_uuid, created_ms, published_by, revision)
                    VALUES (?, ?, ?, 'publishing', ?, ?, ?, ?)
                    """,
                arguments: [
                    spec.image.rawValue, number, spec.parent, spec.btrfsUUID, now.milliseconds, spec.publishedBy,
                    changes.revision.rawValue,
                ])
            let versionID = db.lastInsertedRowID
            for file in spec.files {
                try db.execute(
                    sql: "INSERT INTO files (version_id, path, size, chunk_size, manifest_sha256) VALUES (?, ?, ?, ?, ?)",
                    arguments: [versionID, file.path.rawValue, file.size, file.chunkSize, Data(file.manifestDigest)])
            }
            guard let version = try Self.fetchVersion(db, image: spec.image, number: number) else {
                throw CatalogStoreError(.storage, "version \(number) of image '\(spec.image)' vanished while being created")
            }
            changes.put(.version(version))
            return version
        }
    }

    public func completeVersion(image: Name, number: Int64, by publisher: Publisher, at now: Date) async throws
        -> Revisioned<(VersionRecord, latest: TagRecord?)>
    {
        try await commit { db, changes in
            let version = try Self.requireVersion(db, image: image, number: number)
            try Self.authorize(db, publisher, over: version)
            let latest = try Self.fetchTag(db, image: image, name: Name.latestTag)
            guard version.state != .ready else { return (version, latest: latest) }  // a retried completion
            try CatalogRules.checkCompletable(version)
            try Self.setVersionState(db, image: image, number: number, .ready, revision: changes.revision)
            let ready = try Self.requireVersion(db, image: image, number: number)
            changes.put(.version(ready))
            guard let target = CatalogRules.latestAfterCompleting(number, current: latest) else { return (ready, latest: latest) }
            let moved = try Self.writeTag(db, image: image, name: Name.latestTag, version: target, revision: changes.revision)
            changes.put(.tag(moved))
            return (ready, latest: moved)
        }
    }

    public func abandonVersion(image: Name, number: Int64, by publisher: Publisher, dropImageIfUnused: Bool) async throws
        -> Revisioned<Bool>
    {
        try await commit { db, changes in
            let version = try Self.requireVersion(db, image: image, number: number)
            try Self.authorize(db, publisher, over: version)
            try CatalogRules.checkAbandonable(version, publisher: publisher)
            let placements = try Row.fetchAll(
                db, sql: "SELECT * FROM placements WHERE image = ? AND version = ?", arguments: [image.rawValue, number]
            ).map(SQLiteRows.placement)
            try db.execute(sql: "DELETE FROM placements WHERE image = ? AND version = ?", arguments: [image.rawValue, number])
            for placement in placements { changes.delete(.placement(placement)) }
            // Files and manifest pages go with the version (ON DELETE CASCADE).
            try db.execute(sql: "DELETE FROM versions WHERE image = ? AND number = ?", arguments: [image.rawValue, number])
            changes.delete(.version(version))
            guard dropImageIfUnused, let record = try Self.fetchImage(db, image) else { return false }
            let references = try Int.fetchOne(
                db,
                sql: """
                    SELECT (SELECT COUNT(*) FROM versions WHERE image = ?1) + (SELECT COUNT(*) FROM tags WHERE image = ?1)
                         + (SELECT COUNT(*) FROM policies WHERE image = ?1) + (SELECT COUNT(*) FROM assignments WHERE image = ?1)
                    """,
                arguments: [image.rawValue]) ?? 0
            guard references == 0 else { return false }
            try db.execute(sql: "DELETE FROM images WHERE name = ?", arguments: [image.rawValue])
            changes.delete(.image(record))
            return true
        }
    }

    public func retireVersion(image: Name, number: Int64, expected: ExpectedRevision, at now: Date) async throws
        -> Revisioned<VersionRecord>
    {
        try await commit { db, changes in
            let version = try Self.requireVersion(db, image: image, number: number)
            try CatalogRules.check(expected, current: version.revision, "version \(number) of image '\(image)'")
            guard version.state != .retired else { return version }
            let tags = try Self.fetchTags(db, image: image)
            let plan = try CatalogRules.planRetire(
                version, tags: tags, versions: try Self.fetchVersions(db, image: image),
                assignments: try Self.fetchAssignments(db, image: image))
            try Self.setVersionState(db, image: image, number: number, .retired, revision: changes.revision)
            let retired = try Self.requireVersion(db, image: image, number: number)
            changes.put(.version(retired))
            switch plan {
            case .unchanged:
                break
            case .move(let target):
                changes.put(.tag(try Self.writeTag(db, image: image, name: Name.latestTag, version: target, revision: changes.revision)))
            case .delete:
                if let latest = tags.first(where: { $0.name == Name.latestTag }) {
                    try db.execute(sql: "DELETE FROM tags WHERE image = ? AND name = ?", arguments: [image.rawValue, latest.name.rawValue])
                    changes.delete(.tag(latest))
                }
            }
            return retired
        }
    }

    // MARK: Shared

    static func setVersionState(_ db: Database, image: Name, number: Int64, _ state: VersionState, revision: Revision) throws {
        try db.execute(
            sql: "UPDATE versions SET state = ?, revision = ? WHERE image = ? AND number = ?",
            arguments: [state.rawValue, revision.rawValue, image.rawValue, number])
    }

    /// Bumps a version's revision (a file's manifest arrived).
    static func touchVersion(_ db: Database, image: Name, number: Int64, revision: Revision) throws {
        try db.execute(
            sql: "UPDATE versions SET revision = ? WHERE image = ? AND number = ?",
            arguments: [revision.rawValue, image.rawValue, number])
    }

    static func fetchVersion(_ db: Database, image: Name, number: Int64) throws -> VersionRecord? {
        guard
            let row = try Row.fetchOne(
                db, sql: "SELECT * FROM versions WHERE image = ? AND number = ?", arguments: [image.rawValue, number])
        else { return nil }
        let versionID: Int64 = try row.decode(forColumn: "id")
        let files = try Row.fetchAll(db, sql: "SELECT * FROM files WHERE version_id = ? ORDER BY path", arguments: [versionID])
            .map(SQLiteRows.file)
        return try SQLiteRows.version(row, files: files)
    }

    static func requireVersion(_ db: Database, image: Name, number: Int64) throws -> VersionRecord {
        guard let version = try fetchVersion(db, image: image, number: number) else {
            _ = try requireImage(db, image)
            throw CatalogStoreError.notFound("image '\(image)' has no version \(number)")
        }
        return version
    }

    /// Every version of an image, oldest first, with files (never manifests).
    static func fetchVersions(_ db: Database, image: Name) throws -> [VersionRecord] {
        let fileRows = try Row.fetchAll(
            db,
            sql: """
                SELECT files.*, versions.number AS version_number FROM files JOIN versions ON versions.id = files.version_id
                WHERE versions.image = ? ORDER BY files.path
                """,
            arguments: [image.rawValue])
        var files: [Int64: [FileRecord]] = [:]
        for row in fileRows {
            let number: Int64 = try row.decode(forColumn: "version_number")
            files[number, default: []].append(try SQLiteRows.file(row))
        }
        return try Row.fetchAll(db, sql: "SELECT * FROM versions WHERE image = ? ORDER BY number", arguments: [image.rawValue])
            .map { row in
                let number: Int64 = try row.decode(forColumn: "number")
                return try SQLiteRows.version(row, files: files[number] ?? [])
            }
    }
}
