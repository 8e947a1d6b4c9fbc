import AsyncHTTPClient
import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDSample
import ICBDStorm
import ICBDTestSupport
import NIOCore
import NIOHTTP1
import SwiftProtobuf
import Testing

/// Staged rollouts through real gateways in front of a real cache node and repository
/// (docs/catalog.md "Rollouts"): workstations (told apart by their address, through a trusted
/// proxy) boot as firmware and OS would, the gateway reports their boots to the catalog, and the
/// catalog grows the slice or rolls it back.
@Suite("Gateway: staged rollouts judged by boots", .serialized, .requiresLoopBtrfs)
struct RolloutTests {
    static func configure(_ configuration: inout GatewayConfiguration) {
        BootTrackingTests.configure(&configuration)
        configuration.boots.reportInterval = .milliseconds(100)
    }

    static let v1: [(String, [UInt8])] = [
        ("vmlinuz", GatewayHTTPTests.kernel), ("initrd.img", GatewayHTTPTests.initrd), ("disk.raw", sampleDisk(mebibytes: 2, seed: 1)),
    ]
    static let v2: [(String, [UInt8])] = [
        ("vmlinuz", GatewayHTTPTests.kernel), ("initrd.img", GatewayHTTPTests.initrd), ("disk.raw", sampleDisk(mebibytes: 2, seed: 2)),
    ]
    /// A version whose kernel was cut short: the firmware loads it and cannot start it.
    static let truncatedKernel: [(String, [UInt8])] = [
        ("vmlinuz", Array(GatewayHTTPTests.kernel.prefix(7))), ("initrd.img", GatewayHTTPTests.initrd),
        ("disk.raw", sampleDisk(mebibytes: 2, seed: 3)),
    ]

    /// A workstation at `address` that boots from the gateway at `base`.
    struct Station: CustomStringConvertible {
        let mac: MACAddress
        let address: String
        var description: String { "\(mac)" }
    }

    /// One HTTP exchange with the gateway at `base`, as from `station`.
    static func get(_ deployment: GatewayDeployment, _ base: String, _ path: String, from station: Station, range: String? = nil)
        async throws -> (status: Int, body: [UInt8])
    {
        var request = HTTPClientRequest(url: path.hasPrefix("http") ? path : base + path)
        request.headers.add(name: "X-Forwarded-For", value: station.address)
        if let range { request.headers.add(name: "Range", value: range) }
        let response = try await deployment.http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        return (Int(response.status.code), Array(body.readableBytesView))
    }

    /// The script `station` gets and the version it names.
    static func script(_ deployment: GatewayDeployment, _ base: String, _ station: Station) async throws -> (text: String, version: Int64) {
        let answer = try await get(deployment, base, "/boot/\(station.mac).ipxe", from: station)
        let text = String(decoding: answer.body, as: UTF8.self)
        guard answer.status == 200, let line = text.split(separator: "\n").first(where: { $0.hasPrefix("# ") }),
            let version = line.split(separator: " ").last.flatMap({ Int64($0) })
        else { throw DeploymentError("no boot script for \(station): \(answer.status) \(text)") }
        return (text, version)
    }

    /// One boot as firmware and OS make it: the script, its kernel and initrd; a kernel that is
    /// not whole cannot start, and the machine starts over (the next boot asks for the script
    /// again); otherwise a few disk reads and the booted signal. Returns the version booted and
    /// whether it came up.
    static func boot(_ deployment: GatewayDeployment, _ base: String, _ station: Station) async throws -> (version: Int64, up: Bool) {
        let (text, version) = try await script(deployment, base, station)
        var kernel: [UInt8] = []
        for line in text.split(separator: "\n") where line.hasPrefix("kernel ") || line.hasPrefix("initrd ") {
            let answer = try await get(deployment, base, String(line.split(separator: " ")[1]), from: station)
            #expect(answer.status == 200)
            if line.hasPrefix("kernel ") { kernel = answer.body }
        }
        guard kernel == GatewayHTTPTests.kernel else { return (version, false) }
        for index in 0..<3 {
            let start = index * 300_000
            let answer = try await get(
                deployment, base, "/v1/images/linux/\(version)/disk.raw", from: station, range: "bytes=\(start)-\(start + 65535)")
            #expect(answer.status == 206)
        }
        #expect(try await get(deployment, base, "/boot/\(station.mac)/up", from: station).status == 204)
        return (version, true)
    }

    /// Publishes `versions` of `linux`, tags version 1 `stable`, and starts a rollout of `stable`
    /// to version 2; returns it.
    static func prepare(
        _ deployment: GatewayDeployment, _ versions: [[(String, [UInt8])]], steps: [Int32], minBoots: Int64, maxSlowdown: Double = 1000
    ) async throws -> RolloutRecord {
        for files in versions { try await deployment.publish("linux", files) }
        _ = try await deployment.catalog.unary(CatalogMethods.moveTag, .with { $0.image = "linux"; $0.tag = "stable"; $0.version = 1 })
        let started = try await deployment.catalog.unary(
            CatalogMethods.startRollout,
            .with {
                $0.image = "linux"
                $0.tag = "stable"
                $0.version = 2
                $0.steps = steps
                $0.minBoots = minBoots
                $0.maxSlowdown = maxSlowdown
            })
        return try RolloutRecord(wire: started.rollout)
    }

    /// `count` workstations of site hq whose position in `rollout` lies in `positions`, each
    /// assigned `linux:stable`.
    static func stations(
        _ deployment: GatewayDeployment, _ rollout: RolloutRecord, in positions: Range<Int>, count: Int, from first: Int
    ) async throws -> [Station] {
        var found: [Station] = []
        var candidate = first
        while found.count < count {
            let mac = try MACAddress(parsing: String(format: "52:54:00:a0:%02x:%02x", candidate >> 8, candidate & 0xff))
            if positions.contains(RolloutRecord.position(of: mac, in: rollout.id)) {
                found.append(Station(mac: mac, address: "10.1.\(candidate >> 8).\(candidate & 0xff)"))
                _ = try await deployment.catalog.unary(CatalogMethods.assign, .with { $0.mac = mac.description; $0.image = "linux"; $0.ref = "stable" })
            }
            candidate += 1
        }
        return found
    }

    /// The rollout of `linux:stable` as the catalog has it.
    static func rollout(_ deployment: GatewayDeployment) async throws -> RolloutRecord {
        let listed = try await deployment.catalog.allPages(CatalogMethods.listRollouts, .init())
        return try RolloutRecord(wire: try #require(listed.rollouts.first))
    }

    /// Waits until the gateway at `base` has applied the catalog's changes up to now.
    static func caughtUp(_ deployment: GatewayDeployment, _ base: String) async throws {
        let revision = try await deployment.catalog.unary(CatalogMethods.listSites, .init()).revision
        try await deployment.waitUntil("the gateway at \(base) reaches revision \(revision)") {
            var request = HTTPClientRequest(url: base + "/")
            request.method = .GET
            let response = try await deployment.http.execute(request, timeout: .seconds(10))
            let page = String(decoding: Array(try await response.body.collect(upTo: 16 << 20).readableBytesView), as: UTF8.self)
            guard let start = page.range(of: "catalog revision <b>") else { return false }
            return Int64(page[start.upperBound...].prefix { $0.isNumber }).map { $0 >= revision } ?? false
        }
    }

    @Test func aRolloutAdvancesThroughItsStepsWhileTheSlicesBootsAreHealthy() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            let started = try await Self.prepare(deployment, [Self.v1, Self.v2], steps: [1000, 5000, 10_000], minBoots: 2)
            let first = try await Self.stations(deployment, started, in: 0..<1000, count: 2, from: 0)
            let second = try await Self.stations(deployment, started, in: 1000..<5000, count: 2, from: 0)
            let rest = try await Self.stations(deployment, started, in: 5000..<10_000, count: 2, from: 0)
            let base = deployment.base

            // Step 1, 10 %: the first slice boots version 2, everyone else version 1 (first: the
            // first slice's boots are the step's minimum, and the slice grows right after them).
            try await Self.caughtUp(deployment, base)
            for station in second + rest { #expect(try await Self.boot(deployment, base, station) == (1, true), "\(station)") }
            for station in first { #expect(try await Self.boot(deployment, base, station) == (2, true), "\(station)") }
            try await deployment.waitUntil("the rollout reaches step 2") { try await Self.rollout(deployment).step == 1 }

            // Step 2, 50 %: the second slice joins the first, which stays on version 2 (two
            // boots of version 2 are the step's minimum: one of each slice).
            try await Self.caughtUp(deployment, base)
            for station in rest { #expect(try await Self.boot(deployment, base, station) == (1, true), "\(station)") }
            for station in [second[0], first[0]] { #expect(try await Self.boot(deployment, base, station) == (2, true), "\(station)") }
            try await deployment.waitUntil("the rollout reaches step 3") { try await Self.rollout(deployment).step == 2 }

            // Step 3, 100 %: everyone; its boots complete the rollout and the tag moves.
            try await Self.caughtUp(deployment, base)
            for station in first + second + rest { #expect(try await Self.boot(deployment, base, station) == (2, true), "\(station)") }
            try await deployment.waitUntil("the rollout completes") { try await Self.rollout(deployment).state == .completed }
            let image = try await deployment.catalog.allPages(CatalogMethods.getImage, .with { $0.name = "linux" })
            #expect(image.tags.first { $0.name == "stable" }?.version == 2)
            #expect(try await Self.rollout(deployment).detail.contains("tag 'stable' points at version 2"))

            // The catalog kept every boot, with the gateway that saw it.
            try await deployment.waitUntil("the catalog has all 16 boots") {
                try await deployment.catalog.unary(CatalogMethods.listBoots, .with { $0.image = "linux" }).boots.count == 16
            }
            let boots = try await deployment.catalog.unary(CatalogMethods.listBoots, .with { $0.image = "linux" }).boots
            let asReported = boots.filter { boot in boot.gateway == "gw-hq" && boot.site == "hq" && boot.outcome == .booted && boot.hasUpMs }
            #expect(asReported.count == boots.count)
            let ofVersion2 = boots.count { $0.version == 2 }
            #expect(ofVersion2 == 10, "2 + 2 + 6 boots of version 2")
        }
    }

    @Test func aRolloutWhoseNewVersionCannotBootRollsBackByItselfAndOthersNeverSeeIt() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            let started = try await Self.prepare(deployment, [Self.v1, Self.truncatedKernel], steps: [1000, 10_000], minBoots: 2)
            let slice = try await Self.stations(deployment, started, in: 0..<1000, count: 3, from: 0)
            let rest = try await Self.stations(deployment, started, in: 1000..<10_000, count: 3, from: 0)
            let base = deployment.base
            try await Self.caughtUp(deployment, base)

            // Outside the slice: version 1, booting fine.
            for station in rest { #expect(try await Self.boot(deployment, base, station) == (1, true), "\(station)") }
            // In the slice: version 2, whose kernel does not start; each machine starts over
            // (which ends its boot as failed) until it is given a version that boots.
            var seen: [MACAddress: [Int64]] = [:]
            for station in slice {
                let (version, up) = try await Self.boot(deployment, base, station)
                #expect(version == 2 && !up, "\(station)")
                seen[station.mac] = [version]
            }
            for station in slice {
                for _ in 0..<200 {
                    let (version, up) = try await Self.boot(deployment, base, station)
                    seen[station.mac, default: []].append(version)
                    if up { break }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let rollout = try await Self.rollout(deployment)
            #expect(rollout.state == .rolledBack)
            #expect(rollout.detail.contains("boots of version 2 failed"), "\(rollout.detail)")
            for station in slice {
                #expect(seen[station.mac]?.first == 2 && seen[station.mac]?.last == 1, "\(station): \(seen[station.mac] ?? [])")
            }
            // Back on version 1 for everyone; the tag never moved.
            try await Self.caughtUp(deployment, base)
            for station in slice + rest { #expect(try await Self.script(deployment, base, station).version == 1, "\(station)") }
            let image = try await deployment.catalog.allPages(CatalogMethods.getImage, .with { $0.name = "linux" })
            #expect(image.tags.first { $0.name == "stable" }?.version == 1)
            #expect(image.rollouts.first?.state == .rolledBack)
            // The gateway's status page says so.
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("<td>linux</td><td>stable</td><td>1 → 2</td><td>every</td><td>1/2 (10 %)</td><td>rolled_back</td>"), "\(page)")
            // The failures are kept as the gateway reported them.
            let failed = try await deployment.catalog.unary(CatalogMethods.listBoots, .with { $0.image = "linux" }).boots.filter { $0.version == 2 }
            #expect(failed.count >= 2)
            #expect(failed.filter { boot in boot.outcome == .failed && boot.failure == "restarted" }.count == failed.count)
        }
    }

    @Test func aGatewayRestartedMidRolloutChangesNobodysVersion() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            // A rollout that never advances: its 50 % slice stays as it is.
            let started = try await Self.prepare(deployment, [Self.v1, Self.v2], steps: [5000, 10_000], minBoots: 1000)
            let slice = try await Self.stations(deployment, started, in: 0..<5000, count: 4, from: 0)
            let rest = try await Self.stations(deployment, started, in: 5000..<10_000, count: 4, from: 0)
            let expected = Dictionary(uniqueKeysWithValues: slice.map { ($0.mac, Int64(2)) } + rest.map { ($0.mac, Int64(1)) })

            // A second gateway of the site, started, used, stopped and started again.
            var configuration = GatewayConfiguration(
                listen: HostPort(host: "127.0.0.1", port: 0), site: try Name("hq"), catalog: deployment.catalogAddress,
                tls: try deployment.mint(.gateway, "gw-hq-2"), name: "gw-hq-2")
            Self.configure(&configuration)
            for run in 1...2 {
                let gateway = try GatewayService(configuration: configuration, logger: quietLogger())
                try await withRunningServices(gateway.services, logger: quietLogger()) {
                    let base = "http://127.0.0.1:\(try await gateway.localAddress().port ?? 0)"
                    try await Self.caughtUp(deployment, base)
                    for station in slice + rest {
                        #expect(try await Self.script(deployment, base, station).version == expected[station.mac], "run \(run): \(station)")
                        if run == 1 { _ = try await Self.boot(deployment, base, station) }
                    }
                }
            }
            // The site's other gateway agrees.
            for station in slice + rest {
                #expect(try await Self.script(deployment, deployment.base, station).version == expected[station.mac], "\(station)")
            }
            let rollout = try await Self.rollout(deployment)
            #expect(rollout.state == .active && rollout.step == 0 && rollout.id == started.id)
        }
    }

    @Test func aStormWhoseNewVersionCannotBootRollsTheRolloutBackAndEveryWorkstationBootsTheOldOne() async throws {
        try await GatewayDeployment.with(caches: [("cache-hq-1", "hq")], configure: Self.configure) { deployment in
            func files(_ template: SampleTemplate) -> [(String, [UInt8])] {
                [("vmlinuz", Array(template.kernel)), ("initrd.img", Array(template.initrd)), ("disk.raw", template.disk.bytes(at: 0, count: Int(template.diskSize)))]
            }
            let template = SampleTemplate(diskSize: 8 << 20, kernelSize: 64 << 10, initrdSize: 128 << 10)
            var changed = template
            changed.changedMiB = 2
            _ = try await Self.prepare(deployment, [files(template), files(changed)], steps: [2500, 10_000], minBoots: 3)
            // The storm's workstations are assigned the tag; each comes from its own address.
            for index in 0..<24 {
                let mac = String(format: "52:54:00:%02x:%02x:%02x", (0x10_0000 + index) >> 16, ((0x10_0000 + index) >> 8) & 0xFF, (0x10_0000 + index) & 0xFF)
                _ = try await deployment.catalog.unary(CatalogMethods.assign, .with { $0.mac = mac; $0.image = "linux"; $0.ref = "stable" })
            }
            try await Self.caughtUp(deployment, deployment.base)

            var storm = BootStorm(
                gateway: deployment.base, workstations: 24,
                expected: ExpectedTemplate(template: template, trace: BootTrace(diskSize: template.diskSize, fraction: 0.03)))
            storm.clientAddresses = try CIDR(parsing: "10.1.0.0/16")
            storm.failVersion = 2
            storm.restartDelay = .milliseconds(100)
            storm.maximumRestarts = 150
            storm.sendsBootedSignal = true
            let outcome = try await storm.run()
            #expect(outcome.failures.isEmpty, "\(outcome.failures)")
            #expect(outcome.versions == [1: 24], "every workstation boots version 1 in the end, every byte checked")
            #expect(outcome.restarts >= 3, "the slice's boots of version 2 started over")
            let rollout = try await Self.rollout(deployment)
            #expect(rollout.state == .rolledBack && rollout.detail.contains("boots of version 2 failed"), "\(rollout.detail)")
        }
    }
}
