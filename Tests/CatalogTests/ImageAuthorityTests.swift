import Catalog
import CatalogClient
import Foundation
import GRDB
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import SwiftProtobuf
import Testing

/// Issue 22, item 3: only replicators of an image's home site (or an admin) publish it.
@Suite("Catalog: authority per image (home sites)")
struct ImageAuthorityTests {
    let disk = TestFile(path: "disk.raw", size: 3 << 20)

    func createVersion(_ client: RPCClient, image: String) async throws -> Int64 {
        var request = Icbd_Catalog_V1_CreateVersionRequest()
        request.image = image
        request.btrfsUuid = UUID().uuidString.lowercased()
        request.files = [disk.spec]
        return try await client.unary(CatalogMethods.createVersion, request).version.number
    }

    func complete(_ client: RPCClient, image: String, number: Int64) async throws -> Icbd_Catalog_V1_CompleteVersionResponse {
        try await client.unary(CatalogMethods.completeVersion, .with { $0.image = image; $0.number = number })
    }

    @Test(arguments: StoreKind.available)
    func aReplicatorOfAnotherSiteCannotCreateFillCompleteOrAbandonAVersion(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            // repo-hq publishes win11 first: the image belongs to hq. It leaves version 2 publishing.
            let pending = try await harness.withReplicator("repo-hq", site: "hq") { home in
                try await publish(home, image: "win11")
                return try await createVersion(home, image: "win11")
            }
            let before = try await harness.withClient { admin in try await getImage(admin, "win11") }
            #expect(before.image.homeSite == "hq")
            let belongs = "image 'win11' belongs to site 'hq'; replicator 'repo-branch' of site 'branch'"

            try await harness.withReplicator("repo-branch", site: "branch") { other in
                await expectRPCError(.permissionDenied, mentioning: belongs) { _ = try await createVersion(other, image: "win11") }
                await expectRPCError(.permissionDenied, mentioning: belongs) {
                    try await uploadManifest(other, image: "win11", version: pending, file: disk)
                }
                await expectRPCError(.permissionDenied, mentioning: belongs) {
                    _ = try await other.unary(CatalogMethods.abandonVersion, .with { $0.image = "win11"; $0.number = pending })
                }
                let untouched = try await getImage(other, "win11")
                #expect(untouched.image == before.image && untouched.versions == before.versions && untouched.tags == before.tags)
                // Even with every manifest in place, completing (which moves latest) is refused.
                try await harness.withClient(.replicator, "repo-hq") { home in
                    _ = try await uploadManifest(home, image: "win11", version: pending, file: disk)
                }
                let filled = try await harness.withClient { admin in try await getImage(admin, "win11") }
                await expectRPCError(.permissionDenied, mentioning: belongs) { _ = try await complete(other, image: "win11", number: pending) }
                // A completion retried on a ready version is refused too, and moving tags stays an admin's.
                await expectRPCError(.permissionDenied, mentioning: belongs) { _ = try await complete(other, image: "win11", number: 1) }
                await expectRPCError(.permissionDenied) { _ = try await moveTag(other, image: "win11", tag: "latest", version: 1) }
                // Nothing changed: same versions, latest still at 1, no revision spent.
                let after = try await harness.withClient { admin in try await getImage(admin, "win11") }
                #expect(after == filled)
                #expect(after.tags.map(\.version) == [1])
                #expect(after.versions.map(\.state) == [.ready, .publishing])
            }

            // The home site's replicator and an admin still can.
            try await harness.withReplicator("repo-hq-2", site: "hq") { sibling in
                let completed = try await complete(sibling, image: "win11", number: pending)
                #expect(completed.latest.version == pending)
            }
            try await harness.withClient { admin in
                let version = try await publish(admin, image: "win11")
                #expect(version.number == 3 && version.publishedBy == "admin")
                #expect(try await getImage(admin, "win11").tags.map(\.version) == [3])
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func anAdminNamesTheHomeSiteOfTheImagesItCreates(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                _ = try await addSite(admin, "branch")
                await expectRPCError(.notFound, mentioning: "site 'nowhere' does not exist") {
                    _ = try await admin.unary(CatalogMethods.createImage, .with { $0.name = "ubuntu"; $0.homeSite = "nowhere" })
                }
                let created = try await admin.unary(CatalogMethods.createImage, .with { $0.name = "ubuntu"; $0.homeSite = "branch" })
                #expect(created.image.homeSite == "branch")
            }
            try await harness.withReplicator("repo-hq", site: "hq") { replicator in
                await expectRPCError(.permissionDenied, mentioning: "image 'ubuntu' belongs to site 'branch'") {
                    _ = try await createVersion(replicator, image: "ubuntu")
                }
                await expectRPCError(.permissionDenied, mentioning: "may not name a home site") {
                    _ = try await replicator.unary(CatalogMethods.createImage, .with { $0.name = "debian"; $0.homeSite = "hq" })
                }
            }
            try await harness.withReplicator("repo-branch", site: "branch") { replicator in
                let version = try await publish(replicator, image: "ubuntu")
                #expect(version.state == .ready)
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func aReplicatorPublishesOnlyOnceRegisteredAndCannotMoveItselfToAnotherSite(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withReplicator("repo-hq", site: "hq") { home in _ = try await publish(home, image: "win11") }
            try await harness.withClient(.replicator, "stranger") { stranger in
                await expectRPCError(.permissionDenied, mentioning: "replicator 'stranger' is not registered") {
                    _ = try await stranger.unary(CatalogMethods.createImage, .with { $0.name = "debian" })
                }
                await expectRPCError(.permissionDenied, mentioning: "not registered") { _ = try await createVersion(stranger, image: "win11") }
            }
            try await harness.withReplicator("repo-branch", site: "branch") { other in
                // Re-registering at hq would make it one of win11's publishers: refused.
                await expectRPCError(.permissionDenied, mentioning: "node 'repo-branch' is registered at site 'branch'; only an admin moves it") {
                    _ = try await registerNode(other, "repo-branch", role: .replicator, site: "hq")
                }
                await expectRPCError(.permissionDenied, mentioning: "belongs to site 'hq'") { _ = try await createVersion(other, image: "win11") }
            }
            try await harness.withClient { admin in
                let nodes = try await admin.allPages(CatalogMethods.listNodes, .init()).nodes
                #expect(nodes.first { $0.name == "repo-branch" }?.site == "branch")
                #expect(try await getImage(admin, "win11").versions.count == 1)
            }
        }
    }

    /// A database from before home sites: the migration gives each image the site of its
    /// oldest version's publisher where that publisher is a registered replicator.
    @Test(arguments: StoreKind.available)
    func theMigrationGivesExistingImagesTheSiteOfTheirFirstPublisher(_ kind: StoreKind) async throws {
        let fixture = try await StoreFixture(kind)
        let harness = try await CatalogHarness(on: fixture)
        try await harness.run {
            try await harness.withReplicator("repo-hq", site: "hq") { home in _ = try await publish(home, image: "win11") }
            try await harness.withClient { admin in _ = try await publish(admin, image: "by-admin") }
        }
        try await Self.forgetHomeSites(fixture)

        let reopened = try await CatalogHarness(on: fixture, authority: harness.authority)
        try await reopened.run {
            try await reopened.withClient { admin in
                let (first, other) = (try await getImage(admin, "win11"), try await getImage(admin, "by-admin"))
                #expect(first.image.homeSite == "hq")
                #expect(other.image.homeSite.isEmpty)
            }
            // The image without a home belongs to the first replicator that creates a version.
            try await reopened.withReplicator("repo-branch", site: "branch") { replicator in
                try await publish(replicator, image: "by-admin")
                await expectRPCError(.permissionDenied, mentioning: "belongs to site 'hq'") { _ = try await createVersion(replicator, image: "win11") }
            }
            let claimed = try await reopened.withClient { admin in try await getImage(admin, "by-admin") }
            #expect(claimed.image.homeSite == "branch")
        }
    }

    /// Turns the fixture's database back into one from before migration `v3-image-homes`.
    static func forgetHomeSites(_ fixture: StoreFixture) async throws {
        switch fixture.kind {
        case .sqlite:
            let queue = try DatabaseQueue(path: fixture.database)
            try await queue.write { db in
                try db.execute(sql: "ALTER TABLE images DROP COLUMN home_site")
                try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier = 'v3-image-homes'")
            }
            try queue.close()
        case .postgres:
            let (server, database) = try fixture.postgresServer()
            _ = try await server.psql("ALTER TABLE images DROP COLUMN home_site", database: database)
            _ = try await server.psql("DELETE FROM icbd_migrations WHERE id = 'v3-image-homes'", database: database)
        }
    }
}
