import AsyncHTTPClient
import CacheNode
import Foundation
import Gateway
import ICBDCore
import ICBDTestSupport
import NIOCore
import NIOHTTP1
import Synchronization
import Testing

/// The gateway in front of real cache nodes (and a real replicator behind them).
@Suite("Gateway routing over real cache nodes", .serialized, .requiresLoopBtrfs)
struct CacheRoutingTests {
    /// `icbd_gateway_upstream_chunks_total` by node, from the gateway's /metrics.
    func chunksByNode(_ deployment: GatewayDeployment) async throws -> [String: Double] {
        let text = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
        var counts: [String: Double] = [:]
        for line in text.split(separator: "\n") where line.hasPrefix("icbd_gateway_upstream_chunks_total{") {
            guard let nameStart = line.range(of: "node=\""), let value = line.split(separator: " ").last.flatMap({ Double($0) }) else { continue }
            let name = line[nameStart.upperBound...].prefix { $0 != "\"" }
            counts[String(name), default: 0] += value
        }
        return counts
    }

    @Test func eachSitesClientsReadFromTheirOwnSitesCachesSpreadByRendezvous() async throws {
        try await GatewayDeployment.with(
            caches: [("cache-hq-1", "hq"), ("cache-hq-2", "hq"), ("cache-br-1", "branch")],
            configure: {
                $0.trustedProxies = (try? CIDR(parsing: "127.0.0.1/32")).map { [$0] } ?? []
                $0.memoryCacheBytes = 0
            }
        ) { deployment in
            let disk = sampleDisk(mebibytes: 16)
            try await deployment.publish("win11", [("disk.raw", disk)])

            // A workstation of the branch (through a trusted proxy): every chunk from the branch's cache.
            let branch = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("X-Forwarded-For", "10.2.0.9")])
            #expect(branch.status == 200 && branch.body == disk)
            let afterBranch = try await chunksByNode(deployment)
            #expect(afterBranch["cache-br-1"] == 16, "\(afterBranch)")  // 17 chunks, one of zeros
            #expect(afterBranch["cache-hq-1"] == nil && afterBranch["cache-hq-2"] == nil, "\(afterBranch)")

            // A workstation of hq: its site's two caches, each the home of some chunks.
            let hq = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("X-Forwarded-For", "10.1.3.4")])
            #expect(hq.status == 200 && hq.body == disk)
            let afterHQ = try await chunksByNode(deployment)
            #expect((afterHQ["cache-hq-1"] ?? 0) + (afterHQ["cache-hq-2"] ?? 0) == 16, "\(afterHQ)")
            #expect((afterHQ["cache-hq-1"] ?? 0) > 0 && (afterHQ["cache-hq-2"] ?? 0) > 0, "\(afterHQ)")
            #expect(afterHQ["cache-br-1"] == 16 && afterHQ["repo-hq"] == nil, "\(afterHQ)")

            // The same again: the same homes (rendezvous is stable), so the split does not change shape.
            _ = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("X-Forwarded-For", "10.1.3.4")])
            let again = try await chunksByNode(deployment)
            #expect(again["cache-hq-1"] == 2 * (afterHQ["cache-hq-1"] ?? 0) && again["cache-hq-2"] == 2 * (afterHQ["cache-hq-2"] ?? 0))

            // A client outside every site counts as the gateway's site (hq); without a trusted
            // proxy in between, X-Forwarded-For would not be believed (see RoutingTests).
            let ranges = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=1000-2999999")])
            #expect(ranges.status == 206 && ranges.body == Array(disk[1000...2_999_999]))

            // 64 KiB inside one chunk: the branch's cache sends the whole chunk (only a whole chunk
            // can be checked against the manifest's hash), and the client gets its 64 KiB.
            let branchCache = try #require(deployment.caches.service("cache-br-1"))
            let servedBefore = branchCache.metrics.bytesServed.load(ordering: .relaxed)
            let small = try await deployment.request(
                "/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=5300000-5365535"), ("X-Forwarded-For", "10.2.0.9")])
            #expect(small.status == 206 && small.body == Array(disk[5_300_000...5_365_535]))
            #expect(branchCache.metrics.bytesServed.load(ordering: .relaxed) - servedBefore == 1 << 20)

            // The status page shows what each cache reported in its heartbeats: bytes held and
            // its hit ratio (the branch's cache missed each chunk once, then hit).
            try await deployment.waitUntil("the status page shows cache-br-1's usage") {
                let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
                guard let row = page.components(separatedBy: "<tr>").first(where: { $0.contains("<td>cache-br-1</td>") }) else { return false }
                // capacity, then held, then hit ratio
                let usage = #"<td>512\.0 MiB</td><td>1[0-9]\.[0-9] MiB</td><td>[1-9][0-9]?\.[0-9] %</td>"#
                return row.range(of: usage, options: .regularExpression) != nil
            }
        }
    }

    @Test func aCacheKilledMidResponseIsFailedOverAndTheResponseCompletes() async throws {
        try await GatewayDeployment.with(
            caches: [("cache-a", "hq"), ("cache-b", "hq")],
            configure: {
                $0.memoryCacheBytes = 0
                $0.readAhead = 1
            }
        ) { deployment in
            let disk = sampleDisk(mebibytes: 48)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let answer = try await deployment.get("/v1/images/win11/1/disk.raw", after: 4 << 20) {
                // Both caches have served chunks by now; one dies with the response in flight.
                let before = try await chunksByNode(deployment)
                #expect((before["cache-a"] ?? 0) > 0 || (before["cache-b"] ?? 0) > 0)
                await deployment.caches.stop("cache-a")
            }
            #expect(answer.status == 200)
            #expect(answer.body == disk)
            let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            #expect(metrics.contains("icbd_gateway_upstream_errors_total{node=\"cache-a\"}"), "\(metrics)")
            // Every later read goes to the surviving cache first (cache-a is ejected, then down).
            let after = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-\((8 << 20) - 1)")])
            #expect(after.status == 206 && after.body == Array(disk[0..<(8 << 20)]))
        }
    }
}
