import Foundation
import ICBDCore

extension PostgresCatalogStore {
    public func listAssignments() async throws -> Revisioned<[AssignmentRecord]> {
        try await read { db in
            try await db.fetchAll(sql: "SELECT * FROM assignments ORDER BY mac").map(PostgresRows.assignment)
        }
    }

    public func assignment(_ mac: MACAddress) async throws -> Revisioned<(AssignmentRecord, VersionRecord)> {
        try await read { db in
            guard let assignment = try await Self.fetchAssignment(db, mac) else {
                throw CatalogStoreError.notFound("no image is assigned to workstation \(mac)")
            }
            return (assignment, try await Self.resolve(db, image: assignment.image, reference: assignment.version))
        }
    }

    public func assign(
        _ mac: MACAddress, to target: ImageReference, expected: ExpectedRevision
    ) async throws
        -> Revisioned<AssignmentRecord>
    {
        try await commit { db, changes in
            let version = try await Self.resolve(db, image: target.image, reference: target.version)
            try CatalogRules.checkAssignable(version, reference: target.version)
            let current = try await Self.fetchAssignment(db, mac)
            try CatalogRules.check(expected, current: current?.revision, "the assignment of workstation \(mac)")
            if let current, current.image == target.image, current.version == target.version { return current }
            let assignment = AssignmentRecord(mac: mac, image: target.image, version: target.version, revision: changes.revision)
            try await db.execute(
                sql: """
                    INSERT INTO assignments (mac, image, ref, revision) VALUES (?, ?, ?, ?)
                    ON CONFLICT (mac) DO UPDATE SET image = excluded.image, ref = excluded.ref, revision = excluded.revision
                    """,
                arguments: [mac.description, target.image.rawValue, target.version.description, changes.revision.rawValue])
            changes.put(.assignment(assignment))
            return assignment
        }
    }

    public func unassign(_ mac: MACAddress, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            guard let current = try await Self.fetchAssignment(db, mac) else {
                throw CatalogStoreError.notFound("no image is assigned to workstation \(mac)")
            }
            try CatalogRules.check(expected, current: current.revision, "the assignment of workstation \(mac)")
            try await db.execute(sql: "DELETE FROM assignments WHERE mac = ?", arguments: [mac.description])
            changes.delete(.assignment(current))
        }.revision
    }

    static func fetchAssignment(_ db: PGTransaction, _ mac: MACAddress) async throws -> AssignmentRecord? {
        try await db.fetchOne(sql: "SELECT * FROM assignments WHERE mac = ?", arguments: [mac.description]).map(PostgresRows.assignment)
    }

    static func fetchAssignments(_ db: PGTransaction, image: Name) async throws -> [AssignmentRecord] {
        try await db.fetchAll(sql: "SELECT * FROM assignments WHERE image = ? ORDER BY mac", arguments: [image.rawValue])
            .map(PostgresRows.assignment)
    }
}
