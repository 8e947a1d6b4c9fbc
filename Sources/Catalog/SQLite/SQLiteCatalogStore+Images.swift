import Foundation
import GRDB
import ICBDCore

extension SQLiteCatalogStore {
    public func createImage(
        name: Name, description: String, homeSite: Name?, ifMissing: Bool, by publisher: Publisher, at now: Date
    ) async throws -> Revisioned<(ImageRecord, created: Bool)> {
        try await commit { db, changes in
            if let existing = try Self.fetchImage(db, name) {
                guard ifMissing else { throw CatalogStoreError(.alreadyExists, "image '\(name)' exists already") }
                return (existing, created: false)
            }
            let home: Name?
            switch publisher {
            case .admin:
                if let homeSite, !(try Self.siteExists(db, homeSite)) {
                    throw CatalogStoreError.notFound("site '\(homeSite)' does not exist; add it with `icbd site add` first")
                }
                home = homeSite
            case .replicator:
                let draft = ImageRecord(name: name, description: description, created: now, revision: changes.revision)
                home = try CatalogRules.checkAuthority(
                    of: publisher, over: draft, site: try Self.replicatorSite(db, publisher), version: nil)
            }
            let image = ImageRecord(name: name, description: description, created: now, homeSite: home, revision: changes.revision)
            try db.execute(
                sql: "INSERT INTO images (name, description, created_ms, home_site, revision) VALUES (?, ?, ?, ?, ?)",
                arguments: [name.rawValue, description, now.milliseconds, home?.rawValue, changes.revision.rawValue])
            changes.put(.image(image))
            return (image, created: true)
        }
    }

    public func listImages(after: Name?, limit: Int) async throws -> Revisioned<Page<ImageSummary>> {
        try await read { db in
            let rows = try Row.fetchAll(
                db, sql: "SELECT * FROM images WHERE name > ? ORDER BY name LIMIT ?",
                arguments: [after?.rawValue ?? "", limit + 1])
            let images = try rows.prefix(limit).map(SQLiteRows.image)
            guard let first = images.first, let last = images.last else { return Page(items: [], next: nil) }
            // Tags and version counts of the whole page in one query each, not one per image.
            let range: StatementArguments = [first.name.rawValue, last.name.rawValue]
            var tags: [Name: [TagRecord]] = [:]
            for tag in try Row.fetchAll(db, sql: "SELECT * FROM tags WHERE image BETWEEN ? AND ? ORDER BY image, name", arguments: range)
                .map(SQLiteRows.tag)
            {
                tags[tag.image, default: []].append(tag)
            }
            var stats: [String: (newest: Int64, count: Int)] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT image, MAX(number) AS newest, COUNT(*) AS count FROM versions WHERE image BETWEEN ? AND ? GROUP BY image",
                arguments: range)
            {
                stats[try row.decode(forColumn: "image")] = (try row.decode(forColumn: "newest"), try row.decode(forColumn: "count"))
            }
            let summaries = images.map { image in
                ImageSummary(
                    image: image, tags: tags[image.name] ?? [], newestVersion: stats[image.name.rawValue]?.newest,
                    versionCount: stats[image.name.rawValue]?.count ?? 0)
            }
            return Page(items: summaries, next: rows.count > limit ? images.last?.name.rawValue : nil)
        }
    }

    public func image(_ name: Name) async throws -> Revisioned<ImageDetail> {
        try await read { db in
            guard let image = try Self.fetchImage(db, name) else { throw CatalogStoreError.notFound("image '\(name)' does not exist") }
            let placements = try Row.fetchAll(
                db, sql: "SELECT * FROM placements WHERE image = ? ORDER BY version, node", arguments: [name.rawValue]
            ).map(SQLiteRows.placement)
            return ImageDetail(
                image: image, versions: try Self.fetchVersions(db, image: name), tags: try Self.fetchTags(db, image: name),
                placements: placements, policy: try Self.fetchPolicy(db, image: name))
        }
    }

    public func resolveVersion(image: Name, reference: VersionReference) async throws -> Revisioned<VersionRecord> {
        try await read { db in try Self.resolve(db, image: image, reference: reference) }
    }

    // MARK: Shared reads

    static func fetchImage(_ db: Database, _ name: Name) throws -> ImageRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM images WHERE name = ?", arguments: [name.rawValue]).map(SQLiteRows.image)
    }

    /// The registered site of a replicator publisher; nil for an admin or an unregistered node.
    static func replicatorSite(_ db: Database, _ publisher: Publisher) throws -> Name? {
        guard case .replicator(let name) = publisher else { return nil }
        return try Row.fetchOne(db, sql: "SELECT site FROM nodes WHERE name = ? AND role = 'replicator'", arguments: [name])
            .map { try SQLiteRows.name($0, "site") }
    }

    /// Checks `publisher`'s authority to change `version` (fill, complete, abandon).
    static func authorize(_ db: Database, _ publisher: Publisher, over version: VersionRecord) throws {
        _ = try CatalogRules.checkAuthority(
            of: publisher, over: try requireImage(db, version.image), site: try replicatorSite(db, publisher), version: version)
    }

    /// Checks `publisher`'s authority to create a version of `image`, and records the home site
    /// a first replicator claims.
    static func authorizeNewVersion(_ db: Database, _ publisher: Publisher, of image: Name, changes: inout ChangeRecorder) throws {
        let record = try requireImage(db, image)
        guard
            let home = try CatalogRules.checkAuthority(of: publisher, over: record, site: try replicatorSite(db, publisher), version: nil)
        else { return }
        try db.execute(
            sql: "UPDATE images SET home_site = ?, revision = ? WHERE name = ?",
            arguments: [home.rawValue, changes.revision.rawValue, image.rawValue])
        var claimed = record
        claimed.homeSite = home
        claimed.revision = changes.revision
        changes.put(.image(claimed))
    }

    static func requireImage(_ db: Database, _ name: Name) throws -> ImageRecord {
        guard let image = try fetchImage(db, name) else {
            throw CatalogStoreError.notFound("image '\(name)' does not exist")
        }
        return image
    }

    static func resolve(_ db: Database, image: Name, reference: VersionReference) throws -> VersionRecord {
        _ = try requireImage(db, image)
        var tag: TagRecord?
        if case .tag(let name) = reference { tag = try fetchTag(db, image: image, name: name) }
        let number = try CatalogRules.versionNumber(of: reference, image: image, tag: tag)
        guard let version = try fetchVersion(db, image: image, number: number) else {
            throw CatalogStoreError.notFound("image '\(image)' has no version \(number)")
        }
        return version
    }
}
