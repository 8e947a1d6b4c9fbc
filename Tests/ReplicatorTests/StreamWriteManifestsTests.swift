import Foundation
import ICBDCore
@testable import Replicator
import Testing

/// Manifests hashed from synthetic full streams (btrfs-progs send.h layout), fed whole and
/// split at every byte, against ManifestBuilder reading the same bytes from a file.
@Suite("Manifests from a full stream's writes")
struct StreamWriteManifestsTests {
    typealias Stream = SendStreamScanTests
    static let chunkSize: Int64 = 4096
    static let subvolume = Stream.command(1, [(15, Array("v1".utf8)), (1, Stream.uuid), (2, Stream.le(1, 8))])

    static func path(_ name: String) -> (UInt16, [UInt8]) { (15, Array(name.utf8)) }
    static func makeFile(_ name: String) -> [UInt8] { Stream.command(3, [path(name), (3, Stream.le(257, 8))]) }
    static func rename(_ from: String, _ to: String) -> [UInt8] { Stream.command(9, [path(from), (16, Array(to.utf8))]) }
    static func write(_ name: String, _ offset: Int64, _ data: [UInt8], version: UInt32 = 1) -> [UInt8] {
        Stream.command(15, [path(name), (18, Stream.le(UInt64(offset), 8)), (19, data)], version: version)
    }
    static func truncate(_ name: String, _ size: Int64) -> [UInt8] { Stream.command(17, [path(name), (4, Stream.le(UInt64(size), 8))]) }

    /// The stream's manifest of disk.raw, and the manifest ManifestBuilder reads from `file`.
    static func manifests(_ commands: [[UInt8]], version: UInt32 = 1, file: [UInt8], pieces: Int) async throws
        -> (fromStream: ManifestBuilder.Manifest?, read: ManifestBuilder.Manifest, scan: SendStreamScan)
    {
        var scan = SendStreamScan()
        scan.writes = StreamWriteManifests(files: [("disk.raw", chunkSize)])
        let bytes = Stream.stream(version: version, commands)
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        for start in stride(from: 0, to: bytes.count, by: size) {
            bytes[start..<min(bytes.count, start + size)].withUnsafeBytes { scan.consume($0) }
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-stream-writes-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("disk.raw").path
        try Data(file).write(to: URL(fileURLWithPath: path))
        var builder = ManifestBuilder()
        builder.chunkSize = chunkSize
        let read = try await builder.build(path: path)
        return (scan.writes?.manifest(path: "disk.raw", fileSize: Int64(file.count)), read, scan)
    }

    static func pattern(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) | 1 } }

    /// Writes with holes before, between and after them (a whole zero chunk, a chunk half
    /// written), a write of zeros, and the size set by a truncate, as `btrfs send` does.
    @Test(arguments: [(1, UInt32(1)), (7, 1), (1_000_000, 1), (3, 2), (1_000_000, 2)])
    func writesAndHolesGiveTheManifestOfTheFile(pieces: Int, version: UInt32) async throws {
        var file = [UInt8](repeating: 0, count: 30_000)
        let first = Self.pattern(5000, seed: 1)
        let second = Self.pattern(3000, seed: 2)
        file.replaceSubrange(9000..<14000, with: first)
        file.replaceSubrange(20000..<23000, with: second)
        let commands = [
            Self.subvolume, Self.makeFile("o257-7-0"), Self.rename("o257-7-0", "disk.raw"),
            Self.write("disk.raw", 9000, first, version: version), Self.write("disk.raw", 14000, [UInt8](repeating: 0, count: 100), version: version),
            Self.write("disk.raw", 20000, second, version: version), Self.truncate("disk.raw", 30000), Stream.utimes,
        ]
        let result = try await Self.manifests(commands, version: version, file: file, pieces: min(pieces, 40_000))
        #expect(result.scan.writes?.abandoned == nil)
        let fromStream = try #require(result.fromStream)
        #expect(fromStream == result.read)
        #expect(fromStream.zeroChunks == 4)  // chunks 0, 1, 6 and 7 (of 8)
    }

    @Test func aStreamItDoesNotFollowGivesNoManifest() async throws {
        let data = Self.pattern(5000, seed: 3)
        let start = [Self.subvolume, Self.makeFile("o257-7-0"), Self.rename("o257-7-0", "disk.raw")]
        let clone = Stream.command(16, [Self.path("disk.raw"), (18, Stream.le(8192, 8)), (24, Stream.le(4096, 8))])
        let cases: [[[UInt8]]] = [
            start + [Self.write("disk.raw", 4096, data), Self.write("disk.raw", 0, data)],  // out of order
            start + [Self.write("disk.raw", 0, data), clone],
            [Self.subvolume, Self.write("disk.raw", 0, data)],  // a file it did not see created
            [Self.subvolume, Self.makeFile("o257-7-0"), Self.write("o257-7-0", 0, data), Self.rename("o257-7-0", "disk.raw")],
            [Stream.snapshot, Self.write("disk.raw", 0, data)],  // incremental
            start + [Stream.command(99, [])],
        ]
        for commands in cases {
            let result = try await Self.manifests(commands, file: data, pieces: 2)
            #expect(result.fromStream == nil)
            #expect(result.scan.writes?.abandoned != nil)
        }
    }
}
