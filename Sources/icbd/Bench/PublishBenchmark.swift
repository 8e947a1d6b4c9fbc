import Catalog
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf

/// `icbd bench repository`, publish part: the time to publish a VM-like disk image of
/// `diskSize` (zeros, compressible and random regions) through a real replicator and catalog
/// over mutual TLS, next to `cp` of the same file into the same BTRFS in the same run; then a
/// second version with 10 MiB changed: its time, and the space it adds (`btrfs filesystem du`
/// exclusive bytes).
struct PublishBenchmark {
    var diskSize: Int64 = 1 << 30
    var changed: Int64 = 10 << 20
    /// A BTRFS directory to work in; nil: a loop-mounted one is made (needs root).
    var btrfsDirectory: String?
    let logger: Logger

    func run() async throws -> [BenchFigure] {
        if let btrfsDirectory { return try await run(in: btrfsDirectory) }
        let mount = try LoopBtrfsMount(
            size: "\(max(4, 3 * (diskSize >> 30) + 2))G",
            at: FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-btrfs-\(UUID())").path)
        defer { mount.unmount() }
        return try await run(in: mount.path)
    }

    private func run(in root: String) async throws -> [BenchFigure] {
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-publish-\(UUID())")
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: scratch) }
        let source = scratch.appendingPathComponent("src").path
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        try VMLikeDisk(size: diskSize).write(to: source + "/disk.raw")

        // The baseline: the same bytes copied into the same filesystem, synced.
        let copy = root + "/bench-copy.raw"
        defer { try? FileManager.default.removeItem(atPath: copy) }
        let copyStart = ContinuousClock.now
        try SystemCommand.run("/bin/cp", ["--sparse=always", source + "/disk.raw", copy])
        try SystemCommand.run("/bin/sync", ["-f", copy])
        let copyTime = ContinuousClock.now - copyStart

        let authority = try CertificateAuthority.create(commonName: "icbd bench CA")
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
            try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
        }
        let catalog = try CatalogService(
            configuration: CatalogConfiguration(
                listen: HostPort(host: "127.0.0.1", port: 0), databasePath: scratch.appendingPathComponent("catalog.db").path,
                tls: try identity(.catalog, "bench-catalog"), name: "bench-catalog"),
            logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await catalog.run() }
            defer { group.cancelAll() }
            let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
            let replicator = try ReplicatorService(
                configuration: ReplicatorConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                    tls: try identity(.replicator, "bench-repo"), name: "bench-repo"),
                logger: logger)
            group.addTask { try await replicator.run() }
            let admin = try identity(.admin, "bench-admin")
            // The site, and the replicator registered in it, so that its placements count.
            try await withRPCClient(RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger) {
                catalog in
                _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                for _ in 0..<500 where try await catalog.unary(CatalogMethods.listNodes, .init()).nodes.isEmpty {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let target = HostPort(host: "127.0.0.1", port: try await replicator.localAddress().port ?? 0)
            let configuration = RPCClientConfiguration(target: target, expectedRole: .replicator, tls: admin)
            return try await withRPCClient(configuration, logger: logger) { client in
                let first = try await timePublish(client, source: source)
                try VMLikeDisk(size: diskSize).change(changed, of: source + "/disk.raw")
                let second = try await timePublish(client, source: source)
                let added = try Subvolume.exclusiveBytes(at: replicator.repository.versionPath(of: try Name("bench"), 2))
                let mebibytes = Double(diskSize >> 20)
                return [
                    BenchFigure(
                        name: "publish of a \(diskSize >> 20) MiB VM-like disk",
                        value: first.seconds, unit: "s",
                        baseline: .init(name: "cp + sync into the same BTRFS", value: copyTime.seconds),
                        ratio: first.seconds / copyTime.seconds),
                    BenchFigure(
                        name: "publish throughput", value: mebibytes / first.seconds, unit: "MiB/s"),
                    BenchFigure(
                        name: "publish of v2, \(changed >> 20) MiB changed", value: second.seconds, unit: "s",
                        baseline: .init(name: "the first publish", value: first.seconds), ratio: second.seconds / first.seconds),
                    BenchFigure(
                        name: "space v2 adds (btrfs fi du exclusive)", value: Double(added) / Double(1 << 20),
                        unit: "MiB", goal: "about \(changed >> 20) MiB, not \(diskSize >> 20)", met: added < 2 * changed),
                ]
            }
        }
    }

    private func timePublish(_ client: RPCClient, source: String) async throws -> Duration {
        let files = try PublishSource.files(in: source)
        let start = ContinuousClock.now
        _ = try await client.clientStreaming(ReplicatorMethods.publish) { writer in
            try await writer.write(
                .with {
                    $0.start.image = "bench"
                    $0.start.files = files.map { file in .with { $0.path = file.path; $0.size = file.size } }
                })
            for (index, file) in files.enumerated() {
                try await PublishSource.stream(file, index: UInt32(index), from: source, to: writer)
            }
        }
        return ContinuousClock.now - start
    }
}

/// A disk image shaped like a VM template's: a third zeros (unused space), a third
/// compressible (text- and code-like), a third random (compressed data), in 4 MiB regions.
struct VMLikeDisk {
    let size: Int64

    func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw BenchError("cannot create \(path)")
        }
        defer { try? handle.close() }
        var generator = Generator(state: 0x1234_5678_9ABC_DEF1)
        let region = 4 << 20
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(region), size - offset))
            switch (offset / Int64(region)) % 3 {
            case 0:
                try handle.seek(toOffset: UInt64(offset + Int64(length)))  // a hole
            case 1:
                let line = Array("kernel: [    0.000000] Linux version 6.1.0 (debian-kernel@lists.debian.org) #\(offset)\n".utf8)
                try handle.write(contentsOf: (0..<length).map { line[$0 % line.count] })
            default:
                try handle.write(contentsOf: generator.bytes(length))
            }
            offset += Int64(length)
        }
        try handle.truncate(atOffset: UInt64(size))
    }

    /// Overwrites `amount` bytes, in 1 MiB pieces spread over the disk, with new random bytes.
    func change(_ amount: Int64, of path: String) throws {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw BenchError("cannot open \(path)") }
        defer { try? handle.close() }
        var generator = Generator(state: 0xFEED_FACE_CAFE_BEEF)
        let pieces = amount >> 20
        for piece in 0..<pieces {
            try handle.seek(toOffset: UInt64((size / pieces) * piece))
            try handle.write(contentsOf: generator.bytes(1 << 20))
        }
    }

    private struct Generator {
        var state: UInt64

        mutating func bytes(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            for index in stride(from: 0, to: count, by: 8) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                withUnsafeBytes(of: state) { word in
                    for byte in 0..<min(8, count - index) { bytes[index + byte] = word[byte] }
                }
            }
            return bytes
        }
    }
}
