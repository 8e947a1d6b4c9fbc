import Foundation
import ICBDCore
import ICBDTestSupport
import Testing

@Suite("A replicator killed mid-transfer, as real processes on real BTRFS", .serialized, .requiresLoopBtrfs)
struct ReplicationKillTests {
    /// hq's replicator is killed (SIGKILL) while branch's pulls a version over a rate-limited
    /// link: branch never counts the half-received version present; once hq is back, branch
    /// resumes from its spool and the version arrives verified, byte for byte.
    @Test func aSenderKilledMidTransferLeavesNothingPresentAndTheVersionArrivesAfterItsRestart() async throws {
        try await TransferUnderWay.with { transfer in
            #expect(try await transfer.hq.stop(with: SIGKILL) == SIGKILL)

            // Without its sender the version is never present at branch, nor read-only there.
            try await Task.sleep(for: .seconds(2))
            let placement = try await transfer.branchPlacement()
            #expect(placement?.state != "present", "\(String(describing: placement))")
            if FileManager.default.fileExists(atPath: transfer.versionPath) {
                let property = try await CommandRunner.runTool("/bin/btrfs", ["property", "get", transfer.versionPath, "ro"])
                #expect(property.stdout.contains("ro=false"), "a half-received v1 must stay writable: \(property.stdout)\(property.stderr)")
            }

            // hq comes back (on another port: it registers its new address); branch resumes.
            try await transfer.restartHQ()
            let arrived = try await transfer.settled()
            #expect(arrived?.state == "present", "\(String(describing: arrived)); branch: \(transfer.branch.stderr.suffix(2000))")
            #expect(arrived?.detail.contains("resumed at") == true, "\(String(describing: arrived))")
            #expect(try Data(contentsOf: URL(fileURLWithPath: transfer.versionPath + "/disk.raw")) == transfer.disk)
        }
    }

    /// branch's replicator is killed (SIGKILL) mid-transfer: its `btrfs receive` child sees the
    /// end of its input and stops; after the restart, start-up recovery keeps the partial v1
    /// for the spool's references, and the transfer resumes from about where it was cut, the
    /// data already received read back from disk rather than sent again.
    @Test func aReceiverKilledMidTransferResumesFromWhatItHadWritten() async throws {
        try await TransferUnderWay.with { transfer in
            let before = transfer.receivedBytes(try await transfer.branchPlacement()?.detail ?? "")
            // The spool holds the stream's commands; its data is in the partial v1.
            let spool = try #require(FileManager.default.attributesOfItem(atPath: transfer.spoolPath)[.size] as? NSNumber).intValue
            #expect(spool < before / 10, "a spool of \(spool) bytes for \(before) received")
            #expect(try await transfer.branch.stop(with: SIGKILL) == SIGKILL)
            try await transfer.restartBranch()
            let arrived = try await transfer.settled()
            #expect(arrived?.state == "present", "\(String(describing: arrived)); branch: \(transfer.branch.stderr.suffix(2000))")
            // "resumed at N": all but the last few segments that were in flight.
            let resumedAt = try #require(arrived?.detail.firstMatch(of: /resumed at (\d+)/).flatMap { Int($0.1) }, "\(String(describing: arrived))")
            #expect(resumedAt >= before - (8 << 20), "resumed at \(resumedAt) after \(before) bytes had arrived")
            #expect(try Data(contentsOf: URL(fileURLWithPath: transfer.versionPath + "/disk.raw")) == transfer.disk)
        }
    }
}

/// A catalog and two replicators (hq, branch) as processes on two loop BTRFS, with a 96 MiB
/// version of random bytes under way from hq to branch over an 8 MB/s link: at least 16 MiB
/// of it at branch when the body runs.
final class TransferUnderWay: @unchecked Sendable {
    let directory: URL
    let pki: String
    let admin: [String]
    let hqArguments: [String]
    let branchArguments: [String]
    let versionPath: String
    /// branch's receive spool of v1.
    let spoolPath: String
    let disk: Data
    private(set) var hq: ServiceProcess
    private(set) var branch: ServiceProcess
    let catalog: ServiceProcess

    static func with(_ body: (TransferUnderWay) async throws -> Void) async throws {
        try await LoopBtrfs.with(size: "1G") { hqRoot in
            try await LoopBtrfs.with(size: "1G") { branchRoot in
                let directory = try temporaryDirectory()
                defer { removeTemporaryDirectory(directory) }
                let transfer = try await TransferUnderWay(directory: directory, hqRoot: hqRoot, branchRoot: branchRoot)
                try await transfer.waitUntilUnderWay()
                try await body(transfer)
                #expect(try await transfer.branch.stop(with: SIGTERM) == 0)
                #expect(try await transfer.hq.stop(with: SIGTERM) == 0)
                #expect(try await transfer.catalog.stop(with: SIGTERM) == 0)
            }
        }
    }

    private init(directory: URL, hqRoot: String, branchRoot: String) async throws {
        self.directory = directory
        pki = try await mintPKI(
            in: directory, [("catalog", "cat1"), ("replicator", "repo-hq"), ("replicator", "repo-branch"), ("admin", "admin")])
        catalog = try await ServiceProcess(
            ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki, "--name", "cat1"],
            in: directory)
        admin = ["--catalog", try await catalog.listeningAddress(), "--tls-dir", pki]
        #expect(try await CommandRunner.run(["site", "add", "hq"] + admin).status == 0)
        // 8 MB/s: the 96 MiB version takes about 12 s to cross, time to kill a replicator.
        #expect(try await CommandRunner.run(["site", "add", "branch", "--link", "hq=8MB"] + admin).status == 0)
        let admin = admin
        func replicator(_ name: String, site: String, root: String) -> [String] {
            ["replicator", "--listen", "127.0.0.1:0", "--root", root, "--site", site, "--name", name] + admin
        }
        hqArguments = replicator("repo-hq", site: "hq", root: hqRoot)
        branchArguments = replicator("repo-branch", site: "branch", root: branchRoot)
        versionPath = branchRoot + "/images/win11/v1"
        spoolPath = branchRoot + "/.replication/win11.v1.stream"
        hq = try await ServiceProcess(hqArguments, in: directory)
        let hqAddress = try await hq.listeningAddress()
        branch = try await ServiceProcess(branchArguments, in: directory)
        _ = try await branch.listeningAddress()

        // 96 MiB of random bytes: nothing for lz4 to shrink.
        let source = directory.appendingPathComponent("src").path
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
        disk = try #require(try random.read(upToCount: 96 << 20))
        try random.close()
        try disk.write(to: URL(fileURLWithPath: source + "/disk.raw"))
        let published = try await CommandRunner.run(["image", "publish", "win11", source, "--replicator", hqAddress, "--tls-dir", pki])
        #expect(published.status == 0, "\(published.stderr)")
    }

    /// Waits until branch holds at least 16 MiB of the stream.
    private func waitUntilUnderWay() async throws {
        var placement = try await branchPlacement()
        for _ in 0..<600 where placement.map({ $0.state != "receiving" || receivedBytes($0.detail) < 16 << 20 }) ?? true {
            try await Task.sleep(for: .milliseconds(50))
            placement = try await branchPlacement()
        }
        #expect(placement?.state == "receiving", "\(String(describing: placement))")
    }

    func restartHQ() async throws {
        hq = try await ServiceProcess(hqArguments, in: directory)
        _ = try await hq.listeningAddress()
    }

    func restartBranch() async throws {
        branch = try await ServiceProcess(branchArguments, in: directory)
        _ = try await branch.listeningAddress()
    }

    /// branch's placement of v1 once present (or as it is after two minutes).
    func settled() async throws -> (state: String, detail: String)? {
        var placement = try await branchPlacement()
        for _ in 0..<1200 where placement?.state != "present" {
            try await Task.sleep(for: .milliseconds(100))
            placement = try await branchPlacement()
        }
        return placement
    }

    func branchPlacement() async throws -> (state: String, detail: String)? {
        let status = try await CommandRunner.run(["replication", "status", "--image", "win11", "--json"] + admin)
        let object = try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any]
        let rows = object?["placements"] as? [[String: Any]] ?? []
        guard let row = rows.first(where: { $0["node"] as? String == "repo-branch" && $0["version"] as? Int == 1 }) else { return nil }
        return (row["state"] as? String ?? "", row["detail"] as? String ?? "")
    }

    /// "receiving from repo-hq: N of ~M bytes at ..."
    func receivedBytes(_ detail: String) -> Int {
        guard let range = detail.range(of: "repo-hq: ") else { return 0 }
        return Int(detail[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }
}
