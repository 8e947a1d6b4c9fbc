import Foundation
import ICBDTestSupport
import Testing

@Suite("A sending replicator killed mid-transfer, as real processes on real BTRFS")
struct ReplicationKillTests {
    /// hq's replicator is killed (SIGKILL) while branch's pulls a version over a rate-limited
    /// link: branch never counts the half-received version present; once hq is back, branch
    /// resumes from its spool and the version arrives verified, byte for byte.
    @Test func aSenderKilledMidTransferLeavesNothingPresentAndTheVersionArrivesAfterItsRestart() async throws {
        try await LoopBtrfs.with(size: "1G") { hqRoot in
            try await LoopBtrfs.with(size: "1G") { branchRoot in
                let directory = try temporaryDirectory()
                defer { try? FileManager.default.removeItem(at: directory) }
                let pki = try await mintPKI(
                    in: directory, [("catalog", "cat1"), ("replicator", "repo-hq"), ("replicator", "repo-branch"), ("admin", "admin")])
                let catalog = try await ServiceProcess(
                    ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki, "--name", "cat1"],
                    in: directory)
                let catalogAddress = try await catalog.listeningAddress()
                let admin = ["--catalog", catalogAddress, "--tls-dir", pki]
                #expect(try await CommandRunner.run(["site", "add", "hq"] + admin).status == 0)
                // 8 MB/s: the 96 MiB version takes about 12 s to cross, time to kill its sender.
                #expect(try await CommandRunner.run(["site", "add", "branch", "--link", "hq=8MB"] + admin).status == 0)
                func replicator(_ name: String, site: String, root: String) -> [String] {
                    ["replicator", "--listen", "127.0.0.1:0", "--root", root, "--site", site, "--name", name] + admin
                }
                let hqArguments = replicator("repo-hq", site: "hq", root: hqRoot)
                var hq = try await ServiceProcess(hqArguments, in: directory)
                let hqAddress = try await hq.listeningAddress()
                let branch = try await ServiceProcess(replicator("repo-branch", site: "branch", root: branchRoot), in: directory)
                _ = try await branch.listeningAddress()

                // 96 MiB of random bytes: nothing for lz4 to shrink.
                let source = directory.appendingPathComponent("src").path
                try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
                let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
                let disk = try #require(try random.read(upToCount: 96 << 20))
                try random.close()
                try disk.write(to: URL(fileURLWithPath: source + "/disk.raw"))
                let published = try await CommandRunner.run(["image", "publish", "win11", source, "--replicator", hqAddress, "--tls-dir", pki])
                #expect(published.status == 0, "\(published.stderr)")

                func branchPlacement() async throws -> (state: String, detail: String)? {
                    let status = try await CommandRunner.run(["replication", "status", "--image", "win11", "--json"] + admin)
                    let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
                    let rows = object?["placements"] as? [[String: Any]] ?? []
                    guard let row = rows.first(where: { $0["node"] as? String == "repo-branch" && $0["version"] as? Int == 1 }) else { return nil }
                    return (row["state"] as? String ?? "", row["detail"] as? String ?? "")
                }
                func receivedBytes(_ detail: String) -> Int {
                    // "receiving from repo-hq: N of ~M bytes at ..."
                    guard let range = detail.range(of: "repo-hq: ") else { return 0 }
                    return Int(detail[range.upperBound...].prefix { $0.isNumber }) ?? 0
                }
                // Kill hq's replicator once branch holds at least 16 MiB of the stream.
                var placement = try await branchPlacement()
                for _ in 0..<600 where placement.map({ $0.state != "receiving" || receivedBytes($0.detail) < 16 << 20 }) ?? true {
                    try await Task.sleep(for: .milliseconds(50))
                    placement = try await branchPlacement()
                }
                #expect(placement?.state == "receiving", "\(String(describing: placement))")
                #expect(try await hq.stop(with: SIGKILL) == SIGKILL)

                // Without its sender the version is never present at branch, nor read-only there.
                try await Task.sleep(for: .seconds(2))
                placement = try await branchPlacement()
                #expect(placement?.state != "present", "\(String(describing: placement))")
                let versionPath = branchRoot + "/images/win11/v1"
                if FileManager.default.fileExists(atPath: versionPath) {
                    let property = try await CommandRunner.runTool("/bin/btrfs", ["property", "get", versionPath, "ro"])
                    #expect(property.stdout.contains("ro=false"), "a half-received v1 must stay writable: \(property.stdout)\(property.stderr)")
                }

                // hq comes back (on another port: it registers its new address); branch resumes.
                hq = try await ServiceProcess(hqArguments, in: directory)
                _ = try await hq.listeningAddress()
                for _ in 0..<1200 where placement?.state != "present" {
                    try await Task.sleep(for: .milliseconds(100))
                    placement = try await branchPlacement()
                }
                #expect(placement?.state == "present", "\(String(describing: placement)); branch: \(branch.stderr.suffix(2000))")
                #expect(placement?.detail.contains("resumed at") == true, "\(String(describing: placement))")
                #expect(try Data(contentsOf: URL(fileURLWithPath: versionPath + "/disk.raw")) == disk)

                #expect(try await branch.stop(with: SIGTERM) == 0)
                #expect(try await hq.stop(with: SIGTERM) == 0)
                #expect(try await catalog.stop(with: SIGTERM) == 0)
            }
        }
    }
}
