import Foundation
import ICBDCore
import ICBDProcess
import ICBDTestSupport
import Testing

@Suite("A replicator killed during a publish, as real processes on a real BTRFS", .requiresLoopBtrfs)
struct ReplicatorCrashTests {
    @Test func aPublishCutByKillLeavesNothingBehindAndTheNextOneWorks() async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            try await withTemporaryDirectory { directory in
                let pki = try await mintPKI(in: directory, [("catalog", "cat1"), ("replicator", "repo-hq"), ("admin", "admin")])
                let catalog = try await ServiceProcess(
                    ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki, "--name", "cat1"],
                    in: directory)
                let catalogAddress = try await catalog.listeningAddress()
                #expect(try await CommandRunner.run(["site", "add", "hq", "--catalog", catalogAddress, "--tls-dir", pki]).status == 0)
                let replicatorArguments = [
                    "replicator", "--listen", "127.0.0.1:0", "--root", root, "--site", "hq", "--catalog", catalogAddress,
                    "--tls-dir", pki, "--name", "repo-hq",
                ]
                let replicator = try await ServiceProcess(replicatorArguments, in: directory)
                let replicatorAddress = try await replicator.listeningAddress()

                // A 256 MiB disk of data, so the upload takes a while.
                let source = directory.appendingPathComponent("src").path
                try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
                FileManager.default.createFile(atPath: source + "/disk.raw", contents: nil)
                let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: source + "/disk.raw"))
                var mebibyte = Data(capacity: 1 << 20)
                for index in 0..<(1 << 18) { withUnsafeBytes(of: UInt32(index) | 0x8000_0000) { mebibyte.append(contentsOf: $0) } }
                for _ in 0..<256 { try handle.write(contentsOf: mebibyte) }
                try handle.close()

                let upload = try await ServiceProcess(
                    ["image", "publish", "win11", source, "--replicator", replicatorAddress, "--tls-dir", pki], in: directory)
                // Kill the replicator once the upload is writing into work: mid-upload.
                let work = root + "/images/win11/work/disk.raw"
                for _ in 0..<3000 where !FileManager.default.fileExists(atPath: work) && upload.isRunning {
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(FileManager.default.fileExists(atPath: work), "the upload never reached the repository: \(upload.stderr)")
                #expect(try await replicator.stop(with: SIGKILL) == SIGKILL)
                for _ in 0..<1000 where upload.isRunning { try await Task.sleep(for: .milliseconds(20)) }
                #expect(!upload.isRunning, "the publish did not notice the replicator's death")
                #expect(try await upload.exit() == .init(code: 1, bySignal: false), "the cut publish must fail: \(upload.stderr)")
                #expect(upload.stderr.contains("UNAVAILABLE"), "\(upload.stderr)")
                #expect(FileManager.default.fileExists(atPath: root + "/images/win11/work"), "the kill left a work behind")

                // Restarted, the replicator removes what the cut publish left and publishes again.
                let restarted = try await ServiceProcess(replicatorArguments, in: directory)
                let restartedAddress = try await restarted.listeningAddress()
                for _ in 0..<500 where FileManager.default.fileExists(atPath: root + "/images/win11/work") {
                    try await Task.sleep(for: .milliseconds(20))
                }
                #expect(!FileManager.default.fileExists(atPath: root + "/images/win11/work"), "recovery left the cut publish's work")
                let show = try await CommandRunner.run(["image", "show", "win11", "--catalog", catalogAddress, "--tls-dir", pki, "--json"])
                #expect(!show.stdout.contains("\"number\""), "the catalog must hold no version of the cut publish: \(show.stdout)")

                // Until its recovery is done the replicator refuses publishes with a clear UNAVAILABLE.
                var again = try await CommandRunner.run(["image", "publish", "win11", source, "--replicator", restartedAddress, "--tls-dir", pki])
                for _ in 0..<50 where again.status != 0 && again.stderr.contains("still recovering") {
                    try await Task.sleep(for: .milliseconds(100))
                    again = try await CommandRunner.run(["image", "publish", "win11", source, "--replicator", restartedAddress, "--tls-dir", pki])
                }
                #expect(again.status == 0, "\(again.stderr)")
                #expect(again.stdout.hasPrefix("published win11 v1"))
                #expect(FileManager.default.fileExists(atPath: root + "/images/win11/v1/disk.raw"))
                #expect(try await restarted.stop(with: SIGTERM) == 0)
                #expect(try await catalog.stop(with: SIGTERM) == 0)
            }
        }
    }
}
