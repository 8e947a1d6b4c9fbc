import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ReplicatorClient
import ICBDProto
import ICBDProcess
import ICBDRPC
import ICBDSample
import Logging
import LoopFileBtrfs
import NIOCore
import Replicator
import SwiftProtobuf

/// `icbd bench repository`, publish part: the time to publish a VM-like disk image of
/// `diskSize` (zeros, compressible and random regions) through a real replicator and catalog
/// over mutual TLS, next to `cp` of the same file into the same BTRFS in the same run; then a
/// second version with 10 MiB changed: its time, and the space it adds (`btrfs filesystem du`
/// exclusive bytes).
public struct PublishBenchmark: Sendable {
    var diskSize: Int64 = 1 << 30
    var changed: Int64 = 10 << 20
    /// A BTRFS directory to work in; nil: a loop-mounted one is made (needs root).
    var btrfsDirectory: String?
    let logger: Logger

    public init(diskSize: Int64, btrfsDirectory: String?, logger: Logger) {
        self.diskSize = diskSize
        self.btrfsDirectory = btrfsDirectory
        self.logger = logger
    }

    public func run() async throws -> [BenchFigure] {
        if let btrfsDirectory { return try await run(in: btrfsDirectory) }
        return try await LoopBtrfsMount.with(
            size: "\(max(4, 3 * (diskSize >> 30) + 2))G",
            at: FileManager.default.temporaryDirectory.appendingPathComponent("icbd-bench-btrfs-\(UUID())").path
        ) { path in
            try await run(in: path)
        }
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
        try await SystemCommand.run("/bin/cp", ["--sparse=always", source + "/disk.raw", copy])
        try await SystemCommand.run("/bin/sync", ["-f", copy])
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
        return try await BenchServices.with(logger: logger) { services in
            services.start(catalog)
            let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
            let replicator = try ReplicatorService(
                configuration: ReplicatorConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                    tls: try identity(.replicator, "bench-repo"), name: "bench-repo"),
                logger: logger)
            services.start(replicator)
            let admin = try identity(.admin, "bench-admin")
            // The site, and the replicator registered in it, so that its placements count.
            try await withRPCClient(RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger) {
                catalog in
                _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                for _ in 0..<500 where try await catalog.allPages(CatalogMethods.listNodes, .init()).nodes.isEmpty {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let target = HostPort(host: "127.0.0.1", port: try await replicator.localAddress().port ?? 0)
            let configuration = RPCClientConfiguration(target: target, expectedRole: .replicator, tls: admin)
            return try await withRPCClient(configuration, logger: logger) { client in
                let first = try await timePublish(client, source: source)
                try VMLikeDisk(size: diskSize, changedPieces: changed >> 20).write(to: source + "/disk.raw")
                let second = try await timePublish(client, source: source)
                let added = try await BtrfsUsage.exclusiveBytes(at: replicator.repository.versionPath(of: try Name("bench"), 2))
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
