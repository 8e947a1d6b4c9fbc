import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

/// `icbd rollout` and `icbd boot list` against a real catalog process (docs/catalog.md
/// "Rollouts"): what an operator types and reads.
@Suite("icbd rollout and icbd boot list")
struct RolloutCommandTests {
    /// The JSON of a rollout, as docs/catalog.md describes it.
    struct Rollout: Decodable {
        var image: Name
        var tag: Name
        var id: Int64
        var fromVersion: Int64
        var toVersion: Int64
        var site: Name?
        var steps: [Int]
        var step: Int
        var state: String
        var criteria: Criteria
        var detail: String
        var started: Date
        var updated: Date
        var progress: Tally
        var revision: Int64

        struct Criteria: Decodable {
            var minimumBoots: Int64
            var maximumFailureRate: Double
            var maximumSlowdown: Double
        }

        struct Tally: Decodable {
            var boots: Int64
            var failed: Int64
            var up: Int64
            var upMilliseconds: Int64
        }
    }

    struct Rollouts: Decodable {
        var revision: Int64
        var rollouts: [Rollout]
    }

    struct Boots: Decodable {
        var revision: Int64
        var boots: [Boot]

        struct Boot: Decodable {
            var mac: MACAddress
            var site: Name
            var gateway: Name
            var image: Name
            var version: Int64
            var outcome: String
            var failure: String?
            var started: Date
            var upMilliseconds: Int64?
            var bytesRead: Int64
        }
    }

    @Test func anOperatorStartsFollowsPausesAndAbortsARollout() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await ServiceProcess(
            ["catalog", "--listen", "127.0.0.1:0", "--db", deployment.database, "--tls-dir", deployment.pki, "--name", "cat1",
             "--metrics", "127.0.0.1:0"],
            in: deployment.directory)
        let address = try await catalog.listeningAddress()
        func run<Shape: Decodable>(_ shape: Shape.Type, _ arguments: [String]) async throws -> Shape {
            try JSONShape.decode(shape, try await deployment.cli(arguments + ["--json"], address))
        }
        _ = try await deployment.cli(["site", "add", "hq", "--cidr", "10.0.0.0/16"], address)
        try await deployment.withClient(address, as: "repo1") { replicator in
            _ = try await replicator.unary(CatalogMethods.registerNode, .with { $0.name = "repo1"; $0.role = .replicator; $0.site = "hq" })
            try await publishVersion(replicator, image: "win11")
            try await publishVersion(replicator, image: "win11", size: 5 << 20)
        }
        #expect(try await deployment.cli(["image", "tag", "win11", "stable", "1"], address).status == 0)

        // Steps in percent; a bad one is a usage error, a rule the catalog checks an error it explains.
        let typo = try await deployment.cli(["rollout", "start", "win11", "stable", "2", "--steps", "5,25%,100%"], address)
        #expect(typo.status == 2 && typo.stderr.contains("'5' is not a percentage such as 5% or 2.5%"), "\(typo.stderr)")
        let short = try await deployment.cli(["rollout", "start", "win11", "stable", "2", "--steps", "5%,25%"], address)
        #expect(short.status == 1 && short.stderr.contains("INVALID_ARGUMENT: steps: the last step must be 100 %"), "\(short.stderr)")

        let started = try await deployment.cli(
            ["rollout", "start", "win11", "stable", "2", "--steps", "2.5%,25%,100%", "--site", "hq", "--min-boots", "20", "--max-failure-rate", "0.05"],
            address)
        #expect(started.status == 0, "\(started.stderr)")
        #expect(started.stdout.contains("rollout started: win11:stable version 1 → 2 at site hq: active, step 1 of 3 (2.50 %)"), "\(started.stdout)")
        let table = try await deployment.cli(["rollout", "status"], address)
        #expect(table.stdout.contains("win11  stable  1     2   hq    1/3 (2.50 %)  active"), "\(table.stdout)")
        let status = try await run(Rollouts.self, ["rollout", "status"])
        let rollout = try #require(status.rollouts.first)
        #expect(rollout.steps == [250, 2500, 10_000] && rollout.criteria.minimumBoots == 20 && rollout.criteria.maximumFailureRate == 0.05)
        #expect(rollout.site?.rawValue == "hq" && rollout.state == "active" && rollout.progress.boots == 0 && rollout.id == rollout.revision)

        // While it runs the tag is the rollout's, and both versions stay.
        let moved = try await deployment.cli(["image", "tag", "win11", "stable", "2"], address)
        #expect(moved.status == 1 && moved.stderr.contains("abort it first: icbd rollout abort win11 stable"), "\(moved.stderr)")
        let retired = try await deployment.cli(["image", "retire", "win11", "2"], address)
        #expect(retired.status == 1 && retired.stderr.contains("is in the rollout of tag 'stable'"), "\(retired.stderr)")

        #expect(try await run(Rollout.self, ["rollout", "pause", "win11", "stable"]).state == "paused")
        #expect(try await run(Rollout.self, ["rollout", "resume", "win11", "stable"]).state == "active")
        let aborted = try await deployment.cli(["rollout", "abort", "win11", "stable"], address)
        #expect(aborted.stdout.contains("aborted, step 1 of 3") && aborted.stdout.contains("every workstation boots version 1"), "\(aborted.stdout)")
        let again = try await deployment.cli(["rollout", "abort", "win11", "stable"], address)
        #expect(again.status == 1 && again.stderr.contains("is aborted; only a running rollout"), "\(again.stderr)")

        // Boots, as a gateway reports them: one of version 1, then two failures of version 2
        // in a new rollout, which rolls it back.
        #expect(try await deployment.cli(["rollout", "start", "win11", "stable", "2", "--steps", "50%,100%", "--min-boots", "2"], address).status == 0)
        try await deployment.withClient(address, as: "gw1") { gateway in
            _ = try await gateway.unary(CatalogMethods.registerNode, .with { $0.name = "gw1"; $0.role = .gateway; $0.site = "hq" })
            let failed: [Icbd_Catalog_V1_Boot] = (1...2).map { index in
                .with {
                    $0.mac = "52:54:00:00:00:0\(index)"
                    $0.image = "win11"
                    $0.version = 2
                    $0.outcome = .failed
                    $0.failure = "not_loaded"
                    $0.startedMs = Date().milliseconds - 60_000
                }
            }
            _ = try await gateway.unary(CatalogMethods.reportBoots, .with { $0.boots = failed })
            _ = try await gateway.unary(
                CatalogMethods.reportBoots,
                .with {
                    $0.boots = [
                        .with {
                            $0.mac = "52:54:00:12:34:56"
                            $0.image = "win11"
                            $0.version = 1
                            $0.outcome = .booted
                            $0.startedMs = Date().milliseconds - 30_000
                            $0.upMs = 21_500
                            $0.bytesRead = 3 << 20
                        }
                    ]
                })
        }
        let rolledBack = try await deployment.cli(["rollout", "status"], address)
        #expect(rolledBack.stdout.contains("rolled_back") && rolledBack.stdout.contains("2 of 2 boots of version 2 failed (100.0 %)"), "\(rolledBack.stdout)")
        let scrape = try await CommandRunner.runTool("/usr/bin/curl", ["-sf", try await catalog.announcedLine(prefix: "metrics ")])
        #expect(scrape.stdout.contains(#"icbd_rollout_rollbacks_total{image="win11",tag="stable"} 1"#), "\(scrape.stdout)")
        let boots = try await run(Boots.self, ["boot", "list", "--site", "hq", "--image", "win11"])
        #expect(boots.boots.map(\.mac.description) == ["52:54:00:12:34:56", "52:54:00:00:00:02", "52:54:00:00:00:01"], "newest first")
        #expect(boots.boots.last?.outcome == "failed" && boots.boots.last?.failure == "not_loaded")
        #expect(boots.boots.first?.gateway.rawValue == "gw1" && boots.boots.first?.upMilliseconds == 21_500 && boots.boots.first?.outcome == "booted")
        let listed = try await deployment.cli(["boot", "list"], address)
        let lines = listed.stdout.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).dropFirst().joined(separator: " ") }
        #expect(lines.contains("52:54:00:12:34:56 hq gw1 win11:1 booted - 21.5 s 3.0 MiB 0"), "\(listed.stdout)")
        #expect(lines.contains("52:54:00:00:00:01 hq gw1 win11:2 failed (not_loaded) - - 0 B 0"), "\(listed.stdout)")

        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }
}
