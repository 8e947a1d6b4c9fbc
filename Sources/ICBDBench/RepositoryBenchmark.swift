import Foundation
import ICBDProcess
import Replicator

/// `icbd bench repository`: manifest hashing of a large file against `sha256sum` of the same
/// file in the same run (both read it from the page cache).
public struct RepositoryBenchmark: Sendable {
    var fileSize: Int64 = 2 << 30
    var directory = FileManager.default.temporaryDirectory.path

    public init(fileSize: Int64, directory: String) {
        self.fileSize = fileSize
        self.directory = directory
    }

    public func run() async throws -> BenchReport {
        let path = (directory as NSString).appendingPathComponent("icbd-bench-\(UUID()).img")
        defer { try? FileManager.default.removeItem(atPath: path) }
        try writeFile(path)
        // Alternate the two so drift on a noisy machine hits both alike; the first of each warms up.
        var manifestTime = Duration.zero
        var oneThreadTime = Duration.zero
        var sha256sumTime = Duration.zero
        var oneThread = ManifestBuilder()
        oneThread.parallelism = 1
        for round in 0..<3 {
            let sum = try await timeSha256sum(path)
            let built = try await timeManifest(ManifestBuilder(), path: path)
            let serial = try await timeManifest(oneThread, path: path)
            if round > 0 {
                manifestTime += built
                oneThreadTime += serial
                sha256sumTime += sum
            }
        }
        let mebibytes = Double(2 * fileSize) / Double(1 << 20)
        let manifestRate = mebibytes / manifestTime.seconds
        let sumRate = mebibytes / sha256sumTime.seconds
        let ratio = manifestRate / sumRate
        let oneThreadRate = mebibytes / oneThreadTime.seconds
        var report = BenchReport(bench: "repository")
        report.figures.append(
            BenchFigure(
                name: "manifest hashing of a \(fileSize >> 20) MiB file", value: manifestRate, unit: "MiB/s",
                baseline: .init(name: "sha256sum of the same file", value: sumRate), ratio: ratio,
                goal: "ratio >= 1.5", met: ratio >= 1.5))
        report.figures.append(
            BenchFigure(
                name: "manifest hashing, all cores vs one thread", value: manifestRate, unit: "MiB/s",
                baseline: .init(name: "manifest hashing on one thread", value: oneThreadRate),
                ratio: manifestRate / oneThreadRate))
        return report
    }

    private func timeManifest(_ builder: ManifestBuilder, path: String) async throws -> Duration {
        let start = ContinuousClock.now
        let manifest = try await builder.build(path: path)
        guard manifest.fileSize == fileSize, manifest.zeroChunks == 0 else {
            throw BenchError("manifest of \(manifest.fileSize) bytes with \(manifest.zeroChunks) zero chunks")
        }
        return ContinuousClock.now - start
    }

    /// A file of non-zero, non-repeating chunks (zero chunks would skip hashing).
    private func writeFile(_ path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil),
            let handle = FileHandle(forWritingAtPath: path)
        else { throw BenchError("cannot create \(path)") }
        defer { try? handle.close() }
        var block = [UInt8](repeating: 0, count: 1 << 20)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<(fileSize >> 20) {
            for index in stride(from: 0, to: block.count, by: 8) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                withUnsafeBytes(of: state) { block.replaceSubrange(index..<index + 8, with: $0) }
            }
            try handle.write(contentsOf: block)
        }
    }

    private func timeSha256sum(_ path: String) async throws -> Duration {
        let start = ContinuousClock.now
        try await SystemCommand.run("/usr/bin/sha256sum", [path])
        return ContinuousClock.now - start
    }
}
