import Foundation
import ICBDCore

extension PostgresCatalogStore {
    public func listSites() async throws -> Revisioned<[SiteRecord]> {
        try await read { db in try await Self.fetchSites(db) }
    }

    public func putSite(_ spec: SiteSpec, expected: ExpectedRevision) async throws -> Revisioned<(SiteRecord, created: Bool)> {
        try await commit { db, changes in
            let sites = try await Self.fetchSites(db)
            let current = sites.first { $0.name == spec.name }
            try CatalogRules.check(expected, current: current?.revision, "site '\(spec.name)'")
            try CatalogRules.checkSite(spec, others: sites)
            let site = SiteRecord(
                name: spec.name, description: spec.description, cidrs: spec.cidrs.sorted(), links: spec.links.sorted { $0.site < $1.site },
                revision: changes.revision)
            if let current, current.description == site.description, current.cidrs == site.cidrs, current.links == site.links {
                return (current, created: false)
            }
            try await db.execute(
                sql: """
                    INSERT INTO sites (name, description, cidrs, links, revision) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET description = excluded.description, cidrs = excluded.cidrs,
                      links = excluded.links, revision = excluded.revision
                    """,
                arguments: [
                    site.name.rawValue, site.description, try PostgresRows.jsonText(site.cidrs), try PostgresRows.jsonText(site.links),
                    site.revision.rawValue,
                ])
            changes.put(.site(site))
            return (site, created: current == nil)
        }
    }

    public func deleteSite(_ name: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            let sites = try await Self.fetchSites(db)
            guard let site = sites.first(where: { $0.name == name }) else {
                throw CatalogStoreError.notFound("site '\(name)' does not exist")
            }
            try CatalogRules.check(expected, current: site.revision, "site '\(name)'")
            let nodes = try await db.fetchAll(sql: "SELECT name FROM nodes WHERE site = ? ORDER BY name", arguments: [name.rawValue])
                .map { try $0.scalar(String.self) }
            guard nodes.isEmpty else {
                throw CatalogStoreError.precondition(
                    "site '\(name)' still has nodes \(nodes.prefix(5).joined(separator: ", ")); delete them first")
            }
            if let linking = sites.first(where: { $0.links.contains { $0.site == name } }) {
                throw CatalogStoreError.precondition("site '\(linking.name)' links to site '\(name)'; remove that link first")
            }
            if let policy = try await Self.fetchPolicies(db).first(where: { $0.sites.contains(name) }) {
                throw CatalogStoreError.precondition("the policy of image '\(policy.image)' names site '\(name)'; change it first")
            }
            try await db.execute(sql: "DELETE FROM sites WHERE name = ?", arguments: [name.rawValue])
            changes.delete(.site(site))
        }.revision
    }

    static func fetchSites(_ db: PGTransaction) async throws -> [SiteRecord] {
        try await db.fetchAll(sql: "SELECT * FROM sites ORDER BY name").map(PostgresRows.site)
    }
}
