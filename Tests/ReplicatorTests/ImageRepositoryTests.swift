import Foundation
import ICBDTestSupport
import ICBDCore
import LoopFileBtrfs
import Replicator
import Testing

@Suite("The BTRFS image repository, on a real loop-mounted filesystem")
struct ImageRepositoryTests {
    let image: Name

    init() throws {
        image = try Name("win11")
    }

    /// Writes `count` MiB of non-zero, position-dependent data (`seed` varies it) at `offset` MiB.
    func writeData(_ path: String, atMiB offset: Int, count: Int, seed: UInt8) throws {
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset) << 20)
        for mib in 0..<count {
            let block = (0..<4096).map { UInt8(truncatingIfNeeded: ($0 >> 3) &+ mib &+ Int(seed)) | 1 }
            var mebibyte = Data(capacity: 1 << 20)
            for _ in 0..<256 { mebibyte.append(contentsOf: block) }
            try handle.write(contentsOf: mebibyte)
        }
    }

    @Test(.requiresLoopBtrfs) func aSecondVersionCostsOnlyWhatChanged() async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            let repository = try ImageRepository(root: root)
            let work = try repository.prepareWork(of: image, basedOn: nil)
            FileManager.default.createFile(atPath: work + "/disk.raw", contents: nil)
            try writeData(work + "/disk.raw", atMiB: 0, count: 128, seed: 1)
            let v1 = try repository.commitWork(of: image, as: 1)
            #expect(v1.isReadOnly)
            #expect(!FileManager.default.fileExists(atPath: repository.workPath(of: image)))

            // v2: change 8 MiB in the middle of the 128 MiB disk.
            let work2 = try repository.prepareWork(of: image, basedOn: 1)
            try writeData(work2 + "/disk.raw", atMiB: 60, count: 8, seed: 99)
            let v2 = try repository.commitWork(of: image, as: 2)
            #expect(v2.parentUUID != nil)

            let exclusive = try await BtrfsUsage.exclusiveBytes(at: repository.versionPath(of: image, 2))
            #expect(exclusive >= 8 << 20 && exclusive < 12 << 20, "v2 holds \(exclusive) bytes of its own")
            let v1Bytes = try Data(contentsOf: URL(fileURLWithPath: repository.versionPath(of: image, 1) + "/disk.raw"))
            let v2Bytes = try Data(contentsOf: URL(fileURLWithPath: repository.versionPath(of: image, 2) + "/disk.raw"))
            #expect(v1Bytes.count == 128 << 20 && v2Bytes.count == 128 << 20)
            #expect(v1Bytes[0..<(60 << 20)] == v2Bytes[0..<(60 << 20)])
            #expect(v1Bytes[(60 << 20)..<(68 << 20)] != v2Bytes[(60 << 20)..<(68 << 20)])
            #expect(try repository.versions()[image]?.keys.sorted() == [1, 2])
        }
    }

    @Test(.requiresLoopBtrfs) func aVersionIsPublishedOnce() async throws {
        try await LoopBtrfs.with { root in
            let repository = try ImageRepository(root: root)
            try repository.prepareWork(of: image, basedOn: nil)
            _ = try repository.commitWork(of: image, as: 1)
            try repository.prepareWork(of: image, basedOn: 1)
            let error = #expect(throws: RepositoryError.self) { try repository.commitWork(of: image, as: 1) }
            #expect(error?.description.contains("cannot be published twice") == true)
            #expect(throws: RepositoryError.self) { try repository.prepareWork(of: image, basedOn: 7) }
        }
    }

    @Test(.requiresLoopBtrfs) func recoveryRemovesWhatAnInterruptedPublishOrReceiveLeft() async throws {
        try await LoopBtrfs.with { root in
            let repository = try ImageRepository(root: root)
            try repository.prepareWork(of: image, basedOn: nil)
            _ = try repository.commitWork(of: image, as: 1)
            try repository.prepareWork(of: image, basedOn: 1)
            _ = try repository.commitWork(of: image, as: 2)  // read-only, but the catalog never heard of it
            try Subvolume.create(at: repository.versionPath(of: image, 3))  // a receive cut short: writable
            try repository.prepareWork(of: image, basedOn: 1)  // a publish cut short

            let removed = try repository.recover(ready: [image: [1]])
            #expect(Set(removed) == [
                repository.versionPath(of: image, 2), repository.versionPath(of: image, 3), repository.workPath(of: image),
            ])
            #expect(try repository.versions()[image]?.keys.sorted() == [1])
        }
    }

    @Test(.enabled(if: !Filesystem.isBtrfs(FileManager.default.temporaryDirectory.path), "the temporary directory is itself on BTRFS"))
    func refusesARootThatIsNotBtrfs() throws {
        let directory = FileManager.default.temporaryDirectory.path
        let error = #expect(throws: RepositoryError.self) { try ImageRepository(root: directory) }
        #expect(error?.description.contains("not on BTRFS") == true)
        #expect(throws: RepositoryError.self) { try ImageRepository(root: "/nonexistent/repository") }
    }
}
