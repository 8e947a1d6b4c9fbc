import Foundation
import ICBDCore

extension PostgresCatalogStore {
    public func listPlacements(image: Name?, node: Name?) async throws -> Revisioned<[PlacementRecord]> {
        try await read { db in
            try await db.fetchAll(
                sql:
                    "SELECT * FROM placements WHERE (?1::text IS NULL OR image = ?1::text) AND (?2::text IS NULL OR node = ?2::text) ORDER BY image, version, node",
                arguments: [image?.rawValue, node?.rawValue]
            ).map(PostgresRows.placement)
        }
    }

    public func setPlacement(
        _ update: PlacementUpdate, expected: ExpectedRevision, at now: Date
    ) async throws
        -> Revisioned<PlacementRecord>
    {
        try await commit { db, changes in
            _ = try await Self.requireVersion(db, image: update.image, number: update.version)
            guard let node = try await Self.fetchNode(db, update.node) else {
                throw CatalogStoreError.notFound("node '\(update.node)' is not registered")
            }
            guard node.role == .replicator else {
                throw CatalogStoreError.precondition(
                    "node '\(update.node)' is a \(node.role) node; placements are on repository (replicator) nodes")
            }
            let current = try await db.fetchOne(
                sql: "SELECT * FROM placements WHERE image = ? AND version = ? AND node = ?",
                arguments: [update.image.rawValue, update.version, update.node.rawValue]
            ).map(PostgresRows.placement)
            try CatalogRules.check(
                expected, current: current?.revision,
                "the placement of version \(update.version) of image '\(update.image)' on '\(update.node)'")
            if let current, current.state == update.state, current.detail == update.detail { return current }
            let placement = PlacementRecord(
                image: update.image, version: update.version, node: update.node, state: update.state, detail: update.detail,
                updated: now, revision: changes.revision)
            try await db.execute(
                sql: """
                    INSERT INTO placements (image, version, node, state, detail, updated_ms, revision) VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (image, version, node) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                      updated_ms = excluded.updated_ms, revision = excluded.revision
                    """,
                arguments: [
                    placement.image.rawValue, placement.version, placement.node.rawValue, placement.state.rawValue, placement.detail,
                    now.milliseconds, placement.revision.rawValue,
                ])
            changes.put(.placement(placement))
            return placement
        }
    }

    public func listPolicies() async throws -> Revisioned<[PolicyRecord]> {
        try await read { db in try await Self.fetchPolicies(db) }
    }

    public func putPolicy(_ spec: PolicySpec, expected: ExpectedRevision) async throws -> Revisioned<PolicyRecord> {
        try await commit { db, changes in
            _ = try await Self.requireImage(db, spec.image)
            for site in spec.sites where !(try await Self.siteExists(db, site)) {
                throw CatalogStoreError.notFound("the policy of image '\(spec.image)' names unknown site '\(site)'")
            }
            let current = try await Self.fetchPolicy(db, image: spec.image)
            try CatalogRules.check(expected, current: current?.revision, "the policy of image '\(spec.image)'")
            let policy = PolicyRecord(
                image: spec.image, sites: Array(Set(spec.sites)).sorted(), keepVersions: spec.keepVersions, revision: changes.revision)
            if let current, current.sites == policy.sites, current.keepVersions == policy.keepVersions { return current }
            try await db.execute(
                sql: """
                    INSERT INTO policies (image, sites, keep_versions, revision) VALUES (?, ?, ?, ?)
                    ON CONFLICT (image) DO UPDATE SET sites = excluded.sites, keep_versions = excluded.keep_versions,
                      revision = excluded.revision
                    """,
                arguments: [policy.image.rawValue, try PostgresRows.jsonText(policy.sites), policy.keepVersions, policy.revision.rawValue])
            changes.put(.policy(policy))
            return policy
        }
    }

    public func deletePolicy(image: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            guard let policy = try await Self.fetchPolicy(db, image: image) else {
                _ = try await Self.requireImage(db, image)
                throw CatalogStoreError.notFound("image '\(image)' has no policy (it goes to every site)")
            }
            try CatalogRules.check(expected, current: policy.revision, "the policy of image '\(image)'")
            try await db.execute(sql: "DELETE FROM policies WHERE image = ?", arguments: [image.rawValue])
            changes.delete(.policy(policy))
        }.revision
    }

    static func fetchPolicy(_ db: PGTransaction, image: Name) async throws -> PolicyRecord? {
        try await db.fetchOne(sql: "SELECT * FROM policies WHERE image = ?", arguments: [image.rawValue]).map(PostgresRows.policy)
    }

    static func fetchPolicies(_ db: PGTransaction) async throws -> [PolicyRecord] {
        try await db.fetchAll(sql: "SELECT * FROM policies ORDER BY image").map(PostgresRows.policy)
    }
}
