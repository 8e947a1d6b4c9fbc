import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func listAssignments() async throws -> Revisioned<[AssignmentRecord]> {
        try await readRevisioned { db in
            try await db.fetchAll("SELECT * FROM assignments ORDER BY mac", CatalogRows.assignment)
        }
    }

    public func assignment(_ mac: MACAddress) async throws -> Revisioned<(AssignmentRecord, VersionRecord)> {
        try await readRevisioned { db in
            guard let assignment = try await Self.fetchAssignment(db, mac) else {
                throw CatalogStoreError.notFound("no image is assigned to workstation \(mac)")
            }
            return (assignment, try await Self.resolve(db, image: assignment.image, reference: assignment.version))
        }
    }

    public func assign(_ mac: MACAddress, to target: ImageReference, expected: ExpectedRevision) async throws
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
                """
                INSERT INTO assignments (mac, image, ref, revision)
                VALUES (\(mac.description), \(target.image), \(target.version.description), \(changes.revision))
                ON CONFLICT (mac) DO UPDATE SET image = excluded.image, ref = excluded.ref, revision = excluded.revision
                """)
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
            try await db.execute("DELETE FROM assignments WHERE mac = \(mac.description)")
            changes.delete(.assignment(current))
        }.revision
    }

    static func fetchAssignment(_ db: Transaction, _ mac: MACAddress) async throws -> AssignmentRecord? {
        try await db.fetchOne("SELECT * FROM assignments WHERE mac = \(mac.description)", CatalogRows.assignment)
    }

    static func fetchAssignments(_ db: Transaction, image: Name) async throws -> [AssignmentRecord] {
        try await db.fetchAll("SELECT * FROM assignments WHERE image = \(image) ORDER BY mac", CatalogRows.assignment)
    }
}
