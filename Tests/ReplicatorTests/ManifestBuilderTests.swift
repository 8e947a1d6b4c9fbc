import Crypto
import Foundation
import ICBDCore
import Replicator
import Testing

@Suite("Chunk manifests of files")
struct ManifestBuilderTests {
    /// A temporary file: `chunks` describes each 64 KiB chunk (nil = a hole, else a fill byte),
    /// then `tail` extra bytes of 0x7F.
    func makeFile(_ chunks: [UInt8?], tail: Int = 0) throws -> (path: String, bytes: [UInt8]) {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("manifest-\(UUID())").path
        let size = chunks.count * 65536 + tail
        let fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0o644)
        #expect(fd >= 0)
        defer { close(fd) }
        #expect(ftruncate(fd, off_t(size)) == 0)
        var bytes = [UInt8](repeating: 0, count: size)
        for (index, fill) in chunks.enumerated() {
            guard let fill else { continue }
            // Fill 0 writes real zeros (data, not a hole); others a pattern that differs by position.
            let chunk = fill == 0
                ? [UInt8](repeating: 0, count: 65536)
                : (0..<65536).map { UInt8(truncatingIfNeeded: Int(fill) &* ($0 % 7 + 1) &+ index) }
            bytes.replaceSubrange(index * 65536..<(index + 1) * 65536, with: chunk)
            _ = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(index * 65536)) }
        }
        if tail > 0 {
            let tailBytes = [UInt8](repeating: 0x7F, count: tail)
            bytes.replaceSubrange(chunks.count * 65536..<size, with: tailBytes)
            _ = tailBytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(chunks.count * 65536)) }
        }
        return (path, bytes)
    }

    /// The manifest computed independently, straight from the bytes.
    func expectedEntries(_ bytes: [UInt8], chunkSize: Int) -> [UInt8] {
        stride(from: 0, to: bytes.count, by: chunkSize).flatMap { start -> [UInt8] in
            let chunk = bytes[start..<min(start + chunkSize, bytes.count)]
            return chunk.allSatisfy { $0 == 0 } ? ChunkManifest.zeroEntry : Array(SHA256.hash(data: Array(chunk)))
        }
    }

    @Test(arguments: [1, 2, 3, 8])
    func matchesAnIndependentHashOfEveryChunk(parallelism: Int) async throws {
        // Data, a hole, an explicitly written zero chunk, data, and a partial last chunk.
        let (path, bytes) = try makeFile([3, nil, 0, 9, 3], tail: 1000)
        defer { try? FileManager.default.removeItem(atPath: path) }
        var builder = ManifestBuilder()
        builder.chunkSize = 65536
        builder.parallelism = parallelism
        let manifest = try await builder.build(path: path)
        #expect(manifest.fileSize == Int64(bytes.count))
        #expect(manifest.chunkCount == 6)
        #expect(manifest.entries == expectedEntries(bytes, chunkSize: 65536))
        #expect(manifest.zeroChunks == 2)
        #expect(manifest.digest == ChunkManifest.digest(fileSize: Int64(bytes.count), chunkSize: 65536, entries: manifest.entries))
    }

    @Test func emptyFileHasAnEmptyManifest() async throws {
        let (path, _) = try makeFile([])
        defer { try? FileManager.default.removeItem(atPath: path) }
        let manifest = try await ManifestBuilder().build(path: path)
        #expect(manifest.chunkCount == 0)
        #expect(manifest.digest == ChunkManifest.digest(fileSize: 0, chunkSize: ChunkManifest.defaultChunkSize, entries: []))
    }

    @Test func refusesWhatIsNotARegularFile() async throws {
        await #expect(throws: ManifestError.self) { try await ManifestBuilder().build(path: "/dev/null") }
        await #expect(throws: ManifestError.self) { try await ManifestBuilder().build(path: "/nonexistent/file") }
    }
}
