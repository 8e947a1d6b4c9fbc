import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

@Suite("icbd replication status against a real catalog process")
struct ReplicationCommandLineTests {
    @Test func statusShowsEachSitesPlacementsWithProgressAndReasons() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await deployment.start()
        let address = try await catalog.listeningAddress()
        #expect(try await deployment.cli(["site", "add", "hq"], address).status == 0)
        #expect(try await deployment.cli(["site", "add", "branch", "--link", "hq=10MB"], address).status == 0)
        try await deployment.withClient(address, as: "repo1") { replicator in
            _ = try await replicator.unary(
                CatalogMethods.registerNode, .with { $0.name = "repo1"; $0.role = .replicator; $0.site = "hq"; $0.rpcAddress = "127.0.0.1:1" })
            try await publishVersion(replicator, image: "win11")
            try await publishVersion(replicator, image: "win11")
            for version in [Int64(1), 2] {
                _ = try await replicator.unary(
                    CatalogMethods.setPlacement, .with { $0.image = "win11"; $0.version = version; $0.node = "repo1"; $0.state = .present })
            }
        }
        try await deployment.withClient(address) { admin in
            _ = try await admin.unary(
                CatalogMethods.registerNode, .with { $0.name = "repo-branch"; $0.role = .replicator; $0.site = "branch"; $0.rpcAddress = "127.0.0.1:2" })
            _ = try await admin.unary(
                CatalogMethods.setPlacement,
                .with {
                    $0.image = "win11"
                    $0.version = 1
                    $0.node = "repo-branch"
                    $0.state = .failed
                    $0.detail = "gave up after 8 attempts: the repository's filesystem is full"
                })
            _ = try await admin.unary(
                CatalogMethods.setPlacement,
                .with {
                    $0.image = "win11"
                    $0.version = 2
                    $0.node = "repo-branch"
                    $0.state = .receiving
                    $0.detail = "receiving from repo1: 1048576 of ~3145728 bytes at 524288 B/s, ETA 4s"
                })
        }
        let table = try await deployment.cli(["replication", "status"], address)
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("SITE") == true && lines.first?.contains("DETAIL") == true)
        #expect(lines.contains { $0.hasPrefix("branch") && $0.contains("receiving") && $0.contains("ETA 4s") }, "\(table.stdout)")
        #expect(lines.contains { $0.hasPrefix("branch") && $0.contains("failed") && $0.contains("filesystem is full") }, "\(table.stdout)")
        #expect(lines.filter { $0.hasPrefix("hq") && $0.contains("present") }.count == 2, "\(table.stdout)")

        let json = try await deployment.cli(["replication", "status", "--image", "win11", "--json"], address)
        #expect(json.status == 0, "\(json.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let rows = try #require(object["placements"] as? [[String: Any]])
        #expect(rows.count == 4)
        #expect(rows.contains { $0["site"] as? String == "branch" && $0["version"] as? Int == 2 && $0["state"] as? String == "receiving" })

        let bad = try await deployment.cli(["replication", "status", "--image", "Not A Name"], address)
        #expect(bad.status == 2)
        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }
}
