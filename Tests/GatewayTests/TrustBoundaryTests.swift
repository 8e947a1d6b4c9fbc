import AsyncHTTPClient
import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import SwiftProtobuf
import Testing

/// What a hostile cache node or HTTP client can do to the gateway's answers (issue 22): wrong
/// chunk bytes, readers that never read, request text aimed at boot scripts.
@Suite("Gateway trust boundaries", .serialized, .requiresLoopBtrfs)
struct TrustBoundaryTests {
    @Test func aCacheNodeSendingWrongBytesIsEjectedAndTheClientGetsTheRightBytes() async throws {
        try await GatewayDeployment.with(caches: [("cache-good", "branch")]) { deployment in
            let disk = sampleDisk(mebibytes: 8)
            try await deployment.publish("win11", [("disk.raw", disk)])
            // A node with a real cache certificate, in the gateway's own site: first in every
            // plan (the real cache is another site's), ahead of the repository.
            try await withLiar(in: deployment, disk: disk) { liar in
                let answer = try await deployment.request("/v1/images/win11/1/disk.raw")
                #expect(answer.status == 200)
                #expect(answer.body.count == disk.count)
                #expect(answer.body == disk, "never the lying node's bytes")
                #expect(liar.chunksAsked >= 1, "the lying node was asked first")

                // Ejected, counted and logged with the node's name.
                let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
                #expect(page.contains("ejected"))
                let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                #expect(metrics.contains("icbd_gateway_upstream_corrupt_chunks_total{node=\"cache-evil\"}"), "\(metrics)")
                let logged = deployment.gatewayLog.all.filter { $0.metadata["node"] == "cache-evil" && $0.level >= .error }
                #expect(!logged.isEmpty, "\(deployment.gatewayLog.all)")
                #expect(logged.allSatisfy { $0.metadata["error"]?.contains("dataLoss") == true || $0.metadata["error"]?.contains("DATA_LOSS") == true },
                    "\(logged)")

                // The wrong bytes never entered memory: a second read, served from there, is right.
                let hitsBefore = try memoryHits(metrics)
                let again = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=1000-2999999")])
                #expect(again.status == 206 && again.body == Array(disk[1000...2_999_999]))
                let after = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                #expect(try memoryHits(after) > hitsBefore, "the second read came from memory")
            }
        }
    }

    /// A part read of a chunk verified earlier moves only the 64 KiB blocks it needs, and each
    /// is checked against the digests the gateway computed from the verified whole: a node
    /// that sends wrong blocks is caught like one that sends a wrong chunk.
    @Test func aPartReadOfAVerifiedChunkChecksEveryBlockItMoves() async throws {
        try await GatewayDeployment.with(caches: [("cache-good", "branch")], configure: { $0.memoryCacheBytes = 0 }) { deployment in
            let disk = sampleDisk(mebibytes: 4)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let range = (1 << 20) + 70_000...(1 << 20) + 200_000
            // The first read of the chunk moves it whole, from the honest node, and verifies it.
            let first = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")])
            #expect(first.status == 206 && first.body == Array(disk[range]))

            try await withLiar(in: deployment, disk: disk) { liar in
                // Memory holds nothing: the second read asks the liar, first in the plan, for the
                // blocks only; they fail their digests, and the honest node's are served.
                let second = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(range.lowerBound)-\(range.upperBound)")])
                #expect(second.status == 206)
                #expect(second.body == Array(disk[range]), "never the lying node's bytes")
                #expect(liar.chunksAsked >= 1, "the lying node was asked first")
                let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                #expect(metrics.contains("icbd_gateway_upstream_corrupt_chunks_total{node=\"cache-evil\"}"), "\(metrics)")
                let logged = deployment.gatewayLog.all.filter { $0.metadata["node"] == "cache-evil" && $0.level >= .error }
                #expect(logged.contains { $0.metadata["error"]?.contains("blocks of the chunk verified earlier") == true }, "\(logged)")
            }
        }
    }

    /// Runs a ``LyingCacheNode`` named `cache-evil` over `disk` while `body` runs, registered in
    /// site `hq` (the gateway's own: first in every plan) and listed by the gateway.
    private func withLiar(in deployment: GatewayDeployment, disk: [UInt8], _ body: (LyingCacheNode) async throws -> Void) async throws {
        let quiet = quietLogger(label: "liar")
        let liar = try LyingCacheNode(identity: try deployment.mint(.cache, "cache-evil"), disk: disk, logger: quiet)
        try await withRunningServices([liar.server], logger: quiet) {
            let address = try await liar.address()
            _ = try await deployment.catalog.unary(
                CatalogMethods.registerNode,
                .with {
                    $0.name = "cache-evil"
                    $0.role = .cache
                    $0.site = "hq"
                    $0.rpcAddress = "\(address)"
                    $0.heartbeatTtlMs = 3_600_000
                })
            try await deployment.waitUntil("the gateway sees the lying cache") {
                String(decoding: try await deployment.request("/").body, as: UTF8.self).contains("cache-evil")
            }
            try await body(liar)
        }
    }

    private func memoryHits(_ metrics: String) throws -> Double {
        let line = try #require(metrics.split(separator: "\n").first { $0.hasPrefix("icbd_gateway_memory_chunk_reads_total{result=\"hit\"}") })
        return try #require(line.split(separator: " ").last.flatMap { Double($0) })
    }

    @Test func stalledReadersLoseTheirSlotsAndANewBootIsStillAdmitted() async throws {
        // The default limit (256), filled by 256 readers; a short window so that the test is quick.
        try await GatewayDeployment.with(configure: {
            $0.minimumSendRate = MinimumSendRate(bytesPerSecond: 16 << 10, window: .seconds(1))
            $0.memoryCacheBytes = 4 << 20
            // 256 responses read from the repository at once: on a loaded machine a read may
            // take longer than the deployment's 2 s, and a response whose reads all time out is
            // cut as failed, not as slow. Only the slow-reader guard may end these responses.
            $0.attemptTimeout = .seconds(60)
        }) { deployment in
            let disk = sampleDisk(mebibytes: 16)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let request = "GET /v1/images/win11/1/disk.raw HTTP/1.1\r\nHost: 127.0.0.1:\(deployment.port)\r\n\r\n"
            let readers = try (0..<256).map { _ in try StalledReader(port: deployment.port, request: request) }
            // (A bound against hangs: 256 responses on a shared machine take a few seconds to start.)
            try await deployment.waitUntil("the gateway closed the 256 stalled readers", seconds: 60) {
                let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                return metrics.contains("icbd_gateway_slow_readers_closed_total 256")
            }
            // A reader sees its connection closed after a part of the body (a few of them: each
            // drains what the kernel still held for it through its small window).
            for reader in readers.prefix(8) {
                let received = reader.drainUntilClosed(seconds: 10)
                #expect((received ?? .max) < disk.count, "the connection is closed before the whole body")
            }
            // Every slot is free again: a new boot is admitted and served in full.
            let boot = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(9 << 20)-\((11 << 20) - 1)")])
            #expect(boot.status == 206 && boot.body == Array(disk[(9 << 20)..<(11 << 20)]))
            let logged = deployment.gatewayLog.all.filter { $0.message.contains("slower than the minimum rate") }
            #expect(logged.count == 256)
        }
    }

    @Test func bootScriptsCarryNoRequestTextAndHostHeadersAreChecked() async throws {
        try await GatewayDeployment.with(configure: { $0.defaultImage = try? ImageReference(parsing: "linux:1") }) { deployment in
            try await deployment.publish("linux", [("vmlinuz", GatewayHTTPTests.kernel), ("initrd.img", GatewayHTTPTests.initrd)])

            // A newline (and a command after it) in the MAC: 400, and the body holds only the
            // script's own lines.
            for attack in ["52:54:00:12:34:57%0Achain%20http:evil.ipxe", "52:54:00:12:34:57%0D%0Achain%20http:evil.ipxe",
                "%24%7Bnet0%3Amac%7D.ipxe", "52:54:00:12:34:5%EF%BC%97.ipxe"]
            {
                let answer = try await deployment.request("/boot/\(attack)")
                let text = String(decoding: answer.body, as: UTF8.self)
                #expect(answer.status == 400, "\(attack)")
                let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
                #expect(lines.first == "#!ipxe" && lines.last == "", "\(text)")
                #expect(lines.dropFirst().dropLast().allSatisfy { $0.hasPrefix("echo icbd: ") || $0 == "exit 1" }, "\(text)")
                #expect(!text.contains("chain") && !text.contains("evil") && !text.contains("$") && !text.contains("\r"), "\(text)")
            }

            // A Host that is not host[:port] is refused before anything is built from it.
            for host in ["evil.example/x?", "gw:8080 chain", "${next-server}", "gw:99999", "gw:", "[::1", "gw#", "a_b:80", "gw:80:80"] {
                let answer = try await deployment.request("/boot/52:54:00:12:34:56.ipxe", headers: [("Host", host)])
                #expect(answer.status == 400, "Host: \(host)")
                #expect(!String(decoding: answer.body, as: UTF8.self).contains("kernel"), "Host: \(host)")
            }
            // Two Host headers: 400 too.
            let twice = try await deployment.request("/boot/52:54:00:12:34:56.ipxe", headers: [("Host", "gw:8080"), ("Host", "evil:80")])
            #expect(twice.status == 400)

            // Valid forms still boot, with the Host as given.
            for (mac, host) in [
                ("52:54:00:12:34:56", "gw.hq.example:8080"), ("52%3A54%3A00%3A12%3A34%3A56", "10.1.0.5"), ("52%3a54%3a00%3a12%3a34%3a56", "gw"),
                ("52-54-00-12-34-56", "[::1]:8080"), ("525400123456", "GW-1.example"),
            ] {
                let answer = try await deployment.request("/boot/\(mac).ipxe", headers: [("Host", host)])
                let text = String(decoding: answer.body, as: UTF8.self)
                #expect(answer.status == 200, "\(mac) \(host)")
                #expect(text.contains("# 52:54:00:12:34:56 boots linux version 1\n"), "\(text)")
                #expect(text.contains("kernel http://\(host)/v1/images/linux/1/vmlinuz "), "\(text)")
            }
        }
    }
}
