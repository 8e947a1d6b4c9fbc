import Foundation
import GRDB
import ICBDCore

extension SQLiteCatalogStore {
    public func moveTag(image: Name, tag: Name, version: Int64, expected: ExpectedRevision) async throws -> Revisioned<TagRecord> {
        try await commit { db, changes in
            _ = try Self.requireImage(db, image)
            let target = try Self.fetchVersion(db, image: image, number: version)
            try CatalogRules.checkTagTarget(tag: tag, version: target, number: version, image: image)
            let current = try Self.fetchTag(db, image: image, name: tag)
            try CatalogRules.check(expected, current: current?.revision, "tag '\(tag)' of image '\(image)'")
            if let current, current.version == version { return current }
            let moved = try Self.writeTag(db, image: image, name: tag, version: version, revision: changes.revision)
            changes.put(.tag(moved))
            return moved
        }
    }

    public func deleteTag(image: Name, tag: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            _ = try Self.requireImage(db, image)
            guard let current = try Self.fetchTag(db, image: image, name: tag) else {
                throw CatalogStoreError.notFound("image '\(image)' has no tag '\(tag)'")
            }
            try CatalogRules.check(expected, current: current.revision, "tag '\(tag)' of image '\(image)'")
            if let booting = try Self.fetchAssignments(db, image: image).first(where: { $0.version == .tag(tag) }) {
                throw CatalogStoreError.precondition(
                    "workstation \(booting.mac) boots '\(image):\(tag)'; assign it elsewhere before deleting the tag")
            }
            try db.execute(sql: "DELETE FROM tags WHERE image = ? AND name = ?", arguments: [image.rawValue, tag.rawValue])
            changes.delete(.tag(current))
        }.revision
    }

    // MARK: Shared

    static func fetchTag(_ db: Database, image: Name, name: Name) throws -> TagRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM tags WHERE image = ? AND name = ?", arguments: [image.rawValue, name.rawValue])
            .map(SQLiteRows.tag)
    }

    static func fetchTags(_ db: Database, image: Name) throws -> [TagRecord] {
        try Row.fetchAll(db, sql: "SELECT * FROM tags WHERE image = ? ORDER BY name", arguments: [image.rawValue]).map(SQLiteRows.tag)
    }

    /// Creates or moves a tag, stamped with `revision`.
    static func writeTag(_ db: Database, image: Name, name: Name, version: Int64, revision: Revision) throws -> TagRecord {
        try db.execute(
            sql: """
                INSERT INTO tags (image, name, version, revision) VALUES (?, ?, ?, ?)
                ON CONFLICT (image, name) DO UPDATE SET version = excluded.version, revision = excluded.revision
                """,
            arguments: [image.rawValue, name.rawValue, version, revision.rawValue])
        return TagRecord(image: image, name: name, version: version, revision: revision)
    }
}

extension Revisioned {
    func map<T>(_ transform: (Value) throws -> T) rethrows -> Revisioned<T> {
        Revisioned<T>(try transform(value), at: revision)
    }
}
