import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func createVersion(_ spec: NewVersion, by publisher: Publisher, at now: Date) async throws -> Revisioned<VersionRecord> {
        try await commit { db, changes in
            try await Self.authorizeNewVersion(db, publisher, of: spec.image, changes: &changes)
            let newest = try await db.integer("SELECT MAX(number) AS value FROM versions WHERE image = \(spec.image)")
            var existing: VersionRecord?
            if let requested = spec.number { existing = try await Self.fetchVersion(db, image: spec.image, number: requested) }
            let number = try CatalogRules.versionNumber(requested: spec.number, newest: newest, existing: existing, image: spec.image)
            if let parent = spec.parent {
                try CatalogRules.checkParent(
                    parent, of: number, parentVersion: try await Self.fetchVersion(db, image: spec.image, number: parent), image: spec.image)
            }
            guard
                let versionID = try await db.fetchOne(
                    """
                    INSERT INTO versions (image, number, parent, state, btrfs_uuid, created_ms, published_by, revision)
                    VALUES (\(spec.image), \(number), \(spec.parent), 'publishing', \(spec.btrfsUUID), \(now), \(spec.publishedBy), \(changes.revision))
                    RETURNING id
                    """, { try $0.integer(required: "id") })
            else { throw CatalogStoreError(.storage, "the catalog database returned no id for version \(number) of image '\(spec.image)'") }
            for file in spec.files {
                try await db.execute(
                    """
                    INSERT INTO files (version_id, path, size, chunk_size, manifest_sha256)
                    VALUES (\(versionID), \(file.path.rawValue), \(file.size), \(file.chunkSize), \(file.manifestDigest))
                    """)
            }
            guard let version = try await Self.fetchVersion(db, image: spec.image, number: number) else {
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
            let version = try await Self.requireVersion(db, image: image, number: number)
            try await Self.authorize(db, publisher, over: version)
            let latest = try await Self.fetchTag(db, image: image, name: Name.latestTag)
            guard version.state != .ready else { return (version, latest: latest) }  // a retried completion
            try CatalogRules.checkCompletable(version)
            try await Self.setVersionState(db, image: image, number: number, .ready, revision: changes.revision)
            let ready = try await Self.requireVersion(db, image: image, number: number)
            changes.put(.version(ready))
            guard let target = CatalogRules.latestAfterCompleting(number, current: latest) else { return (ready, latest: latest) }
            let moved = try await Self.writeTag(db, image: image, name: Name.latestTag, version: target, revision: changes.revision)
            changes.put(.tag(moved))
            return (ready, latest: moved)
        }
    }

    public func abandonVersion(image: Name, number: Int64, by publisher: Publisher, dropImageIfUnused: Bool) async throws
        -> Revisioned<Bool>
    {
        try await commit { db, changes in
            let version = try await Self.requireVersion(db, image: image, number: number)
            try await Self.authorize(db, publisher, over: version)
            try CatalogRules.checkAbandonable(version, publisher: publisher)
            let placements = try await db.fetchAll(
                "SELECT * FROM placements WHERE image = \(image) AND version = \(number)", CatalogRows.placement)
            try await db.execute("DELETE FROM placements WHERE image = \(image) AND version = \(number)")
            for placement in placements { changes.delete(.placement(placement)) }
            // Files and manifest pages go with the version (ON DELETE CASCADE).
            try await db.execute("DELETE FROM versions WHERE image = \(image) AND number = \(number)")
            changes.delete(.version(version))
            guard dropImageIfUnused, let record = try await Self.fetchImage(db, image) else { return false }
            let references = try await db.integer(
                """
                SELECT (SELECT COUNT(*) FROM versions WHERE image = \(image)) + (SELECT COUNT(*) FROM tags WHERE image = \(image))
                     + (SELECT COUNT(*) FROM policies WHERE image = \(image)) + (SELECT COUNT(*) FROM assignments WHERE image = \(image))
                  AS value
                """)
            guard references == 0 else { return false }
            try await db.execute("DELETE FROM images WHERE name = \(image)")
            changes.delete(.image(record))
            return true
        }
    }

    public func retireVersion(image: Name, number: Int64, expected: ExpectedRevision, at now: Date) async throws
        -> Revisioned<VersionRecord>
    {
        try await commit { db, changes in
            let version = try await Self.requireVersion(db, image: image, number: number)
            try CatalogRules.check(expected, current: version.revision, "version \(number) of image '\(image)'")
            guard version.state != .retired else { return version }
            if let rollout = RolloutRules.holds(try await Self.fetchRollouts(db, image: image), version: number) {
                throw CatalogStoreError.precondition(
                    "version \(number) of image '\(image)' is in the rollout of tag '\(rollout.tag)' (version \(rollout.fromVersion) to \(rollout.toVersion), \(rollout.state.rawValue)); workstations boot it until the rollout ends: icbd rollout abort \(image) \(rollout.tag)")
            }
            let tags = try await Self.fetchTags(db, image: image)
            let plan = try CatalogRules.planRetire(
                version, tags: tags, versions: try await Self.fetchVersions(db, image: image),
                assignments: try await Self.fetchAssignments(db, image: image))
            try await Self.setVersionState(db, image: image, number: number, .retired, revision: changes.revision)
            let retired = try await Self.requireVersion(db, image: image, number: number)
            changes.put(.version(retired))
            switch plan {
            case .unchanged:
                break
            case .move(let target):
                changes.put(.tag(try await Self.writeTag(db, image: image, name: Name.latestTag, version: target, revision: changes.revision)))
            case .delete:
                if let latest = tags.first(where: { $0.name == Name.latestTag }) {
                    try await db.execute("DELETE FROM tags WHERE image = \(image) AND name = \(latest.name)")
                    changes.delete(.tag(latest))
                }
            }
            return retired
        }
    }

    // MARK: Shared

    static func setVersionState(_ db: Transaction, image: Name, number: Int64, _ state: VersionState, revision: Revision) async throws {
        try await db.execute("UPDATE versions SET state = \(state), revision = \(revision) WHERE image = \(image) AND number = \(number)")
    }

    /// Bumps a version's revision (a file's manifest arrived).
    static func touchVersion(_ db: Transaction, image: Name, number: Int64, revision: Revision) async throws {
        try await db.execute("UPDATE versions SET revision = \(revision) WHERE image = \(image) AND number = \(number)")
    }

    static func fetchVersion(_ db: Transaction, image: Name, number: Int64) async throws -> VersionRecord? {
        guard
            let found = try await db.fetchOne(
                "SELECT * FROM versions WHERE image = \(image) AND number = \(number)",
                { row in (id: try row.integer(required: "id"), version: try CatalogRows.version(row, files: [])) })
        else { return nil }
        var version = found.version
        version.files = try await db.fetchAll("SELECT * FROM files WHERE version_id = \(found.id) ORDER BY path", CatalogRows.file)
        return version
    }

    static func requireVersion(_ db: Transaction, image: Name, number: Int64) async throws -> VersionRecord {
        guard let version = try await fetchVersion(db, image: image, number: number) else {
            _ = try await requireImage(db, image)
            throw CatalogStoreError.notFound("image '\(image)' has no version \(number)")
        }
        return version
    }

    /// Every version of an image, oldest first, with files (never manifests).
    static func fetchVersions(_ db: Transaction, image: Name) async throws -> [VersionRecord] {
        let fileRows = try await db.fetchAll(
            """
            SELECT files.*, versions.number AS version_number FROM files JOIN versions ON versions.id = files.version_id
            WHERE versions.image = \(image) ORDER BY files.path
            """
        ) { row in (try row.integer(required: "version_number"), try CatalogRows.file(row)) }
        var grouped: [Int64: [FileRecord]] = [:]
        for (number, file) in fileRows { grouped[number, default: []].append(file) }
        let files = grouped
        return try await db.fetchAll("SELECT * FROM versions WHERE image = \(image) ORDER BY number") { row in
            try CatalogRows.version(row, files: files[try row.integer(required: "number")] ?? [])
        }
    }
}
