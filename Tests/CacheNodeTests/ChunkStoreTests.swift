import Crypto
import Foundation
import ICBDProcess
import ICBDTestSupport
import Logging
import NIOCore
import Replicator
import Synchronization
import Testing

@testable import CacheNode

/// A chunk of `size` bytes made from `seed`, with its digest.
func chunk(_ seed: Int, size: Int = 4096) -> (ChunkDigest, ByteBuffer) {
    var bytes = [UInt8](repeating: 0, count: size)
    var state = UInt64(truncatingIfNeeded: seed) &* 0x9E37_79B9_7F4A_7C15 | 1
    for index in bytes.indices {
        state ^= state << 13
        state ^= state >> 7
        state ^= state << 17
        bytes[index] = UInt8(truncatingIfNeeded: state)
    }
    let buffer = ByteBuffer(bytes: bytes)
    return (ChunkDigest(of: buffer), buffer)
}

/// The bytes of every chunk file on disk.
func bytesOnDisk(_ directory: String) throws -> Int64 {
    var total: Int64 = 0
    let chunks = directory + "/chunks"
    for prefix in try FileManager.default.contentsOfDirectory(atPath: chunks) {
        for name in try FileManager.default.contentsOfDirectory(atPath: chunks + "/" + prefix) {
            // A file evicted between the listing and this look is simply gone: it holds nothing.
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: chunks + "/" + prefix + "/" + name) else { continue }
            total += (attributes[.size] as? Int64) ?? 0
        }
    }
    return total
}

@Suite("The disk-backed chunk store")
struct ChunkStoreTests {
    @Test(arguments: EvictionPolicyKind.allCases)
    func holdsItsCapacityUnderConcurrentChurn(kind: EvictionPolicyKind) async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let capacity: Int64 = 64 * 4096
        let store = ChunkStore(directory: directory, capacity: capacity, policy: kind, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        try await withThrowingTaskGroup(of: Void.self) { group in
            for writer in 0..<8 {
                group.addTask {
                    for round in 0..<60 {
                        let (digest, bytes) = chunk(writer * 1000 + round % 40)
                        await store.store(digest, bytes)
                        #expect(store.occupiedBytes <= capacity)
                        if let read = await store.read(digest) { #expect(read == bytes) }
                    }
                }
            }
            // The files on disk are compared with the capacity once the churn is over: a directory
            // scan during it is not atomic (a chunk evicted after it was counted and its successor
            // written into a folder not scanned yet are both counted), so it cannot be exact then.
            try await group.waitForAll()
        }
        #expect(store.usedBytes <= capacity)
        #expect(store.reservedBytes == 0)
        #expect(try bytesOnDisk(directory) == store.usedBytes)
        #expect(store.count == 64)
    }

    @Test func aReopenedStoreServesWhatItHeldAndNeverAHalfWrittenChunk() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let chunks = (0..<10).map { chunk($0) }
        do {
            let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
            for (digest, bytes) in chunks { #expect(await store.store(digest, bytes)) }
        }
        // What a crash mid-write leaves: a temporary file.
        let (halfDigest, halfBytes) = chunk(99)
        try Data(halfBytes.readableBytesView.prefix(100)).write(to: URL(fileURLWithPath: "\(directory)/tmp/\(halfDigest.hex).1"))
        let reopened = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        #expect(reopened.count == 10)
        for (digest, bytes) in chunks { #expect(await reopened.read(digest) == bytes) }
        #expect(await reopened.read(halfDigest) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/tmp").isEmpty)
    }

    /// Flips one byte of the chunk's file on disk.
    private func corrupt(_ digest: ChunkDigest, in directory: String) throws {
        let path = "\(directory)/chunks/\(digest.hex.prefix(2))/\(digest.hex)"
        var data = try Data(contentsOf: URL(fileURLWithPath: path))
        data[100] ^= 0xff
        try data.write(to: URL(fileURLWithPath: path))
    }

    @Test func aCorruptEntryFoundAtStartIsDroppedOnItsFirstReadNotServed() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (digest, bytes) = chunk(1)
        let first = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        #expect(await first.store(digest, bytes))
        try corrupt(digest, in: directory)
        let metrics = CacheMetrics(node: "t")
        let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: metrics, logger: quietLogger())
        #expect(store.contains(digest))
        #expect(await store.read(digest) == nil)
        #expect(!store.contains(digest))
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/chunks/\(digest.hex.prefix(2))/\(digest.hex)"))
        #expect(metrics.corruptEntries.load(ordering: .relaxed) == 1)
        // Stored again, it is served again.
        #expect(await store.store(digest, bytes))
        #expect(await store.read(digest) == bytes)
    }

    @Test func aPartIsReadAloneOnlyFromAnEntryVerifiedAlready() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (digest, bytes) = chunk(2)
        let first = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        #expect(await first.store(digest, bytes))
        // Verified on arrival: a part is read alone.
        #expect(await first.read(digest, part: ChunkPart(offset: 10, length: 20)) == bytes.getSlice(at: 10, length: 20))
        #expect(await first.read(digest, part: ChunkPart(offset: 4000, length: 0)) == bytes.getSlice(at: 4000, length: 96))
        // Corrupted outside the part while no node ran: the first read after a start hashes the
        // whole chunk, so even a part the corruption does not touch is refused.
        try corrupt(digest, in: directory)
        let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        #expect(await store.read(digest, part: ChunkPart(offset: 1000, length: 100)) == nil)
        #expect(!store.contains(digest))
    }

    @Test func everyReadVerifiesWhenVerificationsDoNotLast() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let metrics = CacheMetrics(node: "t")
        let store = ChunkStore(
            directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: metrics, logger: quietLogger(), verifyInterval: .zero)
        let (digest, bytes) = chunk(1)
        #expect(await store.store(digest, bytes))
        #expect(await store.read(digest) == bytes)
        try corrupt(digest, in: directory)
        #expect(await store.read(digest) == nil)
        #expect(metrics.corruptEntries.load(ordering: .relaxed) == 1)
    }

    @Test func theScrubberVerifiesEntriesFoundAtStartThenOnlyWhatIsDue() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let chunks = (0..<3).map { chunk($0) }
        let first = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
        for (digest, bytes) in chunks { #expect(await first.store(digest, bytes)) }
        try corrupt(chunks[1].0, in: directory)
        let metrics = CacheMetrics(node: "t")
        let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: metrics, logger: quietLogger())
        var scrubbed: [Int] = []
        while let bytes = await store.scrubNext() { scrubbed.append(bytes) }
        // Two good entries hashed whole, the corrupt one dropped; then nothing is due for an hour.
        #expect(scrubbed.sorted() == [0, 4096, 4096])
        #expect(store.count == 2)
        #expect(!store.contains(chunks[1].0))
        #expect(metrics.corruptEntries.load(ordering: .relaxed) == 1)
        let (digest, bytes) = chunk(9)
        #expect(await store.store(digest, bytes))
        #expect(await store.scrubNext() == nil)
    }

    @Test(.requiresRoot(to: "mount a tmpfs")) func aFullDiskMakesAPassThroughThatStillServesWhatItHolds() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // A 1 MiB tmpfs: full long before the 64 MiB capacity.
        let mounted = try await withTmpfs(size: "1m", at: directory) { () async throws in
            let store = ChunkStore(directory: directory, capacity: 64 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
            let (first, firstBytes) = chunk(0, size: 256 << 10)
            #expect(await store.store(first, firstBytes))
            var stored = 1
            for seed in 1..<8 {
                let (digest, bytes) = chunk(seed, size: 256 << 10)
                if await store.store(digest, bytes) { stored += 1 }
            }
            #expect(stored < 8)
            #expect(store.passThroughReason?.contains("No space left") == true)
            #expect(await store.read(first) == firstBytes)
            #expect(try FileManager.default.contentsOfDirectory(atPath: "\(directory)/tmp").isEmpty)
            // Space again: the next probe resumes caching.
            _ = await mount(["-o", "remount,size=8m", directory])
            await store.probe()
            #expect(store.passThroughReason == nil)
        }
        try #require(mounted, "cannot mount a tmpfs at \(directory)")
    }

    @Test(.requiresRoot(to: "mount a tmpfs")) func aReadOnlyDirectoryMakesAPassThrough() async throws {
        let directory = try temporaryDirectory().path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let mounted = try await withTmpfs(size: "4m", at: directory) { () async throws in
            let (digest, bytes) = chunk(0)
            do {
                let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
                #expect(await store.store(digest, bytes))
            }
            #expect(await mount(["-o", "remount,ro", directory]))
            let store = ChunkStore(directory: directory, capacity: 1 << 20, policy: .s3fifo, metrics: CacheMetrics(node: "t"), logger: quietLogger())
            #expect(store.passThroughReason != nil)
            #expect(await store.read(digest) == bytes)
            let (other, otherBytes) = chunk(1)
            #expect(await store.store(other, otherBytes) == false)
        }
        try #require(mounted, "cannot mount a tmpfs at \(directory)")
    }
}

/// Runs `body` with a tmpfs of `size` mounted at `directory`, unmounted afterwards whatever
/// happens; false (body not run) where none can be mounted.
func withTmpfs(size: String, at directory: String, _ body: () async throws -> Void) async throws -> Bool {
    guard await mount(["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", directory]) else { return false }
    do {
        try await body()
    } catch {
        _ = await mount([directory], command: "/bin/umount")
        throw error
    }
    _ = await mount([directory], command: "/bin/umount")
    return true
}

/// Runs mount (or `command`) with `arguments`; whether it succeeded.
func mount(_ arguments: [String], command: String = "/bin/mount") async -> Bool {
    (try? await SystemCommand.run(command, arguments)) != nil
}
