import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func createImage(
        name: Name, description: String, homeSite: Name?, ifMissing: Bool, by publisher: Publisher, at now: Date
    ) async throws -> Revisioned<(ImageRecord, created: Bool)> {
        try await commit { db, changes in
            if let existing = try await Self.fetchImage(db, name) {
                guard ifMissing else { throw CatalogStoreError(.alreadyExists, "image '\(name)' exists already") }
                return (existing, created: false)
            }
            let home: Name?
            switch publisher {
            case .admin:
                if let homeSite, !(try await Self.siteExists(db, homeSite)) {
                    throw CatalogStoreError.notFound("site '\(homeSite)' does not exist; add it with `icbd site add` first")
                }
                home = homeSite
            case .replicator:
                let draft = ImageRecord(name: name, description: description, created: now, revision: changes.revision)
                home = try CatalogRules.checkAuthority(
                    of: publisher, over: draft, site: try await Self.replicatorSite(db, publisher), version: nil)
            }
            let image = ImageRecord(name: name, description: description, created: now, homeSite: home, revision: changes.revision)
            try await db.execute(
                """
                INSERT INTO images (name, description, created_ms, home_site, revision)
                VALUES (\(name), \(description), \(now), \(home), \(changes.revision))
                """)
            changes.put(.image(image))
            return (image, created: true)
        }
    }

    public func listImages(after: Name?, limit: Int) async throws -> Revisioned<Page<ImageSummary>> {
        try await readRevisioned { db in
            let images = try await db.fetchAll(
                "SELECT * FROM images WHERE name > \(after?.rawValue ?? "") ORDER BY name LIMIT \(limit + 1)", CatalogRows.image)
            let page = images.prefix(limit)
            guard let first = page.first?.name, let last = page.last?.name else { return Page(items: [], next: nil) }
            // Tags and version counts of the whole page in one query each, not one per image.
            var tags: [Name: [TagRecord]] = [:]
            for tag in try await db.fetchAll(
                "SELECT * FROM tags WHERE image BETWEEN \(first) AND \(last) ORDER BY image, name", CatalogRows.tag)
            {
                tags[tag.image, default: []].append(tag)
            }
            let counts = try await db.fetchAll(
                """
                SELECT image, MAX(number) AS newest, COUNT(*) AS count FROM versions
                WHERE image BETWEEN \(first) AND \(last) GROUP BY image
                """
            ) { row in (try row.text(required: "image"), try row.integer(required: "newest"), Int(try row.integer(required: "count"))) }
            var stats: [String: (newest: Int64, count: Int)] = [:]
            for (image, newest, count) in counts { stats[image] = (newest, count) }
            let summaries = page.map { image in
                ImageSummary(
                    image: image, tags: tags[image.name] ?? [], newestVersion: stats[image.name.rawValue]?.newest,
                    versionCount: stats[image.name.rawValue]?.count ?? 0)
            }
            return Page(items: summaries, next: images.count > limit ? last.rawValue : nil)
        }
    }

    public func image(_ name: Name) async throws -> Revisioned<ImageDetail> {
        try await readRevisioned { db in
            guard let image = try await Self.fetchImage(db, name) else {
                throw CatalogStoreError.notFound("image '\(name)' does not exist")
            }
            let placements = try await db.fetchAll(
                "SELECT * FROM placements WHERE image = \(name) ORDER BY version, node", CatalogRows.placement)
            return ImageDetail(
                image: image, versions: try await Self.fetchVersions(db, image: name), tags: try await Self.fetchTags(db, image: name),
                placements: placements, policy: try await Self.fetchPolicy(db, image: name),
                rollouts: try await Self.fetchRollouts(db, image: name))
        }
    }

    public func resolveVersion(image: Name, reference: VersionReference) async throws -> Revisioned<VersionRecord> {
        try await readRevisioned { db in try await Self.resolve(db, image: image, reference: reference) }
    }

    // MARK: Shared reads

    static func fetchImage(_ db: Transaction, _ name: Name) async throws -> ImageRecord? {
        try await db.fetchOne("SELECT * FROM images WHERE name = \(name)", CatalogRows.image)
    }

    /// The registered site of a replicator publisher; nil for an admin or an unregistered node.
    static func replicatorSite(_ db: Transaction, _ publisher: Publisher) async throws -> Name? {
        guard case .replicator(let name) = publisher else { return nil }
        return try await db.fetchOne("SELECT site FROM nodes WHERE name = \(name) AND role = 'replicator'") {
            try CatalogRows.name($0, "site")
        }
    }

    /// Checks `publisher`'s authority to change `version` (fill, complete, abandon).
    static func authorize(_ db: Transaction, _ publisher: Publisher, over version: VersionRecord) async throws {
        _ = try CatalogRules.checkAuthority(
            of: publisher, over: try await requireImage(db, version.image), site: try await replicatorSite(db, publisher),
            version: version)
    }

    /// Checks `publisher`'s authority to create a version of `image`, and records the home site
    /// a first replicator claims.
    static func authorizeNewVersion(_ db: Transaction, _ publisher: Publisher, of image: Name, changes: inout ChangeRecorder) async throws {
        let record = try await requireImage(db, image)
        let site = try await replicatorSite(db, publisher)
        guard let home = try CatalogRules.checkAuthority(of: publisher, over: record, site: site, version: nil) else { return }
        try await db.execute("UPDATE images SET home_site = \(home), revision = \(changes.revision) WHERE name = \(image)")
        var claimed = record
        claimed.homeSite = home
        claimed.revision = changes.revision
        changes.put(.image(claimed))
    }

    static func requireImage(_ db: Transaction, _ name: Name) async throws -> ImageRecord {
        guard let image = try await fetchImage(db, name) else {
            throw CatalogStoreError.notFound("image '\(name)' does not exist")
        }
        return image
    }

    static func resolve(_ db: Transaction, image: Name, reference: VersionReference) async throws -> VersionRecord {
        _ = try await requireImage(db, image)
        var tag: TagRecord?
        if case .tag(let name) = reference { tag = try await fetchTag(db, image: image, name: name) }
        let number = try CatalogRules.versionNumber(of: reference, image: image, tag: tag)
        guard let version = try await fetchVersion(db, image: image, number: number) else {
            throw CatalogStoreError.notFound("image '\(image)' has no version \(number)")
        }
        return version
    }
}
