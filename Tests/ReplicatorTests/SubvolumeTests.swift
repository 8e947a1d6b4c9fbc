import Foundation
import ICBDTestSupport
import Replicator
import Testing

@Suite("BTRFS subvolumes through libbtrfsutil, on a real loop-mounted filesystem")
struct SubvolumeTests {
    @Test(.requiresLoopBtrfs) func snapshotsAreReadOnlyAndRememberTheirParent() async throws {
        try await LoopBtrfs.with { root in
            #expect(Filesystem.isBtrfs(root))
            let work = root + "/work"
            try Subvolume.create(at: work)
            try Data("v1".utf8).write(to: URL(fileURLWithPath: work + "/vmlinuz"))
            try Subvolume.snapshot(of: work, at: root + "/v1", readOnly: true)

            let source = try Subvolume.info(at: work)
            let snapshot = try Subvolume.info(at: root + "/v1")
            #expect(!source.isReadOnly)
            #expect(snapshot.isReadOnly)
            #expect(snapshot.parentUUID == source.uuid)
            #expect(snapshot.receivedUUID == nil)
            #expect(snapshot.uuid != source.uuid)
            #expect(try Subvolume.isReadOnly(at: root + "/v1"))
            #expect(Subvolume.exists(at: root + "/v1"))
            #expect(!Subvolume.exists(at: root + "/v1/vmlinuz"))

            // The snapshot keeps v1's bytes when the work subvolume moves on, and refuses writes.
            try Data("v2".utf8).write(to: URL(fileURLWithPath: work + "/vmlinuz"))
            #expect(try String(contentsOfFile: root + "/v1/vmlinuz", encoding: .utf8) == "v1")
            #expect(throws: (any Error).self) { try Data("x".utf8).write(to: URL(fileURLWithPath: root + "/v1/vmlinuz")) }

            // Deleting a read-only snapshot works (the flag is cleared first).
            try Subvolume.delete(at: root + "/v1")
            #expect(!FileManager.default.fileExists(atPath: root + "/v1"))
        }
    }

    @Test(.requiresLoopBtrfs) func errorsNameTheOperationAndPath() async throws {
        try await LoopBtrfs.with { root in
            let error = #expect(throws: BtrfsError.self) { try Subvolume.info(at: root + "/missing") }
            #expect(error?.description.contains(root + "/missing") == true)
            try Subvolume.create(at: root + "/a")
            #expect(throws: BtrfsError.self) { try Subvolume.create(at: root + "/a") }
        }
    }

    @Test func temporaryDirectoryIsNotBtrfs() {
        #expect(!Filesystem.isBtrfs("/proc"))
    }
}
