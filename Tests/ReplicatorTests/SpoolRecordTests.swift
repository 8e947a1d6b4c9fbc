import Crypto
import Foundation
import ICBDCore
import NIOCore
@testable import Replicator
import Testing

/// The receive spool's records of a synthetic full stream (commands and references to write
/// data), rebuilt from a "partly received" directory holding the files as `btrfs receive` left
/// them: byte for byte, through renames of the written file's directory, up to a torn record or
/// a changed byte, never past it.
@Suite("Receive spool records")
struct SpoolRecordTests {
    typealias Stream = SendStreamScanTests
    typealias Writes = StreamWriteManifestsTests

    static let a = [UInt8](repeating: 0xA1, count: 3000)
    static let b = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    static let c = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ 5) }
    /// disk.raw is written under its directory's temporary name, which is renamed afterwards.
    static let stream = Stream.stream([
        Writes.subvolume, Stream.command(4, [Writes.path("o258-1-0"), (3, Stream.le(258, 8))]),
        Writes.makeFile("o258-1-0/o257-1-0"), Writes.rename("o258-1-0/o257-1-0", "o258-1-0/disk.raw"),
        Writes.write("o258-1-0/disk.raw", 0, a), Writes.write("o258-1-0/disk.raw", 3000, b),
        Writes.rename("o258-1-0", "images"), Writes.write("images/disk.raw", 6000, c), Writes.truncate("images/disk.raw", 26_000),
    ])
    /// The file as the partly received subvolume holds it.
    static let file = a + b + c

    /// Writes the spool of `stream` cut into `segment`-byte segments, and the partial directory.
    static func spooled(segment: Int, in directory: String) throws -> ReceiveSpool {
        let spool = ReceiveSpool(directory: directory, image: try Name("win11"), version: 1)
        let writer = try spool.begin(parent: 0)
        var scan = SendStreamScan()
        scan.landmarks = SendStreamScan.Landmarks()
        for start in stride(from: 0, to: stream.count, by: segment) {
            let raw = Array(stream[start..<min(stream.count, start + segment)])
            try raw.withUnsafeBytes { bytes in
                scan.consume(bytes)
                try writer.append(SpoolRecord(raw: bytes, sha256: Array(SHA256.hash(data: bytes)), landmarks: scan.landmarks ?? .init()))
            }
        }
        try FileManager.default.createDirectory(atPath: spool.partialPath + "/images", withIntermediateDirectories: true)
        try Data(file).write(to: URL(fileURLWithPath: spool.partialPath + "/images/disk.raw"))
        return spool
    }

    static func rebuilt(_ spool: ReceiveSpool) throws -> [UInt8] {
        let rebuild = try #require(SpoolRebuild(spool: spool))
        var bytes: [UInt8] = []
        while let segment = rebuild.next() { bytes += segment.bytes.readableBytesView }
        #expect(Int64(bytes.count) == rebuild.length)
        return bytes
    }

    static func withDirectory(_ body: (String) throws -> Void) throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-spool-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try body(directory)
    }

    @Test(arguments: [64, 1000, 4096, 1 << 20]) func aSpoolRebuildsItsStreamFromThePartialThroughRenames(segment: Int) throws {
        try Self.withDirectory { directory in
            let spool = try Self.spooled(segment: segment, in: directory)
            #expect(try Self.rebuilt(spool) == Self.stream)
            #expect(spool.held()?.length == Int64(Self.stream.count))
            if segment == 1 << 20 {
                // The data is referenced, not copied.
                let size = try #require(FileManager.default.attributesOfItem(atPath: spool.path)[.size] as? NSNumber).intValue
                #expect(size < Self.stream.count / 4, "\(size) bytes of spool for \(Self.stream.count) of stream")
            }
        }
    }

    @Test func aTornSpoolRebuildsUpToItsLastWholeRecord() throws {
        try Self.withDirectory { directory in
            let spool = try Self.spooled(segment: 1000, in: directory)
            let size = try #require(FileManager.default.attributesOfItem(atPath: spool.path)[.size] as? NSNumber).int64Value
            for cut in stride(from: size - 1, to: Int64(SpoolRecord.magic.count), by: -97) {
                #expect(truncate(spool.path, off_t(cut)) == 0)
                let bytes = try Self.rebuilt(spool)
                // A prefix of whole segments, exactly the stream's.
                #expect(bytes.count % 1000 == 0 && Array(Self.stream.prefix(bytes.count)) == bytes)
            }
        }
    }

    @Test func aChangedByteInThePartialStopsTheRebuildBeforeIt() throws {
        try Self.withDirectory { directory in
            let spool = try Self.spooled(segment: 4096, in: directory)
            // The end of c (file offsets 6000 to 26000; the stream's last segment refers to it)
            // changed after it was received.
            let handle = try #require(FileHandle(forWritingAtPath: spool.partialPath + "/images/disk.raw"))
            try handle.seek(toOffset: 25_900)
            try handle.write(contentsOf: Data([0]))
            try handle.close()
            let rebuild = try #require(SpoolRebuild(spool: spool))
            var bytes: [UInt8] = []
            while let segment = rebuild.next() { bytes += segment.bytes.readableBytesView }
            #expect(bytes == Array(Self.stream.prefix(bytes.count)))
            #expect(bytes.count < Self.stream.count)
            #expect(rebuild.stopped?.contains("SHA-256") == true)
            // Without the partial, nothing past the first reference rebuilds.
            try FileManager.default.removeItem(atPath: spool.partialPath)
            #expect(try Self.rebuilt(spool).count <= 4096)
        }
    }

    @Test func damagedRecordsAndUnsafePathsAreRefused() {
        #expect(SpoolRecord.decode(body: []) == nil)
        #expect(SpoolRecord.decode(body: [UInt8](repeating: 0xFF, count: 80)) == nil)
        let record = SpoolRecord(rawLength: 5, sha256: [UInt8](repeating: 1, count: 32), pieces: [.literal([1, 2]), .data(path: Array("a/b".utf8), fileOffset: 9, count: 3)])
        let body = Array(record.encoded().dropFirst(4))
        #expect(SpoolRecord.decode(body: body) == record)
        // A body that claims more bytes than its pieces hold, or is cut short.
        #expect(SpoolRecord.decode(body: body.dropLast()) == nil)
        for path in ["/etc/shadow", "../x", "a/../b", "a//b", "./a", ""] {
            #expect(!SpoolRecord.isPlainRelative(Array(path.utf8)), "\(path)")
            let unsafe = SpoolRecord(rawLength: 3, sha256: record.sha256, pieces: [.data(path: Array(path.utf8), fileOffset: 0, count: 3)])
            #expect(SpoolRecord.decode(body: Array(unsafe.encoded().dropFirst(4))) == nil)
        }
    }
}
