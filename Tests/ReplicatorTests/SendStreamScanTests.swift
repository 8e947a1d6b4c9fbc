import Foundation
@testable import Replicator
import Testing

/// Synthetic send streams (btrfs-progs send.h layout), fed whole and split at every byte.
@Suite("Send stream scan")
struct SendStreamScanTests {
    static func le(_ value: UInt64, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }

    static func command(_ code: UInt16, _ attributes: [(UInt16, [UInt8])], version: UInt32 = 1) -> [UInt8] {
        var body: [UInt8] = []
        for (type, value) in attributes {
            body += le(UInt64(type), 2)
            // From version 2, DATA (19) has no length: it runs to the end of the command.
            if !(version >= 2 && type == 19) { body += le(UInt64(value.count), 2) }
            body += value
        }
        return le(UInt64(body.count), 4) + le(UInt64(code), 2) + le(0, 4) + body
    }

    static func stream(version: UInt32 = 1, _ commands: [[UInt8]]) -> [UInt8] {
        Array("btrfs-stream".utf8) + [0] + le(UInt64(version), 4) + commands.flatMap { $0 }
    }

    static let uuid = [UInt8](repeating: 7, count: 16)
    static let snapshot = command(2, [(15, Array("v2".utf8)), (1, uuid), (20, uuid)])
    static func write(_ offset: Int64, _ count: Int, version: UInt32 = 1) -> [UInt8] {
        command(15, [(15, Array("disk.raw".utf8)), (18, le(UInt64(offset), 8)), (19, [UInt8](repeating: 1, count: count))], version: version)
    }
    static let utimes = command(20, [(15, Array("disk.raw".utf8)), (11, le(0, 12)), (10, le(0, 12)), (9, le(0, 12))])

    static func scanned(_ bytes: [UInt8], pieces: Int) -> SendStreamScan {
        var scan = SendStreamScan()
        let size = max(1, (bytes.count + pieces - 1) / pieces)
        for start in stride(from: 0, to: bytes.count, by: size) {
            bytes[start..<min(bytes.count, start + size)].withUnsafeBytes { scan.consume($0) }
        }
        return scan
    }

    @Test(arguments: [1, 7, 1_000_000]) func writesAndTruncatesMarkTheirChunks(pieces: Int) {
        let mib: Int64 = 1 << 20
        let bytes = Self.stream([
            Self.snapshot, Self.write(5 * mib + 100, 1000), Self.write(5 * mib + 1100, 2000),
            Self.command(16, [(15, Array("disk.raw".utf8)), (18, Self.le(UInt64(9 * mib - 10), 8)), (24, Self.le(20, 8))]),
            Self.command(17, [(15, Array("disk.raw".utf8)), (4, Self.le(UInt64(40 * mib + 1), 8))]), Self.utimes,
        ])
        let scan = Self.scanned(bytes, pieces: min(pieces, bytes.count))
        #expect(!scan.reshaped && scan.isAtCommandBoundary)
        let untouched = scan.untouchedChunks(chunkSize: mib, count: 48)
        // The writes touch chunk 5, the clone straddles 8 and 9, the truncate everything from 40 on.
        #expect(untouched.indices.filter { !untouched[$0] } == [5, 8, 9] + Array(40..<48))
    }

    /// btrfs send re-clones the rest of every extent it splits from the parent, in place: those
    /// bytes stay the parent's. A clone from elsewhere (another offset, path or subvolume) does not.
    @Test(arguments: [1, 5]) func clonesOfTheParentsOwnBytesInPlaceTouchNothing(pieces: Int) {
        let mib: Int64 = 1 << 20
        func clone(_ offset: Int64, from source: Int64, path: String = "disk.raw", uuid: [UInt8] = Self.uuid) -> [UInt8] {
            Self.command(16, [
                (15, Array("disk.raw".utf8)), (18, Self.le(UInt64(offset), 8)), (24, Self.le(UInt64(mib), 8)), (20, uuid),
                (21, Self.le(1, 8)), (22, Array(path.utf8)), (23, Self.le(UInt64(source), 8)),
            ])
        }
        let other = [UInt8](repeating: 9, count: 16)
        let bytes = Self.stream([
            Self.snapshot, clone(2 * mib, from: 2 * mib), clone(4 * mib, from: 3 * mib), clone(6 * mib, from: 6 * mib, path: "other"),
            clone(8 * mib, from: 8 * mib, uuid: other), Self.utimes,
        ])
        let scan = Self.scanned(bytes, pieces: pieces)
        #expect(!scan.reshaped && scan.isAtCommandBoundary)
        let untouched = scan.untouchedChunks(chunkSize: mib, count: 10)
        #expect(untouched.indices.filter { !untouched[$0] } == [4, 6, 8])
    }

    @Test(arguments: [1, 13]) func aVersion2StreamsDataRunsToTheEndOfItsCommand(pieces: Int) {
        let bytes = Self.stream(version: 2, [Self.snapshot, Self.write(3 << 20, 5000, version: 2), Self.utimes])
        let scan = Self.scanned(bytes, pieces: pieces)
        #expect(!scan.reshaped && scan.isAtCommandBoundary)
        let expected: [Range<Int64>] = [(3 << 20)..<((3 << 20) + 5000)]
        #expect(scan.touched == expected)
    }

    @Test func renamesLinksAndUnknownCommandsMeanReadEverything() {
        let rename = Self.command(9, [(15, Array("o257-7-0".utf8)), (16, Array("disk.raw".utf8))])
        #expect(Self.scanned(Self.stream([Self.snapshot, rename]), pieces: 1).reshaped)
        let link = Self.command(10, [(15, Array("other".utf8)), (17, Array("disk.raw".utf8))])
        #expect(Self.scanned(Self.stream([Self.snapshot, link]), pieces: 3).reshaped)
        #expect(Self.scanned(Self.stream([Self.snapshot, Self.command(99, [])]), pieces: 1).reshaped)
        // A stream cut inside a command does not end at a command boundary.
        let cut = Self.stream([Self.snapshot, Self.write(0, 4000)]).dropLast(10)
        #expect(!Self.scanned(Array(cut), pieces: 2).isAtCommandBoundary)
    }
}
