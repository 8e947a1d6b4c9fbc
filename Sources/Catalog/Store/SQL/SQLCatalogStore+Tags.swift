import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func moveTag(image: Name, tag: Name, version: Int64, expected: ExpectedRevision) async throws -> Revisioned<TagRecord> {
        try await commit { db, changes in
            _ = try await Self.requireImage(db, image)
            let target = try await Self.fetchVersion(db, image: image, number: version)
            try CatalogRules.checkTagTarget(tag: tag, version: target, number: version, image: image)
            let current = try await Self.fetchTag(db, image: image, name: tag)
            try CatalogRules.check(expected, current: current?.revision, "tag '\(tag)' of image '\(image)'")
            if let current, current.version == version { return current }
            try await Self.refuseWhileRolling(db, image: image, tag: tag, "moved")
            let moved = try await Self.writeTag(db, image: image, name: tag, version: version, revision: changes.revision)
            changes.put(.tag(moved))
            return moved
        }
    }

    public func deleteTag(image: Name, tag: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            _ = try await Self.requireImage(db, image)
            guard let current = try await Self.fetchTag(db, image: image, name: tag) else {
                throw CatalogStoreError.notFound("image '\(image)' has no tag '\(tag)'")
            }
            try CatalogRules.check(expected, current: current.revision, "tag '\(tag)' of image '\(image)'")
            try await Self.refuseWhileRolling(db, image: image, tag: tag, "deleted")
            if let booting = try await Self.fetchAssignments(db, image: image).first(where: { $0.version == .tag(tag) }) {
                throw CatalogStoreError.precondition(
                    "workstation \(booting.mac) boots '\(image):\(tag)'; assign it elsewhere before deleting the tag")
            }
            try await db.execute("DELETE FROM tags WHERE image = \(image) AND name = \(tag)")
            changes.delete(.tag(current))
        }.revision
    }

    // MARK: Shared

    /// A tag in a running rollout moves only by the rollout.
    static func refuseWhileRolling(_ db: Transaction, image: Name, tag: Name, _ what: String) async throws {
        guard let rollout = try await runningRollout(db, image: image, tag: tag) else { return }
        throw CatalogStoreError.precondition(
            "tag '\(tag)' of image '\(image)' is in a rollout to version \(rollout.toVersion) (\(rollout.state.rawValue)) and cannot be \(what); abort it first: icbd rollout abort \(image) \(tag)")
    }

    static func fetchTag(_ db: Transaction, image: Name, name: Name) async throws -> TagRecord? {
        try await db.fetchOne("SELECT * FROM tags WHERE image = \(image) AND name = \(name)", CatalogRows.tag)
    }

    static func fetchTags(_ db: Transaction, image: Name) async throws -> [TagRecord] {
        try await db.fetchAll("SELECT * FROM tags WHERE image = \(image) ORDER BY name", CatalogRows.tag)
    }

    /// Creates or moves a tag, stamped with `revision`.
    static func writeTag(_ db: Transaction, image: Name, name: Name, version: Int64, revision: Revision) async throws -> TagRecord {
        try await db.execute(
            """
            INSERT INTO tags (image, name, version, revision) VALUES (\(image), \(name), \(version), \(revision))
            ON CONFLICT (image, name) DO UPDATE SET version = excluded.version, revision = excluded.revision
            """)
        return TagRecord(image: image, name: name, version: version, revision: revision)
    }
}
