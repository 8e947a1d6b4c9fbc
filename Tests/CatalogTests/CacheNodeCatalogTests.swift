import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Testing

@Suite("Catalog: what cache nodes keep there (usage, boot profiles)")
struct CacheNodeCatalogTests {
    @Test(arguments: StoreKind.available)
    func cacheHeartbeatsLeaveUsageOnTheNodeWithoutAChange(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                _ = try await registerNode(admin, "gw-1", role: .gateway, site: "hq")
            }
            try await harness.withClient(.cache, "cache-1") { cache in
                let registered = try await registerNode(cache, "cache-1", role: .cache, site: "hq")
                #expect(!registered.hasCacheUsage, "no usage before the first heartbeat")
                let before = try await harness.store.currentRevision().rawValue
                var beat = Icbd_Catalog_V1_HeartbeatRequest()
                beat.name = "cache-1"
                beat.usedBytes = 3 << 30
                beat.hitRatio = 0.75
                let answer = try await cache.unary(CatalogMethods.heartbeat, beat)
                #expect(answer.node.cacheUsage.usedBytes == 3 << 30)
                #expect(answer.node.cacheUsage.hitRatio == 0.75)
                #expect(answer.revision == before, "usage is not a change")
                let listed = try await cache.unary(CatalogMethods.listNodes, .with { $0.role = .cache }).nodes
                #expect(listed.map(\.cacheUsage.hitRatio) == [0.75])
                #expect(listed.first?.hasCacheUsage == true)

                beat.hitRatio = 1.5
                await expectRPCError(.invalidArgument, mentioning: "hit_ratio") { _ = try await cache.unary(CatalogMethods.heartbeat, beat) }
                beat.hitRatio = 0.5
                beat.usedBytes = -1
                await expectRPCError(.invalidArgument, mentioning: "used_bytes") { _ = try await cache.unary(CatalogMethods.heartbeat, beat) }
            }
            try await harness.withClient(.gateway, "gw-1") { gateway in
                var beat = Icbd_Catalog_V1_HeartbeatRequest()
                beat.name = "gw-1"
                beat.usedBytes = 7
                beat.hitRatio = 0.5
                let answer = try await gateway.unary(CatalogMethods.heartbeat, beat)
                #expect(!answer.node.hasCacheUsage, "only cache nodes keep usage")
            }
        }
        // Stored, not remembered by the process: a restarted catalog shows it.
        let restarted = try await CatalogHarness(on: harness.fixture, clock: harness.clock)
        try await restarted.run {
            let nodes = try await restarted.store.listNodes(NodeFilter()).value
            #expect(nodes.map { "\($0.name)=\($0.cacheUsage.map { "\($0.usedBytes)/\($0.hitRatio)" } ?? "-")" } == ["cache-1=\(3 << 30)/0.75", "gw-1=-"])
        }
    }

    @Test(arguments: StoreKind.available)
    func bootProfilesOfASiteMergeAndTheNewestUpToAVersionIsFound(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                for version in 1...3 { try await publish(admin, image: "win11", number: Int64(version), parent: Int64(version - 1)) }
            }
            let revision = try await harness.store.currentRevision()
            // Two cache nodes each saw their share of v1's boot.
            try await harness.withClient(.cache, "cache-1") { cache in
                try await putProfile(cache, node: "cache-1", version: 1, [(0, 4, 0), (0, 9, 300), (0, 1, 900)])
            }
            try await harness.withClient(.cache, "cache-2") { cache in
                try await putProfile(cache, node: "cache-2", version: 1, [(0, 7, 100), (0, 9, 200), (1, 0, 600)])
            }
            #expect(try await harness.store.currentRevision() == revision, "profiles are hints, not changes")
            try await harness.withClient(.gateway, "gw-1") { gateway in
                let exact = try await gateway.unary(
                    CatalogMethods.getBootProfile,
                    .with {
                        $0.image = "win11"
                        $0.version = 1
                    })
                #expect(exact.version == 1)
                #expect(exact.nodes == ["cache-1", "cache-2"])
                // By offset, each position once at its earliest read.
                #expect(exact.entries.map { "\($0.path):\($0.index)" } == ["disk.raw:4", "disk.raw:7", "disk.raw:9", "vmlinuz:0", "disk.raw:1"])

                let forV3 = try await gateway.unary(
                    CatalogMethods.getBootProfile,
                    .with {
                        $0.image = "win11"
                        $0.version = 3
                        $0.atOrBefore = true
                    })
                #expect(forV3.version == 1)
                await expectRPCError(.notFound, mentioning: "version 3") {
                    _ = try await gateway.unary(
                        CatalogMethods.getBootProfile,
                        .with {
                            $0.image = "win11"
                            $0.version = 3
                        })
                }
            }
            // A node's new recording of a version replaces its old one.
            try await harness.withClient(.cache, "cache-1") { cache in
                try await putProfile(cache, node: "cache-1", version: 2, [(0, 5, 0)])
                try await putProfile(cache, node: "cache-1", version: 2, [(0, 6, 0)])
                let forV3 = try await cache.unary(
                    CatalogMethods.getBootProfile,
                    .with {
                        $0.image = "win11"
                        $0.version = 3
                        $0.atOrBefore = true
                    })
                #expect(forV3.version == 2)
                #expect(forV3.entries.map(\.index) == [6])
            }
        }
    }

    @Test(arguments: StoreKind.available)
    func bootProfilesAreValidatedAndWrittenOnlyByTheirCacheNode(_ kind: StoreKind) async throws {
        let harness = try await CatalogHarness(kind)
        try await harness.run {
            try await harness.withClient { admin in
                _ = try await addSite(admin, "hq")
                try await publish(admin, image: "win11")
            }
            try await harness.withClient(.cache, "cache-1") { cache in
                await expectRPCError(.permissionDenied, mentioning: "as itself") {
                    try await putProfile(cache, node: "cache-2", version: 1, [(0, 1, 0)])
                }
                await expectRPCError(.notFound, mentioning: "no version 7") {
                    try await putProfile(cache, node: "cache-1", version: 7, [(0, 1, 0)])
                }
                await expectRPCError(.invalidArgument, mentioning: "entries") {
                    try await putProfile(cache, node: "cache-1", version: 1, [])
                }
                await expectRPCError(.invalidArgument, mentioning: "entries.path") {
                    _ = try await cache.unary(
                        CatalogMethods.putBootProfile,
                        .with {
                            $0.image = "win11"
                            $0.version = 1
                            $0.node = "cache-1"
                            $0.entries = [.with { $0.path = "../etc/passwd" }]
                        })
                }
                let tooMany = Array(repeating: (0, UInt32(1), UInt32(0)), count: BootProfileRecord.maximumEntries + 1)
                await expectRPCError(.invalidArgument, mentioning: "entries") {
                    try await putProfile(cache, node: "cache-1", version: 1, tooMany)
                }
            }
            try await harness.withClient(.gateway, "gw-1") { gateway in
                await expectRPCError(.permissionDenied) { try await putProfile(gateway, node: "gw-1", version: 1, [(0, 1, 0)]) }
            }
            try await harness.withClient(.replicator, "repo-1") { replicator in
                await expectRPCError(.permissionDenied) {
                    _ = try await replicator.unary(
                        CatalogMethods.getBootProfile,
                        .with {
                            $0.image = "win11"
                            $0.version = 1
                        })
                }
            }
        }
    }

    @Test func mergingKeepsEachPositionOnceAtItsEarliestReadAndOneNodesOrderOnTies() throws {
        let entry = { (path: String, index: UInt32, offset: UInt32) in BootProfileEntry(path: path, index: index, offsetMilliseconds: offset) }
        let a = BootProfileRecord(
            image: try Name("win11"), version: 1, node: try Name("cache-a"), recorded: Date(),
            entries: [entry("disk.raw", 3, 0), entry("disk.raw", 1, 0), entry("disk.raw", 8, 50)])
        let b = BootProfileRecord(
            image: try Name("win11"), version: 1, node: try Name("cache-b"), recorded: Date(),
            entries: [entry("disk.raw", 8, 10), entry("disk.raw", 3, 40)])
        #expect(BootProfileRecord.merged([a, b]).map(\.index) == [3, 1, 8])
        #expect(BootProfileRecord.merged([a, b]).map(\.offsetMilliseconds) == [0, 0, 10])
    }
}

/// Puts a boot profile of `win11`; entries are (file: 0 disk.raw, 1 vmlinuz; index; offset ms).
private func putProfile(_ client: RPCClient, node: String, version: Int64, _ entries: [(Int, UInt32, UInt32)]) async throws {
    _ = try await client.unary(
        CatalogMethods.putBootProfile,
        .with {
            $0.image = "win11"
            $0.version = version
            $0.node = node
            $0.entries = entries.map { file, index, offset in
                .with {
                    $0.path = file == 0 ? "disk.raw" : "vmlinuz"
                    $0.index = index
                    $0.offsetMs = offset
                }
            }
        })
}
