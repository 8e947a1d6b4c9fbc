import Catalog
import CatalogClient
import Foundation
import Gateway
import ICBDCore
import ICBDProcess
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import SwiftProtobuf
import Testing

/// A real iPXE firmware (Debian's `ipxe-qemu` in `qemu-system-x86`, TCG, user networking) boots
/// through the gateway on the host's loopback: a workstation without an assignment prints the
/// reason on its serial console and waits, then boots by itself once it is assigned.
@Suite("Gateway with a real iPXE firmware", .serialized, .requiresLoopBtrfs)
struct IPXEFirmwareTests {
    static let mac = "52:54:00:12:34:56"

    @Test(.requiresProgram("/usr/bin/qemu-system-x86_64", installedBy: "scripts/bootstrap installs qemu-system-x86 and ipxe-qemu"))
    func anUnassignedWorkstationSaysWhyThenBootsOnceAssignedWithoutAReset() async throws {
        #expect(FileManager.default.fileExists(atPath: "/usr/lib/ipxe/qemu/efi-e1000.rom"), "scripts/bootstrap installs ipxe-qemu")
        try await GatewayDeployment.with(configure: {
            $0.boots.waitingRetry = .seconds(2)
            $0.boots.settleQuietTime = .seconds(5)
        }) { deployment in
            // Inside the VM the host's loopback is 10.0.2.2. The "kernel" is an iPXE script (iPXE
            // runs any image it loaded with `kernel`): it reads the disk, then sends the booted signal.
            let gateway = "http://10.0.2.2:\(deployment.port)"
            let kernel = """
                #!ipxe
                echo icbd-test: the kernel runs on ${mac}
                imgfetch --name disk \(gateway)/v1/images/linux/1/disk.raw
                echo icbd-test: the disk was read
                imgfetch --name up \(gateway)/boot/${mac}/up || echo icbd-test: the signal brought no image
                echo icbd-test: up

                """
            try await deployment.publish("linux", [("vmlinuz", Array(kernel.utf8)), ("initrd.img", GatewayHTTPTests.initrd), ("disk.raw", sampleDisk(mebibytes: 2))])

            let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("ipxe-\(UUID())")
            try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: scratch) }
            // What a site's DHCP/TFTP hands iPXE: a script that chains the gateway's, by MAC.
            try Data("#!ipxe\nchain \(gateway)/boot/${mac}.ipxe\n".utf8).write(to: scratch.appendingPathComponent("boot.ipxe"))
            let qemu = try await ChildRun(
                "/usr/bin/qemu-system-x86_64",
                [
                    "-accel", "tcg", "-m", "64", "-nographic", "-no-reboot", "-boot", "n",
                    "-netdev", "user,id=n0,tftp=\(scratch.path),bootfile=boot.ipxe", "-device", "e1000,netdev=n0,mac=\(Self.mac)",
                ],
                stdout: scratch.appendingPathComponent("console"), stderr: scratch.appendingPathComponent("stderr"))
            // SIGKILL: the test process blocks SIGTERM (service lifecycle), and children inherit that.
            defer { qemu.send(SIGKILL) }
            func console() -> String { qemu.stdout.replacingOccurrences(of: "\r", with: "") }

            // (Bounds against hangs: TCG on a shared machine takes seconds to reach iPXE.)
            try await deployment.waitUntil("the console says why the workstation cannot boot", seconds: 120) {
                console().contains("icbd: asking again in 2 s")
            }
            #expect(console().contains("icbd: no image is assigned to \(Self.mac) and site hq has no default image"), "\(console())")
            #expect(console().contains("icbd: assign an image with: icbd assign \(Self.mac) IMAGE[:REF]"), "\(console())")
            #expect(!console().contains("No bootable device"), "\(console())")
            let waiting = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            #expect(BootTrackingTests.sample(waiting, "icbd_boots_waiting", ["site": "hq"]) == 1)

            // What `icbd assign 52:54:00:12:34:56 linux` does; the firmware asks again by itself.
            _ = try await deployment.catalog.unary(CatalogMethods.assign, .with { $0.mac = Self.mac; $0.image = "linux" })
            try await deployment.waitUntil("the workstation boots its image", seconds: 120) {
                console().contains("icbd-test: the disk was read")
            }
            try await deployment.waitUntil("the gateway records the boot as booted", seconds: 60) {
                let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
                return BootTrackingTests.sample(metrics, "icbd_boots_total", BootTrackingTests.linux1.merging(["outcome": "booted"]) { $1 }) == 1
            }
            let metrics = String(decoding: try await deployment.request("/metrics").body, as: UTF8.self)
            for phase in ["script", "loaded", "booted"] {
                #expect(BootTrackingTests.sample(metrics, "icbd_boot_seconds_count", BootTrackingTests.linux1.merging(["phase": phase]) { $1 }) == 1, "\(phase)")
            }
            #expect(BootTrackingTests.sample(metrics, "icbd_boots_waiting", ["site": "hq"]) == 0)
            let page = String(decoding: try await deployment.request("/").body, as: UTF8.self)
            #expect(page.contains("<td>\(Self.mac)</td><td>127.0.0.1</td><td>hq</td><td>linux:1</td><td>booted</td>"), "\(page)")
            #expect(console().components(separatedBy: "asking again").count >= 2, "it waited, asking again without a reset: \(console())")
            #expect(!console().contains("SeaBIOS (version") || console().components(separatedBy: "SeaBIOS (version").count == 2, "one power-on only")
            qemu.send(SIGKILL)
            _ = try await qemu.exit()
        }
    }
}
