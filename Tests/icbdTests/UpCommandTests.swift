import Foundation
import ICBDTestSupport
import Testing

/// `icbd up`, the local deployment of README's Quick start, as an operator starts and stops it.
@Suite("icbd up")
struct UpCommandTests {
    /// `icbd up --rollout-demo` (docs/operations.md "Rolling out a new version"): the deployment
    /// comes up, a next version whose kernel does not start is rolled out to tag `stable`, the
    /// rollout rolls back by itself, every storm workstation boots the old version with every byte
    /// checked, and Ctrl-C stops everything and unmounts the repositories.
    @Test(.requiresLoopBtrfs, .timeLimit(.minutes(10)))
    func theRolloutDemoRollsABadVersionBackAndEveryWorkstationBootsTheOldOne() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-up-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let deploy = directory.appendingPathComponent("deploy").path
        let up = try await ServiceProcess(
            ["up", "--dir", deploy, "--disk-size", "64MiB", "--gateway-port", "0", "--rollout-demo"], in: directory)
        let output: String
        do {
            output = try await Self.demoOutput(of: up)
        } catch {
            _ = try? await up.stop(with: SIGINT)
            throw error
        }
        let storm = try #require(output.split(separator: "\n").first { $0.contains("storm: ") }, "no storm line in:\n\(output)")
        #expect(storm.contains("storm: 40/40 workstations booted") && storm.contains("booted version 1: 40"), "\(storm)")
        #expect(storm.contains("boots of version 2 started over"), "\(storm)")
        let rollout = try #require(output.split(separator: "\n").first { $0.contains("sample  stable") }, "no rollout in:\n\(output)")
        #expect(rollout.contains("rolled_back") && rollout.contains("boots of version 2 failed"), "\(rollout)")

        #expect(try await up.stop(with: SIGINT) == 0, "icbd up ends cleanly on Ctrl-C: \(up.stderr)")
        let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
        #expect(!mounts.contains(deploy), "the repositories' loop mounts are gone")
    }

    /// Everything `up` printed, once the demo's last line is out; fails if `up` exits first.
    private static func demoOutput(of up: ServiceProcess) async throws -> String {
        while up.isRunning {
            let output = try String(contentsOf: up.stdoutFile, encoding: .utf8)
            if output.contains("The rollout ended by itself") { return output }
            try await Task.sleep(for: .milliseconds(200))
        }
        let output = (try? String(contentsOf: up.stdoutFile, encoding: .utf8)) ?? ""
        throw CommandError("icbd up exited before its rollout demo ended:\n\(output)\n\(up.stderr)")
    }
}
