import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

@Suite("Catalog client commands against a real catalog process")
struct CatalogCommandLineTests {
    func json(_ result: CommandRunner.Result) throws -> [String: Any] {
        #expect(result.status == 0, "\(result.stderr)")
        return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }

    @Test func operatorsManageSitesImagesTagsAndAssignments() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await deployment.start()
        let address = try await catalog.listeningAddress()

        // Sites: added, refused when they overlap, listed.
        let added = try await deployment.cli(["site", "add", "hq", "--cidr", "10.0.0.0/16", "--cidr", "2001:db8::/48"], address)
        #expect(added.status == 0, "\(added.stderr)")
        #expect(added.stdout.contains("added site hq"))
        let overlap = try await deployment.cli(["site", "add", "branch", "--cidr", "10.0.128.0/17"], address)
        #expect(overlap.status == 1)
        #expect(overlap.stderr.contains("10.0.128.0/17 overlaps 10.0.0.0/16 of site 'hq'"), "\(overlap.stderr)")
        let badRange = try await deployment.cli(["site", "add", "branch", "--cidr", "10.1.2.3/16"], address)
        #expect(badRange.status == 2)
        #expect(badRange.stderr.contains("did you mean 10.1.0.0/16"))
        let badCompression = try await deployment.cli(["site", "add", "branch", "--link", "hq=100MB,compression=maybe"], address)
        #expect(badCompression.status == 2)
        #expect(badCompression.stderr.contains("compression=auto, compression=on or compression=off"), "\(badCompression.stderr)")
        let linked = try await deployment.cli(
            ["site", "add", "branch", "--cidr", "10.1.0.0/16", "--link", "hq=100MB,compression=off"], address)
        #expect(linked.status == 0, "\(linked.stderr)")
        let sites = try json(try await deployment.cli(["site", "list", "--json"], address))
        let siteNames = (sites["sites"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
        #expect(siteNames == ["branch", "hq"])
        // The link keeps its rate and forced compression through the catalog.
        let branchLinks = (sites["sites"] as? [[String: Any]])?.first?["links"] as? [[String: Any]]
        #expect(branchLinks?.first?["compression"] as? String == "off", "\(sites)")
        #expect((branchLinks?.first?["rate_bytes_per_second"] as? Int ?? 0) > 0, "\(sites)")
        #expect(try await deployment.cli(["site", "list"], address).stdout.contains(",compression=off"))

        // Images: a replicator publishes two versions; the operator lists, shows, tags, retires.
        try await deployment.withClient(address, as: "repo1") { replicator in
            _ = try await replicator.unary(
                CatalogMethods.registerNode, .with { $0.name = "repo1"; $0.role = .replicator; $0.site = "hq"; $0.rpcAddress = "127.0.0.1:1" })
            try await publishVersion(replicator, image: "win11")
            try await publishVersion(replicator, image: "win11", size: 5 << 20)
        }
        let images = try json(try await deployment.cli(["image", "list", "--json"], address))
        let first = try #require((images["images"] as? [[String: Any]])?.first)
        #expect((first["image"] as? [String: Any])?["name"] as? String == "win11")
        // The image belongs to the site of the replicator that published it first.
        #expect((first["image"] as? [String: Any])?["home_site"] as? String == "hq", "\(images)")
        #expect(first["newest_version"] as? Int == 2)
        let table = try await deployment.cli(["image", "list"], address)
        #expect(table.stdout.contains("win11") && table.stdout.contains("latest=2"), "\(table.stdout)")
        let show = try await deployment.cli(["image", "show", "win11"], address)
        #expect(show.status == 0)
        #expect(show.stdout.contains("VERSION") && show.stdout.contains("disk.raw") && show.stdout.contains("repo1"), "\(show.stdout)")
        #expect(show.stdout.contains("home site hq"), "\(show.stdout)")

        #expect(try await deployment.cli(["image", "tag", "win11", "stable", "1"], address).status == 0)
        let pinned = try await deployment.cli(["image", "retire", "win11", "1"], address)
        #expect(pinned.status == 1)
        #expect(pinned.stderr.contains("FAILED_PRECONDITION") && pinned.stderr.contains("tag 'stable'"), "\(pinned.stderr)")
        #expect(try await deployment.cli(["image", "tag", "win11", "stable", "2"], address).status == 0)
        #expect(try await deployment.cli(["image", "retire", "win11", "1"], address).status == 0)
        let retiredTag = try await deployment.cli(["image", "tag", "win11", "old", "1"], address)
        #expect(retiredTag.status == 1)
        #expect(retiredTag.stderr.contains("retired"))
        let missing = try await deployment.cli(["image", "show", "nope"], address)
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("NOT_FOUND: image 'nope' does not exist"))

        // Assignments: any spelling of the MAC, resolved through the tag.
        let assigned = try json(try await deployment.cli(["assign", "52-54-00-12-34-56", "win11:stable", "--json"], address))
        #expect(assigned["version"] as? Int == 2)
        #expect((assigned["assignment"] as? [String: Any])?["mac"] as? String == "52:54:00:12:34:56")
        let badMAC = try await deployment.cli(["assign", "52:54:00", "win11"], address)
        #expect(badMAC.status == 2)

        // Nodes appear once registered.
        try await deployment.withClient(address, as: "gw1") { gateway in
            var request = Icbd_Catalog_V1_RegisterNodeRequest()
            request.name = "gw1"
            request.role = .gateway
            request.site = "hq"
            request.httpAddress = "127.0.0.1:8080"
            _ = try await gateway.unary(CatalogMethods.registerNode, request)
        }
        // A cache node's heartbeat leaves its usage on the node.
        try await deployment.withClient(address, as: "cache1") { cache in
            var request = Icbd_Catalog_V1_RegisterNodeRequest()
            request.name = "cache1"
            request.role = .cache
            request.site = "hq"
            request.capacityBytes = 8 << 30
            _ = try await cache.unary(CatalogMethods.registerNode, request)
            var beat = Icbd_Catalog_V1_HeartbeatRequest()
            beat.name = "cache1"
            beat.usedBytes = 3 << 30
            beat.hitRatio = 0.875
            _ = try await cache.unary(CatalogMethods.heartbeat, beat)
        }
        let nodes = try json(try await deployment.cli(["node", "list", "--json"], address))
        let listed = try #require(nodes["nodes"] as? [[String: Any]])
        let node = try #require(listed.first { $0["name"] as? String == "gw1" })
        #expect(node["state"] as? String == "up")
        #expect(node["cache_usage"] == nil)
        let cacheNode = try #require(listed.first { $0["name"] as? String == "cache1" })
        let usage = try #require(cacheNode["cache_usage"] as? [String: Any])
        #expect(usage["hit_ratio"] as? Double == 0.875)
        #expect((usage["used_bytes"] as? NSNumber)?.int64Value == 3 << 30)
        let nodeTable = try await deployment.cli(["node", "list", "--site", "hq"], address)
        #expect(nodeTable.stdout.contains("gw1") && nodeTable.stdout.contains("gateway"), "\(nodeTable.stdout)")
        #expect(nodeTable.stdout.contains("HIT RATIO") && nodeTable.stdout.contains("0.875"), "\(nodeTable.stdout)")

        // Another role reads but may not administer.
        #expect(try await deployment.cli(["image", "list"], address, extra: ["--name", "repo1"]).status == 0)
        let denied = try await deployment.cli(["image", "tag", "win11", "stable", "2"], address, extra: ["--name", "repo1"])
        #expect(denied.status == 1)
        #expect(denied.stderr.contains("PERMISSION_DENIED"), "\(denied.stderr)")

        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }

    @Test func aCatalogRefusesADatabaseFromANewerSchema() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await deployment.start()
        _ = try await catalog.listeningAddress()
        #expect(try await catalog.stop(with: SIGTERM) == 0)
        let sqlite = try await CommandRunner.runTool(
            "/usr/bin/sqlite3", [deployment.database, "INSERT INTO grdb_migrations (identifier) VALUES ('v9-newer');"])
        #expect(sqlite.status == 0, "\(sqlite.stderr)")

        let refused = try await CommandRunner.run(
            ["catalog", "--listen", "127.0.0.1:0", "--db", deployment.database, "--tls-dir", deployment.pki, "--name", "cat1"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("newer icbd") && refused.stderr.contains("v9-newer"), "\(refused.stderr)")
    }
}
