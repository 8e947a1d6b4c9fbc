import Foundation
import Gateway
import ICBDCore
import ICBDProcess
import ICBDTestSupport
import Testing

/// Boot-storm admission and real HTTP clients (curl, qemu's curl block driver).
@Suite("Gateway admission and real clients", .serialized, .requiresLoopBtrfs)
struct AdmissionAndClientTests {
    @Test func beyondTheLimitUpstreamReadsGet503WhileCachedReadsFlow() async throws {
        try await GatewayDeployment.with(configure: { $0.admissionLimit = 1; $0.readAhead = 2 }) { deployment in
            let disk = sampleDisk(mebibytes: 40)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let url = deployment.base + "/v1/images/win11/1/disk.raw"
            // Chunk 0 in the gateway's memory: asked for whole (a part of a chunk asked for once is
            // read as a part and not kept; the slow client's read of it may still be in flight).
            #expect(try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=0-\((1 << 20) - 1)")]).status == 206)
            // A slow client holds the one upstream slot.
            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("curl-\(UUID())")
            defer { try? FileManager.default.removeItem(at: scratch.appendingPathExtension("out")) }
            defer { try? FileManager.default.removeItem(at: scratch.appendingPathExtension("err")) }
            let slow = try await ChildRun(
                "/usr/bin/curl", ["-s", "-o", "/dev/null", "--limit-rate", "20K", url],
                stdout: scratch.appendingPathExtension("out"), stderr: scratch.appendingPathExtension("err"))
            // SIGKILL: the test process blocks SIGTERM (service lifecycle), and children inherit that.
            defer { slow.send(SIGKILL) }
            try await deployment.waitUntil("the slow client holds the slot") {
                String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                    .contains("icbd_gateway_upstream_responses_in_flight 1")
            }
            let refused = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(39 << 20)-\((39 << 20) + 99)")])
            #expect(refused.status == 503)
            #expect(refused.headers["retry-after"] == "2")
            let cached = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=10-19")])
            #expect(cached.status == 206 && cached.body == Array(disk[10...19]))
            let zeros = try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(3 << 20)-\((3 << 20) + 9)")])
            #expect(zeros.status == 206 && zeros.body == [UInt8](repeating: 0, count: 10))
            let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            #expect(metrics.contains("icbd_gateway_admissions_rejected_total 1"))
            slow.send(SIGKILL)
            _ = try await slow.exit()
            try await deployment.waitUntil("the slot is free again") {
                try await deployment.request("/v1/images/win11/1/disk.raw", headers: [("Range", "bytes=\(39 << 20)-\((39 << 20) + 99)")]).status == 206
            }
        }
    }

    /// Runs a qemu tool that reads over HTTP, once more if it stalls. Debian 12's qemu 7.2 curl
    /// block driver sometimes stops for good mid-read with requests pending, polling none of its
    /// sockets (seen 2026-11-28: `ppoll` on its signalfd and eventfds only, no timer, its
    /// connections to the gateway idle), so no server could wake it; 12 MiB take well under a
    /// second, so a run still going after a minute is that stall.
    static func qemu(_ tool: String, _ arguments: [String]) async throws -> (exit: ChildRun.Exit, stdout: String, stderr: String) {
        let first = try await ChildRun.run(tool, arguments, killAfter: .seconds(60))
        guard first.exit == .init(code: SIGKILL, bySignal: true) else { return first }
        print("\(tool) stalled for a minute (qemu's curl driver polling none of its sockets); running it once more")
        return try await ChildRun.run(tool, arguments, killAfter: .seconds(60))
    }

    @Test(.requiresProgram("/usr/bin/qemu-img", installedBy: "scripts/bootstrap installs qemu-utils and qemu-block-extra"))
    func qemuReadsADiskImageThroughTheGateway() async throws {
        try await GatewayDeployment.with { deployment in
            let disk = sampleDisk(mebibytes: 12, tail: 0)
            try await deployment.publish("win11", [("disk.raw", disk)])
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("qemu-\(UUID()).raw").path
            defer { try? FileManager.default.removeItem(atPath: output) }
            let source = "json:{\"file.driver\":\"http\",\"file.url\":\"\(deployment.base)/v1/images/win11/1/disk.raw\",\"file.readahead\":0}"
            // Awaited, not waited for: a blocked thread could be one the in-process gateway needs.
            let convert = try await Self.qemu("/usr/bin/qemu-img", ["convert", "-f", "raw", "-O", "raw", source, output])
            #expect(convert.exit == .init(code: 0, bySignal: false), "\(convert.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: output)) == Data(disk))

            let read = try await Self.qemu("/usr/bin/qemu-io", ["-r", "-f", "raw", "-c", "read -P 0 \(3 << 20) 1M", source])
            #expect(read.exit == .init(code: 0, bySignal: false), "\(read.stderr)")
            #expect(read.stdout.contains("read 1048576/1048576 bytes"), "\(read.stdout)")
        }
    }
}
