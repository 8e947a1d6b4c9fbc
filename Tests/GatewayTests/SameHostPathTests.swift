import AsyncHTTPClient
import CacheNode
import Foundation
import Gateway
import Glibc
import ICBDTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The same-host path (`--local-cache`): the gateway reads the chunk files of the cache node on
/// its host directly, and serves only bytes it verified.
@Suite("Gateway: the same-host path", .serialized, .requiresLoopBtrfs)
struct SameHostPathTests {
    static let image = "/v1/images/win11/1/disk.raw"

    /// Random ranges, each checked; `seed` makes a failure reproducible.
    func expectRandomRanges(_ deployment: GatewayDeployment, of disk: [UInt8], count: Int, seed: UInt64) async throws {
        var random = SeededGenerator(seed: seed)
        for _ in 0..<count {
            let start = Int.random(in: 0..<disk.count, using: &random)
            let length = Int.random(in: 1...min(3 << 20, disk.count - start), using: &random)
            let answer = try await deployment.request(Self.image, headers: [("Range", "bytes=\(start)-\(start + length - 1)")])
            #expect(answer.status == 206)
            #expect(answer.body == Array(disk[start..<start + length]), "bytes \(start)-\(start + length - 1)")
        }
    }

    /// The local node's chunk files, by path.
    func chunkFiles(_ deployment: GatewayDeployment, of node: String) throws -> [String] {
        let chunks = deployment.cacheDirectory(node) + "/chunks"
        return try FileManager.default.contentsOfDirectory(atPath: chunks).flatMap { prefix in
            try FileManager.default.contentsOfDirectory(atPath: chunks + "/" + prefix).map { chunks + "/" + prefix + "/" + $0 }
        }.sorted()
    }

    @Test func rangesAreServedFromTheLocalNodesFilesWithTheRightBytes() async throws {
        try await GatewayDeployment.with(
            caches: [("cache-hq-1", "hq"), ("cache-hq-2", "hq")], localCache: "cache-hq-1", configure: { $0.memoryCacheBytes = 0 }
        ) { deployment in
            let disk = sampleDisk(mebibytes: 8)
            try await deployment.publish("win11", [("disk.raw", disk)])
            // The first read fills the local node: it comes first in every chunk's plan.
            #expect(try await deployment.request(Self.image).body == disk)
            #expect(try await deployment.metric(#"icbd_gateway_upstream_chunks_total{node="cache-hq-2""#) == 0)
            // 9 chunks, one of them zeros (never stored); the node stores what it fills after answering.
            try await deployment.waitUntil("the local node holds 8 chunk files") { try chunkFiles(deployment, of: "cache-hq-1").count == 8 }
            let remote = try await deployment.metric("icbd_gateway_upstream_chunks_total")
            try await expectRandomRanges(deployment, of: disk, count: 48, seed: 7)
            #expect(try await deployment.metric("icbd_gateway_upstream_chunks_total") == remote, "every range came from the local files")
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="hit""#) >= 48)
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="refused""#) == 0)
            // The node learns of the reads it did not serve (recency, hits, boot profiles).
            let local = try #require(deployment.caches.service("cache-hq-1"))
            try await deployment.waitUntil("the local node is told of the gateway's reads") {
                local.metrics.sameHostReads.load(ordering: .relaxed) >= 8
            }
            #expect(deployment.caches.service("cache-hq-2")?.metrics.sameHostReads.load(ordering: .relaxed) == 0)
        }
    }

    @Test func localFilesThatAreNotTheirChunkAreNeverServed() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], localCache: "cache-hq-1", configure: { $0.memoryCacheBytes = 0 }) {
            deployment in
            let disk = sampleDisk(mebibytes: 8)
            try await deployment.publish("win11", [("disk.raw", disk)])
            #expect(try await deployment.request(Self.image).body == disk)
            // Once the files' change times are a second old, a read records each as verified:
            // later reads of them hash nothing, so a change must be seen by its change time.
            try await Task.sleep(for: .milliseconds(1100))
            #expect(try await deployment.request(Self.image).body == disk)
            // The node stores what it fills after answering: wait for its 8 chunk files.
            try await deployment.waitUntil("the local node holds 8 chunk files") { try chunkFiles(deployment, of: "cache-hq-1").count == 8 }
            let files = try chunkFiles(deployment, of: "cache-hq-1")
            // Rewritten in place (same inode, same size, other bytes).
            let inPlace = open(files[0], O_WRONLY)
            #expect(inPlace >= 0)
            #expect(pwrite(inPlace, [UInt8](repeating: 0x5a, count: 4096), 4096, 8192) == 4096)
            close(inPlace)
            // Replaced by a link to another chunk's file, by a FIFO, and cut short.
            try FileManager.default.removeItem(atPath: files[1])
            try FileManager.default.createSymbolicLink(atPath: files[1], withDestinationPath: files[2])
            try FileManager.default.removeItem(atPath: files[3])
            #expect(mkfifo(files[3], 0o644) == 0)
            #expect(truncate(files[4], 1000) == 0)

            #expect(try await deployment.request(Self.image).body == disk)
            try await expectRandomRanges(deployment, of: disk, count: 16, seed: 11)
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="refused""#) >= 4)
            let refusals = deployment.gatewayLog.all.filter { $0.message.contains("the local cache node's file is not the chunk") }
            for problem in ["does not hash", "cannot open", "not a regular file", "has 1000 bytes"] {
                #expect(refusals.contains { $0.metadata["problem"]?.contains(problem) == true }, "\(problem): \(refusals)")
            }
        }
    }

    @Test func evictedFilesAndAKilledLocalNodeStillGiveWholeCorrectResponses() async throws {
        try await GatewayDeployment.with(
            caches: [("cache-hq-1", "hq"), ("cache-hq-2", "hq")], localCache: "cache-hq-1",
            configure: {
                $0.memoryCacheBytes = 0
                $0.readAhead = 1
            }
        ) { deployment in
            let disk = sampleDisk(mebibytes: 48)
            try await deployment.publish("win11", [("disk.raw", disk)])
            #expect(try await deployment.request(Self.image, headers: [("Range", "bytes=0-\((16 << 20) - 1)")]).body == Array(disk[0..<(16 << 20)]))
            // Evicted: the files the gateway found go; it reads through the node again.
            for file in try chunkFiles(deployment, of: "cache-hq-1") { unlink(file) }
            // The local node dies with the response in flight, past what it had filled.
            let answer = try await deployment.get(Self.image, after: 20 << 20) { await deployment.caches.stop("cache-hq-1") }
            #expect(answer.status == 200)
            #expect(answer.body == disk)
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="absent""#) > 0)
            #expect(try await deployment.metric(#"icbd_gateway_upstream_chunks_total{node="cache-hq-2""#) > 0)
        }
    }

    @Test func aLocalCacheDirectoryWithoutANodeChangesNothing() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], localCache: "no-such-node", configure: { $0.memoryCacheBytes = 0 }) {
            deployment in
            let disk = sampleDisk(mebibytes: 4)
            try await deployment.publish("win11", [("disk.raw", disk)])
            #expect(try await deployment.request(Self.image).body == disk)
            try await expectRandomRanges(deployment, of: disk, count: 8, seed: 3)
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="absent""#) > 0)
            #expect(try await deployment.metric(#"icbd_gateway_same_host_chunk_reads_total{result="hit""#) == 0)
        }
    }
}
