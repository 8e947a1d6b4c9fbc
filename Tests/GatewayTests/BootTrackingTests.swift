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

/// Boots followed through a real gateway in front of a real cache node and repository
/// (docs/gateway.md "Boots"). Workstations are told apart by their address, sent through a
/// trusted proxy (`X-Forwarded-For` from 127.0.0.1), as behind a site's reverse proxy.
@Suite("Gateway boot tracking and waiting scripts", .serialized, .requiresLoopBtrfs)
struct BootTrackingTests {
    static let files: [(String, [UInt8])] = [
        ("vmlinuz", GatewayHTTPTests.kernel), ("initrd.img", GatewayHTTPTests.initrd), ("disk.raw", sampleDisk(mebibytes: 4)),
    ]

    static func configure(_ configuration: inout GatewayConfiguration) {
        configuration.trustedProxies = (try? CIDR(parsing: "127.0.0.1/32")).map { [$0] } ?? []
        // Long enough that a boot's own reads, on a loaded machine, never leave a gap this long
        // (its boot would settle before its booted signal); short enough to wait for.
        configuration.boots.settleQuietTime = .seconds(3)
        configuration.boots.sweepInterval = .milliseconds(50)
        configuration.boots.waitingRetry = .seconds(1)
    }

    /// A workstation at `address`: what iPXE and the boot layer would ask.
    struct Workstation {
        let deployment: GatewayDeployment
        let mac: String
        let address: String

        func get(_ path: String, headers: [(String, String)] = []) async throws -> (status: Int, headers: [String: String], body: [UInt8]) {
            try await deployment.request(path, headers: headers + [("X-Forwarded-For", address)])
        }

        func script() async throws -> (status: Int, text: String) {
            let answer = try await get("/boot/\(mac).ipxe")
            return (answer.status, String(decoding: answer.body, as: UTF8.self))
        }

        /// The script, then every URL its `kernel` and `initrd` lines name, then `reads` 64 KiB disk reads.
        func boot(reads: Int) async throws {
            let (status, text) = try await script()
            #expect(status == 200 && text.contains("\nboot\n"), "\(text)")
            for line in text.split(separator: "\n") where line.hasPrefix("kernel ") || line.hasPrefix("initrd ") {
                let url = String(line.split(separator: " ")[1])
                let answer = try await get(String(url.dropFirst(deployment.base.count)))
                #expect(answer.status == 200 && !answer.body.isEmpty, "\(url)")
            }
            for index in 0..<reads {
                let start = index * 200_000
                let answer = try await get("/v1/images/linux/1/disk.raw", headers: [("Range", "bytes=\(start)-\(start + 65535)")])
                #expect(answer.status == 206)
            }
        }
    }

    /// Assigns `image` to `mac` and waits until the gateway's view has the assignment (by
    /// revision: asking for the script would itself start a boot).
    static func assign(_ mac: String, _ image: String, in deployment: GatewayDeployment) async throws {
        let assigned = try await deployment.catalog.unary(CatalogMethods.assign, .with { $0.mac = mac; $0.image = image })
        try await deployment.waitUntil("the gateway has the assignment") {
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            guard let start = page.range(of: "catalog revision <b>") else { return false }
            return Int64(page[start.upperBound...].prefix { $0.isNumber }).map { $0 >= assigned.revision } ?? false
        }
    }

    /// The value of the sample of `name` whose labels include every one of `labels`; nil if none.
    static func sample(_ metrics: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in metrics.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            let head = line.prefix { $0 != " " }
            guard labels.allSatisfy({ head.contains("\($0.key)=\"\($0.value)\"") }) else { continue }
            return line.split(separator: " ").last.flatMap { Double($0) }
        }
        return nil
    }

    static func metrics(_ deployment: GatewayDeployment) async throws -> String {
        String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
    }

    static let linux1 = ["site": "hq", "image": "linux", "version": "1"]

    @Test func bootsAreRecordedWithTheirPhasesWithAndWithoutTheBootedSignal() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            try await deployment.publish("linux", Self.files)
            let signalling = Workstation(deployment: deployment, mac: "52:54:00:00:00:11", address: "10.1.0.11")
            let silent = Workstation(deployment: deployment, mac: "52:54:00:00:00:12", address: "10.1.0.12")
            for workstation in [signalling, silent] { try await Self.assign(workstation.mac, "linux", in: deployment) }

            // One that sends the booted signal once its OS is up.
            try await signalling.boot(reads: 8)
            let up = try await signalling.get("/boot/52%3A54%3A00%3A00%3A00%3A11/up")
            #expect(up.status == 204 && up.body.isEmpty)
            var metrics = try await Self.metrics(deployment)
            for phase in ["script", "loaded", "booted"] {
                #expect(Self.sample(metrics, "icbd_boot_seconds_count", Self.linux1.merging(["phase": phase]) { $1 }) == 1, "\(phase)\n\(metrics)")
            }
            #expect(Self.sample(metrics, "icbd_boot_seconds_count", ["phase": "settled"]) == nil)
            #expect(Self.sample(metrics, "icbd_boots_total", Self.linux1.merging(["outcome": "booted"]) { $1 }) == 1)

            // One that never does: its boot settles once its disk reads stop, and is not "booted".
            try await silent.boot(reads: 8)
            try await deployment.waitUntil("the silent workstation's boot settles", seconds: 30) {
                Self.sample(try await Self.metrics(deployment), "icbd_boots_total", Self.linux1.merging(["outcome": "settled"]) { $1 }) == 1
            }
            metrics = try await Self.metrics(deployment)
            for (phase, count) in [("script", 2.0), ("loaded", 2), ("booted", 1), ("settled", 1)] {
                #expect(Self.sample(metrics, "icbd_boot_seconds_count", Self.linux1.merging(["phase": phase]) { $1 }) == count, "\(phase)")
            }
            #expect(Self.sample(metrics, "icbd_boot_failures_total") == nil, "no boot failed")

            // The status page: both boots, with what they read, and the version's success rate.
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            for expected in [
                "<td>52:54:00:00:00:11</td><td>10.1.0.11</td><td>hq</td><td>linux:1</td><td>booted</td>",
                "<td>52:54:00:00:00:12</td><td>10.1.0.12</td><td>hq</td><td>linux:1</td><td>settled</td>",
                "<tr><td>linux</td><td>1</td><td>2</td><td>100.0 %</td><td>0</td>",
            ] {
                #expect(page.contains(expected), "\(expected)")
            }
            // Kernel (19 B), initrd (3000 B) and 8 × 64 KiB: 527,307 bytes.
            #expect(page.components(separatedBy: "<td>514.9 KiB</td>").count == 3, "bytes read, each boot")
            #expect(page.components(separatedBy: " (8)</td>").count == 3, "8 disk reads with their latency, each boot")
        }
    }

    /// A read the event loop cannot answer at once (its chunk is not in memory) goes the long
    /// way and counts once: the boot still settles when its reads stop.
    @Test func aBootWhoseReadsGoTheLongWaySettles() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            try await deployment.publish("linux", Self.files)
            let workstation = Workstation(deployment: deployment, mac: "52:54:00:00:00:21", address: "10.1.0.21")
            try await Self.assign(workstation.mac, "linux", in: deployment)
            // Another client's read: the gateway now holds the disk's manifest, and of its
            // chunks only the first.
            #expect(try await deployment.request("/v1/images/linux/1/disk.raw", headers: [("Range", "bytes=0-0")]).status == 206)
            try await workstation.boot(reads: 0)
            // Chunk 2 is not in memory: the first read goes the long way, the next from memory.
            for index in 0..<4 {
                let start = (2 << 20) + index * 65536
                let answer = try await workstation.get("/v1/images/linux/1/disk.raw", headers: [("Range", "bytes=\(start)-\(start + 65535)")])
                #expect(answer.status == 206)
            }
            try await deployment.waitUntil("the boot settles", seconds: 30) {
                Self.sample(try await Self.metrics(deployment), "icbd_boots_total", Self.linux1.merging(["outcome": "settled"]) { $1 }) == 1
            }
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains(" (4)</td>"), "4 disk reads with their latency")
        }
    }

    @Test func bootsThatNeverLoadOrStartOverAreCountedAsFailures() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            try await deployment.publish("linux", Self.files)
            let stuck = Workstation(deployment: deployment, mac: "52:54:00:00:00:21", address: "10.1.0.21")
            let restarting = Workstation(deployment: deployment, mac: "52:54:00:00:00:22", address: "10.1.0.22")
            for workstation in [stuck, restarting] { try await Self.assign(workstation.mac, "linux", in: deployment) }
            // Its script, then nothing: iPXE could not fetch the kernel.
            #expect(try await stuck.script().status == 200)
            // A kernel, then the script again: the machine started over before it was up. Its
            // second boot loads, so that it does not fail too (two "not loaded" failures a moment
            // apart would hide the one this test waits for).
            try await restarting.boot(reads: 0)
            try await restarting.boot(reads: 0)
            try await deployment.waitUntil("the stuck boot fails", seconds: 30) {
                Self.sample(try await Self.metrics(deployment), "icbd_boot_failures_total", Self.linux1.merging(["reason": "not_loaded"]) { $1 }) == 1
            }
            let metrics = try await Self.metrics(deployment)
            #expect(Self.sample(metrics, "icbd_boot_failures_total", Self.linux1.merging(["reason": "restarted"]) { $1 }) == 1)
            #expect(Self.sample(metrics, "icbd_boots_total", Self.linux1.merging(["outcome": "failed"]) { $1 }) == 2)
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("<td>52:54:00:00:00:21</td><td>10.1.0.21</td><td>hq</td><td>linux:1</td><td>failed (kernel/initrd not loaded)</td>"))
            #expect(page.contains("<td>52:54:00:00:00:22</td><td>10.1.0.22</td><td>hq</td><td>linux:1</td><td>failed (restarted)</td>"))
        }
    }

    @Test func anUnassignedWorkstationWaitsWithTheReasonThenBootsOnceAssigned() async throws {
        try await GatewayDeployment.with(configure: Self.configure) { deployment in
            try await deployment.publish("linux", Self.files)
            // Any spelling of the MAC and any valid Host: the script holds the MAC as parsed, the
            // Host as checked, and nothing else of the request.
            for (spelling, host) in [("52-54-00-00-00-09", "gw.hq.example:8080"), ("52%3A54%3A00%3A00%3A00%3A09", "10.1.0.5"), ("525400000009", "[::1]:80")] {
                let answer = try await deployment.request("/boot/\(spelling).ipxe", headers: [("Host", host), ("X-Forwarded-For", "10.1.0.9")])
                #expect(answer.status == 200, "iPXE runs a 200's script only")
                #expect(answer.headers["cache-control"] == "no-cache")
                #expect(
                    String(decoding: answer.body, as: UTF8.self) == """
                        #!ipxe
                        echo icbd: no image is assigned to 52:54:00:00:00:09 and site hq has no default image
                        echo icbd: assign an image with: icbd assign 52:54:00:00:00:09 IMAGE[:REF]
                        echo icbd: asking again in 1 s
                        sleep 1
                        chain --replace --autofree http://\(host)/boot/52:54:00:00:00:09.ipxe

                        """)
            }
            var metrics = try await Self.metrics(deployment)
            #expect(Self.sample(metrics, "icbd_boots_waiting", ["site": "hq"]) == 1, "one workstation, asking three times")
            var page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("workstations waiting <b>1</b>"))
            #expect(page.contains("waiting: no image is assigned to 52:54:00:00:00:09"))

            // The operator acts; the workstation's next try boots.
            try await Self.assign("52:54:00:00:00:09", "linux", in: deployment)
            let workstation = Workstation(deployment: deployment, mac: "52:54:00:00:00:09", address: "10.1.0.9")
            try await workstation.boot(reads: 2)
            #expect(try await workstation.get("/boot/52:54:00:00:00:09/up").status == 204)
            metrics = try await Self.metrics(deployment)
            #expect(Self.sample(metrics, "icbd_boots_waiting", ["site": "hq"]) == 0)
            #expect(Self.sample(metrics, "icbd_boots_total", Self.linux1.merging(["outcome": "booted"]) { $1 }) == 1, "one boot, waiting included")
            page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("workstations waiting <b>0</b>"))
            #expect(page.contains("<td>52:54:00:00:00:09</td><td>10.1.0.9</td><td>hq</td><td>linux:1</td><td>booted</td>"))

            // A booted signal names a MAC, nothing else: anything else is refused without an echo.
            let bad = try await deployment.request("/boot/52:54:00:00:00:0g/up")
            #expect(bad.status == 400 && !String(decoding: bad.body, as: UTF8.self).contains("0g"))
        }
    }

    @Test func boundsHoldWithMoreWorkstationsThanTheBound() async throws {
        try await GatewayDeployment.with(configure: {
            Self.configure(&$0)
            $0.boots.maximumWorkstations = 4
            $0.boots.bootsPerWorkstation = 2
        }) { deployment in
            try await deployment.publish("linux", Self.files)
            let macs = (10..<20).map { "52:54:00:00:01:\($0)" }
            for (index, mac) in macs.enumerated() {
                let answer = try await deployment.request("/boot/\(mac).ipxe", headers: [("X-Forwarded-For", "10.1.1.\(index)")])
                #expect(answer.status == 200)
            }
            #expect(Self.sample(try await Self.metrics(deployment), "icbd_boots_waiting", ["site": "hq"]) == 4)
            var page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("workstations waiting <b>4</b>"))
            for (index, mac) in macs.enumerated() {
                #expect(page.contains("<td>\(mac)</td>") == (index >= 6), "\(mac): only the four heard from last are held")
            }

            // One workstation booting five times keeps two finished boots and the one in progress.
            try await Self.assign(macs[9], "linux", in: deployment)
            let workstation = Workstation(deployment: deployment, mac: macs[9], address: "10.1.1.9")
            for _ in 0..<5 { #expect(try await workstation.script().status == 200) }
            page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.components(separatedBy: "<td>\(macs[9])</td>").count - 1 == 3)
            #expect(page.components(separatedBy: "failed (restarted)").count - 1 == 2)
            #expect(page.contains("boots held <b>6</b>"), "three waiting, three of the one booting")
        }
    }
}
