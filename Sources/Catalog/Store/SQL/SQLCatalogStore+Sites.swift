import Foundation
import ICBDCore

extension SQLCatalogStore {
    public func listSites() async throws -> Revisioned<[SiteRecord]> {
        try await readRevisioned { db in try await Self.fetchSites(db) }
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
            let (cidrs, links) = (try CatalogRows.jsonText(site.cidrs), try CatalogRows.jsonText(site.links))
            try await db.execute(
                """
                INSERT INTO sites (name, description, cidrs, links, revision)
                VALUES (\(site.name), \(site.description), \(cidrs), \(links), \(site.revision))
                ON CONFLICT (name) DO UPDATE SET description = excluded.description, cidrs = excluded.cidrs,
                  links = excluded.links, revision = excluded.revision
                """)
            changes.put(.site(site))
            return (site, created: current == nil)
        }
    }

    public func deleteSite(_ name: Name, expected: ExpectedRevision) async throws -> Revision {
        try await commit { db, changes in
            let sites = try await Self.fetchSites(db)
            guard let site = sites.first(where: { $0.name == name }) else { throw CatalogStoreError.notFound("site '\(name)' does not exist") }
            try CatalogRules.check(expected, current: site.revision, "site '\(name)'")
            let nodes = try await db.fetchAll("SELECT name FROM nodes WHERE site = \(name) ORDER BY name") { try $0.text(required: "name") }
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
            try await db.execute("DELETE FROM sites WHERE name = \(name)")
            changes.delete(.site(site))
        }.revision
    }

    static func fetchSites(_ db: Transaction) async throws -> [SiteRecord] {
        try await db.fetchAll("SELECT * FROM sites ORDER BY name", CatalogRows.site)
    }
}
