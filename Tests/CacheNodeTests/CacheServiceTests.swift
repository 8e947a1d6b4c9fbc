import CacheClient
@testable import CacheNode
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import NIOCore
import SwiftProtobuf
import Synchronization
import Testing

@Suite("A cache node in front of a real replicator on BTRFS, over real mutual TLS")
struct CacheServiceTests {
    /// The non-zero chunks of the published disk.
    static let dataChunks = [0, 1, 2, 4, 5, 6, 7]

    @Test(.requiresLoopBtrfs) func servesMissesFromTheRepositoryThenHitsFromDisk() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                let first = try await getChunks(client, disk.request(Self.dataChunks))
                #expect(first.map(\.0) == Self.dataChunks.map(disk.digest))
                #expect(first.map(\.1) == Self.dataChunks.map { Array(disk.chunk($0)) })
                let fetched = deployment.reads.chunksPerCall.reduce(0, +)
                #expect(fetched == Self.dataChunks.count)

                let second = try await getChunks(client, disk.request(Self.dataChunks.reversed()))
                #expect(second.map(\.1) == Self.dataChunks.reversed().map { Array(disk.chunk($0)) })
                #expect(deployment.reads.chunksPerCall.reduce(0, +) == fetched)
                #expect(cache.metrics.hits.load(ordering: .relaxed) == Int64(Self.dataChunks.count))
                #expect(cache.store.count == Self.dataChunks.count)
            }
        }
    }

    @Test(.requiresLoopBtrfs) func missesWithoutPositionsAreFetchedByHash() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                // Hashes only (what `icbd-c chunks` sends): the images the catalog lists are searched.
                let bare = Icbd_Cache_V1_GetChunksRequest.with { $0.hashes = [1, 6].map { Data(disk.digest($0)?.bytes ?? []) } }
                #expect(try await getChunks(client, bare).map(\.1) == [Array(disk.chunk(1)), Array(disk.chunk(6))])
                // Hashes and the image.
                let named = Icbd_Cache_V1_GetChunksRequest.with {
                    $0.image = disk.image
                    $0.hashes = [Data(disk.digest(2)?.bytes ?? [])]
                }
                #expect(try await getChunks(client, named).first?.1 == Array(disk.chunk(2)))
                #expect(deployment.reads.chunksPerCall == [2, 1])
                // A hash no repository holds.
                let unknown = Icbd_Cache_V1_GetChunksRequest.with { $0.hashes = [Data(repeating: 7, count: 32)] }
                do {
                    _ = try await getChunks(client, unknown)
                    Issue.record("an unknown hash was served")
                } catch let error as RPCError {
                    #expect(error.code == .notFound)
                }
                #expect(cache.store.count == 3)
            }
        }
    }

    @Test(.requiresLoopBtrfs) func twoHundredCallersMissingOneChunkCauseOneUpstreamFetch() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                let results = try await withThrowingTaskGroup(of: [UInt8].self) { group in
                    for _ in 0..<200 {
                        group.addTask { try await getChunks(client, disk.request([5])).first?.1 ?? [] }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(results.count == 200)
                #expect(results.allSatisfy { $0 == Array(disk.chunk(5)) })
                // Counted by the replicator: one ReadChunks call, for one chunk.
                #expect(deployment.reads.chunksPerCall == [1])
                let joins = cache.metrics.singleFlightJoins.load(ordering: .relaxed)
                let hits = cache.metrics.hits.load(ordering: .relaxed)
                #expect(joins + hits == 199)
            }
        }
    }

    @Test(.requiresLoopBtrfs) func bytesThatDoNotMatchTheHashAreDataLossAndNotStored() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                // Chunk 1's hash at chunk 0's position: the repository sends chunk 0.
                var request = disk.request([0])
                request.hashes = [Data(disk.digest(1)?.bytes ?? [])]
                await #expect(throws: RPCError.self) {
                    try await getChunks(client, request)
                }
                do {
                    _ = try await getChunks(client, request)
                } catch let error as RPCError {
                    #expect(error.code == .dataLoss)
                    #expect(error.message.contains("repo-hq"))
                }
                #expect(cache.store.count == 0)
                #expect(cache.metrics.upstreamMismatches.load(ordering: .relaxed) == 2)
            }
        }
    }

    /// An entry corrupted while the node was down is verified on its first read after the
    /// restart: fetched again, never served.
    @Test(.requiresLoopBtrfs) func aCorruptEntryOnDiskIsFetchedAgainNotServed() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await deployment.withCache(directory: directory) { _, client in
                _ = try await getChunks(client, disk.request([2]))
            }
            let hex = disk.digest(2)?.hex ?? ""
            let path = "\(directory)/chunks/\(hex.prefix(2))/\(hex)"
            var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            bytes[4242] ^= 1
            try bytes.write(to: URL(fileURLWithPath: path))
            // No scrubber: the read itself must catch it.
            try await deployment.withCache(directory: directory, configure: { $0.scrubBytesPerSecond = 0 }) { cache, client in
                let again = try await getChunks(client, disk.request([2]))
                #expect(again.first?.1 == Array(disk.chunk(2)))
                #expect(cache.metrics.corruptEntries.load(ordering: .relaxed) == 1)
                #expect(deployment.reads.chunksPerCall == [1, 1])
                #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(disk.chunk(2)))
            }
        }
    }

    /// An entry corrupted after it was verified is found by the scrubber, dropped, and fetched
    /// again on the next read, never served.
    @Test(.requiresLoopBtrfs) func theScrubberDropsAnEntryCorruptedAfterItsFill() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            // Every verification is due again at once: the scrubber walks the store continuously.
            try await deployment.withCache(directory: directory, configure: { $0.verifyInterval = .zero; $0.scrubBytesPerSecond = 0 }) {
                cache, client in
                _ = try await getChunks(client, disk.request([2]))
                let hex = disk.digest(2)?.hex ?? ""
                let path = "\(directory)/chunks/\(hex.prefix(2))/\(hex)"
                var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
                bytes[4242] ^= 1
                try bytes.write(to: URL(fileURLWithPath: path))
                #expect(await cache.store.scrubNext() == 0)
                #expect(!cache.store.contains(try #require(disk.digest(2))))
                #expect(cache.metrics.corruptEntries.load(ordering: .relaxed) == 1)
                let again = try await getChunks(client, disk.request([2]))
                #expect(again.first?.1 == Array(disk.chunk(2)))
                #expect(deployment.reads.chunksPerCall == [1, 1])
            }
        }
    }

    @Test(.requiresLoopBtrfs) func aVanishedRepositoryMakesMissesUnavailableWhileHitsStillWork() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                _ = try await getChunks(client, disk.request([0]))
                await deployment.stopReplicator()
                do {
                    _ = try await getChunks(client, disk.request([1]))
                    Issue.record("a miss with no repository was served")
                } catch let error as RPCError {
                    #expect(error.code == .unavailable)
                }
                #expect(!cache.store.contains(disk.digest(1) ?? disk.digest(0)!))
                #expect(try await getChunks(client, disk.request([0])).first?.1 == Array(disk.chunk(0)))
            }
        }
    }

    @Test(.requiresLoopBtrfs) func aPartOfOneChunkIsServedAloneAndTheChunkIsStoredWhole() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, client in
                var part = disk.request([5])
                part.offset = 1000
                part.length = 4096
                // A miss: fetched and stored whole, the part sent.
                let chunk = Array(disk.chunk(5))
                let first = try await getChunks(client, part)
                #expect(first.map(\.1) == [Array(chunk[1000..<5096])])
                #expect(cache.store.contains(try #require(disk.digest(5))))
                // A hit, to the chunk's end.
                part.length = 0
                let rest = try await getChunks(client, part)
                #expect(rest.map(\.1) == [Array(chunk[1000...])])
                #expect(cache.metrics.bytesServed.load(ordering: .relaxed) == Int64(4096 + chunk.count - 1000))
            }
        }
    }

    @Test(.requiresLoopBtrfs) func badRequestsGetClearStatuses() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { _, client in
                func code(_ request: Icbd_Cache_V1_GetChunksRequest, on client: RPCClient) async -> RPCError.Code? {
                    do {
                        _ = try await getChunks(client, request)
                        return nil
                    } catch let error as RPCError {
                        return error.code
                    } catch {
                        return .internal
                    }
                }
                var tooMany = disk.request([0])
                tooMany.hashes = Array(repeating: tooMany.hashes[0], count: 1025)
                tooMany.indexes = Array(repeating: 0, count: 1025)
                #expect(await code(tooMany, on: client) == .invalidArgument)
                var short = disk.request([0])
                short.hashes = [Data(repeating: 1, count: 31)]
                #expect(await code(short, on: client) == .invalidArgument)
                var zero = disk.request([3])
                zero.hashes = [Data(repeating: 0, count: 32)]
                #expect(await code(zero, on: client) == .invalidArgument)
                var unparallel = disk.request([0, 1])
                unparallel.indexes = [0]
                #expect(await code(unparallel, on: client) == .invalidArgument)
                var twoParts = disk.request([0, 1])
                twoParts.offset = 10
                #expect(await code(twoParts, on: client) == .invalidArgument)
                var beyond = disk.request([0])
                beyond.offset = Int64(disk.chunk(0).count)
                #expect(await code(beyond, on: client) == .invalidArgument)
                var negative = disk.request([0])
                negative.length = -1
                #expect(await code(negative, on: client) == .invalidArgument)
                var badImage = disk.request([0])
                badImage.image = "Not An Image"
                #expect(await code(badImage, on: client) == .invalidArgument)

                // A replicator may not read from a cache.
                let cacheAddress = client.configuration.target
                let asReplicator = RPCClientConfiguration(target: cacheAddress, expectedRole: .cache, tls: try deployment.mint(.replicator, "repo-x"))
                try await withRPCClient(asReplicator, logger: deployment.logger) { replicator in
                    #expect(await code(disk.request([0]), on: replicator) == .permissionDenied)
                }
            }
        }
    }

    @Test(.requiresLoopBtrfs) func registersWithCapacityAndHeartbeats() async throws {
        try await CacheDeployment.with { deployment in
            try await deployment.withCache(capacity: 96 << 20) { cache, client in
                var node: Icbd_Catalog_V1_Node?
                while node == nil {
                    node = try await deployment.catalog.unary(CatalogMethods.listNodes, .with { $0.role = .cache }).nodes.first
                    if node == nil { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(node?.name == "cache-hq")
                #expect(node?.site == "hq")
                #expect(node?.capacityBytes == 96 << 20)
                let first = node?.lastHeartbeatMs ?? 0
                while try await deployment.catalog.unary(CatalogMethods.listNodes, .with { $0.role = .cache }).nodes.first?.lastHeartbeatMs == first {
                    try await Task.sleep(for: .milliseconds(20))
                }
                // One miss, one hit: the next heartbeats carry the bytes held and a ratio of 0.5.
                let disk = deployment.disk
                _ = try await getChunks(client, disk.request([1]))
                _ = try await getChunks(client, disk.request([1]))
                var usage = Icbd_Catalog_V1_CacheUsage()
                for _ in 0..<500 where usage.hitRatio != 0.5 {
                    usage = try await deployment.catalog.unary(CatalogMethods.listNodes, .with { $0.role = .cache }).nodes.first?.cacheUsage ?? usage
                    if usage.hitRatio != 0.5 { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(usage.usedBytes == cache.store.usedBytes)
                #expect(usage.usedBytes > 0)
                #expect(usage.hitRatio == 0.5)
            }
        }
    }

    /// In a container the listening address (0.0.0.0) is no use to the gateways: the node
    /// registers the address it is told to advertise, such as its compose service's name.
    @Test(.requiresLoopBtrfs) func registersTheAddressItAdvertises() async throws {
        try await CacheDeployment.with { deployment in
            let advertised = HostPort(host: "cache-hq.branch.example", port: 7002)
            try await deployment.withCache(configure: { $0.advertisedAddress = advertised }) { _, _ in
                var node: Icbd_Catalog_V1_Node?
                while node == nil {
                    node = try await deployment.catalog.unary(CatalogMethods.listNodes, .with { $0.role = .cache }).nodes.first
                    if node == nil { try await Task.sleep(for: .milliseconds(20)) }
                }
                #expect(node?.rpcAddress == "cache-hq.branch.example:7002")
            }
        }
    }

    @Test(.requiresLoopBtrfs) func warmFetchesAVersionInTheBackground() async throws {
        try await CacheDeployment.with { deployment in
            let disk = deployment.disk
            try await deployment.withCache { cache, _ in
                let admin = RPCClientConfiguration(
                    target: HostPort(host: "127.0.0.1", port: try await cache.localAddress().port ?? 0), expectedRole: .cache,
                    tls: try deployment.mint(.admin, "admin"))
                let answer = try await withRPCClient(admin, logger: deployment.logger) { client in
                    try await client.unary(CacheMethods.warm, .with { $0.image = disk.image; $0.version = disk.version })
                }
                #expect(answer.chunksQueued == Int64(Self.dataChunks.count))
                #expect(answer.chunksHeld == 0)
                for _ in 0..<1500 where cache.store.count < Self.dataChunks.count {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(Set(deployment.reads.chunksPerCall.map { _ in 1 }) == [1])
                #expect(deployment.reads.chunksPerCall.reduce(0, +) == Self.dataChunks.count)
            }
        }
    }

    /// One cache node records v1's boot; the profile goes to the catalog; another cache node of
    /// the site, which never saw v1 read, warms v2 by it: the profiled chunks, in boot order,
    /// before anyone reads v2.
    @Test(.requiresLoopBtrfs) func aNewlyPlacedVersionIsWarmedInTheOrderItsPredecessorBooted() async throws {
        try await CacheDeployment.with { deployment in
            let v1 = deployment.disk
            try await deployment.withCache(name: "cache-a", configure: { $0.bootProfileWindow = .seconds(2) }) { _, client in
                // A boot of v1 reads chunks 6, 2, 4 in this order.
                for index in [6, 2, 4] { _ = try await getChunks(client, v1.request([index])) }
                let request = Icbd_Catalog_V1_GetBootProfileRequest.with {
                    $0.image = v1.image
                    $0.version = v1.version
                }
                var recorded: Icbd_Catalog_V1_GetBootProfileResponse?
                for _ in 0..<600 where recorded == nil {
                    recorded = try? await deployment.catalog.unary(CatalogMethods.getBootProfile, request)
                    if recorded == nil { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(recorded?.nodes == ["cache-a"])
                #expect(recorded?.entries.map(\.index) == [6, 2, 4])
            }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cache-\(UUID())").path
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try await deployment.withCache(directory: directory, name: "cache-b") { cache, _ in
                // Wait for the cache's first look at the placements (v1 is there already).
                try await Task.sleep(for: .milliseconds(300))
                // v2: every chunk differs from v1's.
                let v2 = try await deployment.publishNext(CacheDeployment.diskBytes(seed: 2))
                #expect(v2.version == 2)
                let wanted = [6, 2, 4].compactMap(v2.digest)
                for _ in 0..<600 where !wanted.allSatisfy(cache.store.contains) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(wanted.allSatisfy(cache.store.contains))
                // Fetched before anyone read v2: the profiled chunks, in the profile's order.
                let calls = deployment.reads.all.filter { $0.version == 2 }
                #expect(calls.first?.indexes == [6, 2, 4])
                #expect(calls.flatMap(\.indexes) == [6, 2, 4])
            }
        }
    }

    @Test func warmPutsTheProfiledChunksFirst() {
        let wants = (0..<6).map { index in
            ChunkWant(digest: key(index), source: .position(image: "win11", version: 2, path: "disk.raw", index: UInt32(index)))
        }
        let profile = BootProfile(
            image: "win11", version: 1, positions: [.init(path: "disk.raw", index: 4), .init(path: "disk.raw", index: 1), .init(path: "vmlinuz", index: 0)])
        let indexes = { (wants: [ChunkWant]) in
            wants.map { want -> UInt32 in
                if case .position(_, _, _, let index) = want.source { return index }
                return 99
            }
        }
        #expect(indexes(Warmer.ordered(wants, by: profile)) == [4, 1, 0, 2, 3, 5])
        #expect(indexes(Warmer.ordered(wants, by: profile, profiledOnly: true)) == [4, 1])
        #expect(indexes(Warmer.ordered(wants, by: nil)) == [0, 1, 2, 3, 4, 5])
    }

    @Test func eachCacheOfASiteWarmsOnlyTheChunksGatewaysWouldReadFromIt() {
        let wants = (0..<300).map { index in
            ChunkWant(digest: key(index), source: .position(image: "win11", version: 2, path: "disk.raw", index: UInt32(index)))
        }
        let site = ["cache-a", "cache-b", "cache-c"]
        let shares = site.map { Warmer.share(of: wants, for: $0, among: site) }
        // Disjoint, together the whole version, each chunk with the node that ranks first for it.
        #expect(shares.map(\.count).reduce(0, +) == wants.count)
        #expect(Set(shares.flatMap { $0.map(\.digest) }) == Set(wants.map(\.digest)))
        for (node, share) in zip(site, shares) {
            #expect(share.count > 50, "\(node) holds \(share.count) of 300")
            #expect(share.allSatisfy { RendezvousOrder.rank(site, for: $0.digest.bytes, name: { $0 }).first == node })
        }
        // The profile's order is kept within a share.
        #expect(shares[0].map(\.digest) == wants.map(\.digest).filter { digest in shares[0].contains { $0.digest == digest } })
        // A node the catalog does not list as up, or alone on its site, warms everything.
        #expect(Warmer.share(of: wants, for: "cache-d", among: site).count == wants.count)
        #expect(Warmer.share(of: wants, for: "cache-a", among: ["cache-a"]).count == wants.count)
    }
}
