import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func listPlacements(image: Name?, node: Name?) async throws -> Revisioned<[PlacementRecord]> {
        try await readRevisioned { db in
            // CAST: PostgreSQL must know the type of a NULL parameter.
            try await db.fetchAll(
                """
                SELECT * FROM placements WHERE (CAST(\(image) AS TEXT) IS NULL OR image = \(image)) AND (CAST(\(node) AS TEXT) IS NULL OR node = \(node))
                ORDER BY image, version, node
                """, CatalogRows.placement)
        }
    }

    public func setPlacement(_ update: PlacementUpdate, expected: ExpectedRevision, at now: Date) async throws
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
                "SELECT * FROM placements WHERE image = \(update.image) AND version = \(update.version) AND node = \(update.node)",
                CatalogRows.placement)
            try CatalogRules.check(
                expected, current: current?.revision, "the placement of version \(update.version) of image '\(update.image)' on '\(update.node)'")
            if let current, current.state == update.state, current.detail == update.detail { return current }
            let placement = PlacementRecord(
                image: update.image, version: update.version, node: update.node, state: update.state, detail: update.detail,
                updated: now, revision: changes.revision)
            try await db.execute(
                """
                INSERT INTO placements (image, version, node, state, detail, updated_ms, revision)
                VALUES (\(placement.image), \(placement.version), \(placement.node), \(placement.state), \(placement.detail), \(now), \(placement.revision))
                ON CONFLICT (image, version, node) DO UPDATE SET state = excluded.state, detail = excluded.detail,
                  updated_ms = excluded.updated_ms, revision = excluded.revision
                """)
            changes.put(.placement(placement))
            return placement
        }
    }

    public func listPolicies() async throws -> Revisioned<[PolicyRecord]> {
        try await readRevisioned { db in try await Self.fetchPolicies(db) }
    }

    public func putPolicy(_ spec: PolicySpec, expected: ExpectedRevision) async throws -> Revisioned<PolicyRecord> {
        try await commit { db, changes in
            _ = try await Self.requireImage(db, spec.image)
            for site in spec.sites {
                guard try await Self.siteExists(db, site) else {
                    throw CatalogStoreError.notFound("the policy of image '\(spec.image)' names unknown site '\(site)'")
                }
            }
            let current = try await Self.fetchPolicy(db, image: spec.image)
            try CatalogRules.check(expected, current: current?.revision, "the policy of image '\(spec.image)'")
            let policy = PolicyRecord(
                image: spec.image, sites: Array(Set(spec.sites)).sorted(), keepVersions: spec.keepVersions, revision: changes.revision)
            if let current, current.sites == policy.sites, current.keepVersions == policy.keepVersions { return current }
            let sites = try CatalogRows.jsonText(policy.sites)
            try await db.execute(
                """
                INSERT INTO policies (image, sites, keep_versions, revision)
                VALUES (\(policy.image), \(sites), \(policy.keepVersions), \(policy.revision))
                ON CONFLICT (image) DO UPDATE SET sites = excluded.sites, keep_versions = excluded.keep_versions,
                  revision = excluded.revision
                """)
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
            try await db.execute("DELETE FROM policies WHERE image = \(image)")
            changes.delete(.policy(policy))
        }.revision
    }

    static func fetchPolicy(_ db: Transaction, image: Name) async throws -> PolicyRecord? {
        try await db.fetchOne("SELECT * FROM policies WHERE image = \(image)", CatalogRows.policy)
    }

    static func fetchPolicies(_ db: Transaction) async throws -> [PolicyRecord] {
        try await db.fetchAll("SELECT * FROM policies ORDER BY image", CatalogRows.policy)
    }
}
