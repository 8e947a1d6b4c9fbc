import Foundation
import Replicator
import Testing

@Suite("Sparse file writing")
struct SparseFileWriterTests {
    /// 8 MiB: zeros except 3 data runs, one of them not block-aligned, one at the very end.
    func content() -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        for (start, length) in [(100, 5000), (3 << 20, 1 << 20), ((8 << 20) - 10, 10)] {
            for index in start..<start + length { bytes[index] = UInt8(truncatingIfNeeded: index % 251 + 1) }
        }
        return bytes
    }

    @Test(arguments: [1000, 4095, 4096, 65536, 1 << 20, 8 << 20])
    func writesTheSameBytesAndLeavesZerosAsHoles(pieceSize: Int) throws {
        let bytes = content()
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparse-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var writer = try SparseFileWriter(path: path)
        for start in stride(from: 0, to: bytes.count, by: pieceSize) {
            try bytes[start..<min(start + pieceSize, bytes.count)].withUnsafeBytes { try writer.write($0) }
        }
        #expect(try writer.finish() == Int64(bytes.count))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(bytes))
        var stats = stat()
        #expect(stat(path, &stats) == 0)
        // About 1 MiB of data in an 8 MiB file: far less than the size is allocated.
        #expect(Int64(stats.st_blocks) * 512 < Int64(bytes.count) / 2, "allocated \(stats.st_blocks * 512) bytes")
    }

    @Test func aTrailingZeroRunStillCountsInTheSize() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparse-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var writer = try SparseFileWriter(path: path)
        try [UInt8](repeating: 7, count: 10).withUnsafeBytes { try writer.write($0) }
        try [UInt8](repeating: 0, count: 1 << 20).withUnsafeBytes { try writer.write($0) }
        #expect(try writer.finish() == (1 << 20) + 10)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == (1 << 20) + 10)
    }

    @Test func refusesToOverwriteAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparse-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        #expect(throws: SparseFileError.self) { _ = try SparseFileWriter(path: path) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
    }

    @Test func overwritingWritesOnlyTheBlocksThatDiffer() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparse-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        var old = content()
        FileManager.default.createFile(atPath: path, contents: Data(old))
        // Change 10 bytes inside one block, zero one data block, and cut the file 1 MiB shorter.
        for index in (3 << 20) + 50..<(3 << 20) + 60 { old[index] ^= 0xFF }
        for index in (3 << 20) + 8192..<(3 << 20) + 12288 { old[index] = 0 }
        let new = Array(old[0..<(7 << 20)])
        var writer = try SparseFileWriter(overwriting: path)
        for start in stride(from: 0, to: new.count, by: 65536) {
            try new[start..<min(start + 65536, new.count)].withUnsafeBytes { try writer.write($0) }
        }
        #expect(writer.writtenBytes == 2 * 4096)
        #expect(try writer.finish() == Int64(new.count))
        #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == Data(new))
    }

    @Test func overwritingRefusesASymbolicLink() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sparse-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: "/etc/hostname")
        #expect(throws: SparseFileError.self) { _ = try SparseFileWriter(overwriting: path) }
    }
}
