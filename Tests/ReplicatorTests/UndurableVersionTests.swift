import Foundation
import ICBDCore
import ICBDProto
import ICBDTestSupport
import Logging
import Testing

@testable import Replicator

@Suite("A version reported present before it reached the disk", .serialized, .requiresLoopBtrfs)
struct UndurableVersionTests {
    /// The spool of a received version goes only once the version is committed to disk. A
    /// spool still there at start marks a version that a crash may have left with pages that
    /// never reached the disk: it is deleted with its spool, and the scheduler receives it again.
    @Test func aVersionWhoseSpoolOutlivedItIsDroppedAndReceivedAgain() async throws {
        // A short scan, so that the running scheduler notices the dropped version soon (at a
        // start it plans after dropping, so it pulls at once).
        try await ReplicationDeployment.with(configure: { $0.scanInterval = .seconds(1) }) { deployment in
            let image = try Name("win11")
            let disk = vmLikeDisk(mebibytes: 8, seed: 3)
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", disk)])
            #expect(try await deployment.settledPlacement(image: "win11", version: 1).state == .present)
            let repository = deployment.branchRepository
            let spoolDirectory = ReceiveSpool.directory(root: repository.root)
            for _ in 0..<300 where !((try? FileManager.default.contentsOfDirectory(atPath: spoolDirectory)) ?? []).isEmpty {
                try await Task.sleep(for: .milliseconds(100))
            }
            // Committed: its spool is gone, so nothing is dropped.
            let held = try repository.versions()
            #expect(ReceiveSpool.dropUndurable(root: repository.root, held: held, versionPath: repository.versionPath, logger: deployment.logger).isEmpty)
            #expect(Subvolume.exists(at: repository.versionPath(of: image, 1)))

            // As a crash between the present report and the commit leaves it: the spool is there.
            let spool = ReceiveSpool(directory: spoolDirectory, image: image, version: 1)
            #expect(FileManager.default.createFile(atPath: spool.path, contents: Data("stream".utf8)))
            let dropped = ReceiveSpool.dropUndurable(
                root: repository.root, held: try repository.versions(), versionPath: repository.versionPath, logger: deployment.logger)
            #expect(dropped.map(\.version) == [1])
            #expect(!Subvolume.exists(at: repository.versionPath(of: image, 1)))
            #expect(!FileManager.default.fileExists(atPath: spool.path))

            // Received again, whole.
            let path = repository.versionPath(of: image, 1)
            for _ in 0..<300 where (try? Subvolume.info(at: path))?.isReadOnly != true { try await Task.sleep(for: .milliseconds(100)) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/disk.raw")) == Data(disk))
        }
    }
}
