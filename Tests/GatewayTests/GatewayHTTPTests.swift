import AsyncHTTPClient
import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import SwiftProtobuf
import Testing

/// The gateway over real HTTP, reading from a real replicator on BTRFS through real TLS.
@Suite("Gateway over HTTP against a real catalog and replicator", .serialized, .requiresLoopBtrfs)
struct GatewayHTTPTests {
    static let kernel = Array("a kernel, in spirit".utf8)
    static let initrd = [UInt8](repeating: 7, count: 3000)

    @Test func servesFilesWithExactRangeSemantics() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 9)
            let published = try await deployment.publish("win11", [("disk.raw", disk), ("boot/vmlinuz", Self.kernel)])
            let etag = "\"\(Array(published.files[0].manifestSha256).hexString)\""

            // The whole file, by number and by tag.
            let whole = try await deployment.request("/v1/images/win11/1/disk.raw")
            #expect(whole.status == 200)
            #expect(whole.body == disk)
            #expect(whole.headers["etag"] == etag)
            #expect(whole.headers["accept-ranges"] == "bytes")
            #expect(whole.headers["cache-control"]?.contains("immutable") == true)
            #expect(whole.headers["last-modified"]?.hasSuffix("GMT") == true)
            let tagged = try await deployment.request("/v1/images/win11/latest/disk.raw", method: .HEAD)
            #expect(tagged.status == 200 && tagged.body.isEmpty)
            #expect(tagged.headers["content-length"] == "\(disk.count)")
            #expect(tagged.headers["cache-control"] == "no-cache")
            #expect(tagged.headers["etag"] == etag)
            let kernel = try await deployment.request("/v1/images/win11/latest/boot/vmlinuz")
            #expect(kernel.status == 200 && kernel.body == Self.kernel)

            // Random single ranges, spanning chunk borders, the zero MiB and the short tail.
            var generator = SystemRandomNumberGenerator()
            for _ in 0..<24 {
                let lower = Int.random(in: 0..<disk.count, using: &generator)
                let upper = min(disk.count - 1, lower + Int.random(in: 0..<(3 << 20), using: &generator))
                let answer = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(lower)-\(upper)")])
                #expect(answer.status == 206)
                #expect(answer.headers["content-range"] == "bytes \(lower)-\(upper)/\(disk.count)")
                #expect(answer.body == Array(disk[lower...upper]), "bytes=\(lower)-\(upper)")
            }
            let suffix = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=-100")])
            #expect(suffix.status == 206 && suffix.body == Array(disk.suffix(100)))
            let open = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(disk.count - 5000)-")])
            #expect(open.status == 206 && open.body == Array(disk.suffix(5000)))
            let zeros = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(3 << 20)-\((4 << 20) - 1)")])
            #expect(zeros.status == 206 && zeros.body == [UInt8](repeating: 0, count: 1 << 20))

            // Unsatisfiable, malformed and multiple ranges.
            let outside = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(disk.count)-")])
            #expect(outside.status == 416)
            #expect(outside.headers["content-range"] == "bytes */\(disk.count)")
            let malformed = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=9-3")])
            #expect(malformed.status == 400)
            #expect(String(decoding: malformed.body, as: UTF8.self).contains("Range"))
            let several = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-1,5-6")])
            #expect(several.status == 200 && several.body == disk)

            // Validators.
            let notModified = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("If-None-Match", etag)])
            #expect(notModified.status == 304 && notModified.body.isEmpty)
            #expect(notModified.headers["etag"] == etag)
            let changed = try await deployment.request("/v1/images/win11/1/disk.raw", method: .HEAD, headers: [("If-None-Match", "\"old\"")])
            #expect(changed.status == 200)
            let rangeStill = try await deployment.request(
                "/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-9"), ("If-Range", etag)])
            #expect(rangeStill.status == 206 && rangeStill.body == Array(disk[0...9]))
            let rangeStale = try await deployment.request(
                "/v1/images/win11/1/disk.raw", method: .HEAD, headers: [("Range", "bytes=0-9"), ("If-Range", "\"old\"")])
            #expect(rangeStale.status == 200)
            #expect(rangeStale.headers["content-length"] == "\(disk.count)")
            let byDate = try await deployment.request(
                "/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-9"), ("If-Range", whole.headers["last-modified"] ?? "")])
            #expect(byDate.status == 206)

            // A new version moves `latest`: the tag URL follows, the version URL does not.
            var disk2 = disk
            disk2[5] ^= 0xff
            let second = try await deployment.publish("win11", [("disk.raw", disk2), ("boot/vmlinuz", Self.kernel)])
            try await deployment.waitUntil("latest moves to v2") {
                try await deployment.request("/v1/images/win11/latest/disk.raw", method: .HEAD).headers["etag"] != etag
            }
            let moved = try await deployment.request("/v1/images/win11/latest/disk.raw", headers: [("Range", "bytes=0-9")])
            #expect(moved.body == Array(disk2[0...9]))
            #expect(moved.headers["etag"] == "\"\(Array(second.files[0].manifestSha256).hexString)\"")
            #expect(try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-9")]).body == Array(disk[0...9]))
        }
    }

    @Test func refusesBadRequestsWithTheRightStatus() async throws {
        try await GatewayDeployment.with { deployment in
            try await deployment.publish("win11", [("disk.raw", sampleDisk(mebibytes: 1))])
            let cases: [(String, HTTPMethodName, [(String, String)], Int)] = [
                ("/v1/images/nope", .GET, [], 404),
                ("/v1/images/nope/1/disk.raw", .GET, [], 404),
                ("/v1/images/win11/7/disk.raw", .GET, [], 404),
                ("/v1/images/win11/stable/disk.raw", .GET, [], 404),
                ("/v1/images/win11/1/other.raw", .GET, [], 404),
                ("/v1/images/win11/0/disk.raw", .GET, [], 400),
                ("/v1/images/win11/Bad_Tag/disk.raw", .GET, [], 400),
                ("/v1/images/win11/1/..%2F..%2Fetc%2Fpasswd", .GET, [], 400),
                ("/v1/images/win11/1/%2e%2e/disk.raw", .GET, [], 400),
                ("/v1/images/win11/1/disk.raw?" + String(repeating: "a", count: 3000), .GET, [], 414),
                ("/v1/images/win11/1/disk.raw", .GET, [("X-Long", String(repeating: "b", count: 10_000))], 431),
                ("/v1/images/win11/1/disk.raw", .POST, [], 405),
                ("/nowhere", .GET, [], 404),
                ("/v1/images/win11/1", .GET, [], 404),
            ]
            for (path, method, headers, status) in cases {
                let answer = try await deployment.request(path, method: method, headers: headers)
                #expect(answer.status == status, "\(method) \(path.prefix(80))")
                #expect(!answer.body.isEmpty, "a reason for \(path.prefix(80))")
            }
            // Still serving after all that.
            #expect(try await deployment.request("/healthz").status == 200)
        }
    }

    @Test func listsImagesAndServesBootScriptsAndStatus() async throws {
        try await GatewayDeployment.with(configure: { $0.defaultImage = try? ImageReference(parsing: "win11:1") }) { deployment in
            try await deployment.publish("win11", [("disk.raw", sampleDisk(mebibytes: 1)), ("vmlinuz", Self.kernel), ("initrd.img", Self.initrd)])
            try await deployment.publish("linux", [("vmlinuz", Self.kernel), ("initrd.img", Self.initrd)])
            _ = try await deployment.catalog.unary(
                CatalogMethods.assign, .with { $0.mac = "52:54:00:12:34:56"; $0.image = "linux"; $0.ref = "latest" })

            let list = try await deployment.request("/v1/images")
            #expect(list.status == 200 && list.headers["content-type"] == "application/json")
            let listed = try JSONSerialization.jsonObject(with: Data(list.body)) as? [String: Any]
            let names = (listed?["images"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            #expect(names == ["linux", "win11"])
            let detail = try JSONSerialization.jsonObject(with: Data(try await deployment.request("/v1/images/win11").body)) as? [String: Any]
            let versions = detail?["versions"] as? [[String: Any]]
            #expect((versions?.first?["files"] as? [[String: Any]])?.count == 3)
            #expect((detail?["tags"] as? [String: Int])?["latest"] == 1)

            try await deployment.waitUntil("the assignment reaches the gateway") {
                let script = try await deployment.request("/boot/52:54:00:12:34:56.ipxe")
                return String(decoding: script.body, as: UTF8.self).contains("linux")
            }
            for spelling in ["52:54:00:12:34:56", "52%3A54%3A00%3A12%3A34%3A56", "52-54-00-12-34-56"] {
                let script = try await deployment.request("/boot/\(spelling).ipxe")
                let text = String(decoding: script.body, as: UTF8.self)
                #expect(script.status == 200, "\(spelling)")
                #expect(text.hasPrefix("#!ipxe\n"))
                #expect(text.contains("kernel \(deployment.base)/v1/images/linux/1/vmlinuz"))
                #expect(text.contains("initrd \(deployment.base)/v1/images/linux/1/initrd.img"))
                #expect(text.contains("\nboot\n"))
            }
            // Unknown MAC: the site's default image.
            let fallback = String(decoding: try await deployment.request("/boot/52-54-00-00-00-01.ipxe").body, as: UTF8.self)
            #expect(fallback.contains("/v1/images/win11/1/vmlinuz"))
            #expect(fallback.contains("icbd.disk=\(deployment.base)/v1/images/win11/1/disk.raw"))
            let bad = try await deployment.request("/boot/not-a-mac.ipxe")
            #expect(bad.status == 400)

            // The kernel the script names is served.
            #expect(try await deployment.request("/v1/images/linux/1/vmlinuz").body == Self.kernel)

            #expect(try await deployment.request("/healthz").status == 200)
            #expect(try await deployment.request("/readyz").status == 200)
            let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            #expect(metrics.contains("icbd_gateway_requests_total"))
            #expect(metrics.contains("icbd_gateway_upstream_chunks_total{node=\"repo-hq\""))
            let status = try await deployment.request("/")
            let page = String(decoding: status.body, as: UTF8.self)
            #expect(status.status == 200 && status.headers["content-type"]?.hasPrefix("text/html") == true)
            for expected in ["repo-hq", "win11", "linux", "hq", "10.1.0.0/16", "admission limit"] {
                #expect(page.contains(expected), "\(expected)")
            }
        }
    }

    @Test func aDeadCacheIsSkippedWithinTheResponseAndEjected() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 6)
            try await deployment.publish("win11", [("disk.raw", disk)])
            // A cache node that the catalog believes up but that refuses connections: every
            // chunk is tried there first (the only cache of the site), then at the repository.
            _ = try await deployment.catalog.unary(
                CatalogMethods.registerNode,
                .with {
                    $0.name = "cache-dead"
                    $0.role = .cache
                    $0.site = "hq"
                    $0.rpcAddress = "127.0.0.1:1"
                    $0.heartbeatTtlMs = 3_600_000
                })
            try await deployment.waitUntil("the gateway sees the dead cache") {
                String(decoding: try await deployment.request("/").body, as: UTF8.self).contains("cache-dead")
            }
            let answer = try await deployment.request("/v1/images/win11/1/disk.raw")
            #expect(answer.status == 200)
            #expect(answer.body == disk)
            let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            #expect(metrics.contains("icbd_gateway_upstream_errors_total{node=\"cache-dead\"}"))
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("ejected"))
        }
    }
}
