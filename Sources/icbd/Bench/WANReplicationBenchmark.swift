import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf

/// `icbd bench replication --wan`: the full replication of the VM-like image over an emulated
/// 100 Mbit/s WAN (``ShapedLink``), the site link configured at that rate (so lz4, at the LZ4 HC
/// level the rate calls for), next to the uncompressed `btrfs send | ssh | btrfs receive` over
/// the same link.
///
/// The catalog and hq's replicator run in this process on this side of the link; branch's
/// replicator runs as a child `icbd replicator` inside the link's namespace (`nsenter --net`),
/// with its certificate in a temporary `icbd pki` directory. The loop filesystems are mounted
/// here and seen from the namespace (only the network is separate).
struct WANReplicationBenchmark {
    var imageSize: Int64 = 1 << 30
    var directory = FileManager.default.temporaryDirectory.path
    let logger: Logger

    /// 100 Mbit/s, as ``ShapedLink`` shapes it.
    static let linkBytesPerSecond: Int64 = 12_500_000

    func run() async throws -> [BenchFigure] {
        let base = (directory as NSString).appendingPathComponent("icbd-bench-wan-\(UUID())")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        let hq = LoopFilesystem(path: base + "/hq", size: imageSize * 2 + (512 << 20))
        let branch = LoopFilesystem(path: base + "/branch", size: imageSize * 3 + (512 << 20))
        let link = ShapedLink()
        defer {
            link.remove()
            hq.remove()
            branch.remove()
            try? FileManager.default.removeItem(atPath: base)
        }
        try hq.create()
        try branch.create()
        try link.create()
        return try await measure(hq: hq.path, branch: branch.path, base: base, link: link)
    }

    private func measure(hq hqRoot: String, branch branchRoot: String, base: String, link: ShapedLink) async throws -> [BenchFigure] {
        let pki = PKIDirectory(path: base + "/pki")
        let authority = try pki.initialize()
        try pki.issue(PeerIdentity(role: .replicator, name: ReplicationBenchmark.branchReplicator), ipAddresses: [link.peerAddress])
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
            try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: [link.hostAddress, "127.0.0.1"])
        }
        let catalog = try CatalogService(
            configuration: CatalogConfiguration(
                listen: HostPort(host: link.hostAddress, port: 0), databasePath: base + "/catalog.db",
                tls: try identity(.catalog, "bench-catalog"), name: "bench-catalog"),
            logger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await catalog.run() }
            defer { group.cancelAll() }
            let catalogAddress = HostPort(host: link.hostAddress, port: try await catalog.localAddress().port ?? 0)
            let admin = try identity(.admin, "admin")
            return try await withRPCClient(
                RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger
            ) { catalogClient in
                _ = try await catalogClient.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                // The link's rate as an administrator would configure it: lz4 by default below
                // 1 Gbit/s, LZ4 HC at 100 Mbit/s (``SegmentCompression``); tbf stays the limit.
                _ = try await catalogClient.unary(
                    CatalogMethods.putSite,
                    .with {
                        $0.site.name = "branch"
                        $0.site.links = [.with { $0.site = "hq"; $0.rateBytesPerSecond = Self.linkBytesPerSecond }]
                    })
                var configuration = ReplicatorConfiguration(
                    listen: HostPort(host: link.hostAddress, port: 0), root: hqRoot, site: try Name("hq"), catalog: catalogAddress,
                    tls: try identity(.replicator, "bench-hq"), name: "bench-hq")
                configuration.heartbeatInterval = .milliseconds(500)
                let hq = try ReplicatorService(configuration: configuration, logger: logger)
                group.addTask { try await hq.run() }
                let branch = try Self.startBranch(
                    link: link, root: branchRoot, catalog: catalogAddress, pki: pki.path, log: base + "/branch.log")
                defer {
                    branch.terminate()
                    _ = BtrfsPipe.exitStatus(branch)
                }
                let hqAddress = HostPort(host: link.hostAddress, port: try await hq.localAddress().port ?? 0)
                return try await withRPCClient(
                    RPCClientConfiguration(target: hqAddress, expectedRole: .replicator, tls: admin), logger: logger
                ) { hqClient in
                    let bench = ReplicationBenchmark(imageSize: imageSize, directory: directory, logger: logger)
                    let full = try await bench.publishAndWait(version: 1, changedSeed: nil, hq: hqClient, catalog: catalogClient)
                    let v1 = hq.repository.versionPath(of: try Name("bench"), 1)
                    let sshDirectory = branchRoot + "/ssh"
                    try FileManager.default.createDirectory(atPath: sshDirectory, withIntermediateDirectories: true)
                    let ssh = try PrivateSSHServer(address: link.peerAddress, namespacePath: link.namespacePath)
                    defer { ssh.stop() }
                    await Writeback.settle()
                    let sshFull = try BtrfsPipe.time(send: [v1], receiveInto: sshDirectory, through: ssh)
                    let speedup = sshFull.elapsed.seconds / full.elapsed.seconds
                    return [
                        BenchFigure(
                            name: "full replication of a \(imageSize >> 20) MiB VM-like image over 100 Mbit/s (tbf), lz4 HC", value: full.elapsed.seconds,
                            unit: "s", baseline: .init(name: "btrfs send | ssh (no compression) | btrfs receive, same link", value: sshFull.elapsed.seconds),
                            ratio: speedup, goal: "ratio >= 1.8 (ssh time / icbd time)", met: speedup >= 1.8)
                    ]
                }
            }
        }
    }

    /// `icbd replicator` for site branch inside the link's namespace, logging to `log`.
    private static func startBranch(link: ShapedLink, root: String, catalog: HostPort, pki: String, log: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = [
            "--net=\(link.namespacePath)", ChildProcess.binary.path, "replicator", "--listen", "\(link.peerAddress):0", "--root", root,
            "--site", "branch", "--catalog", catalog.description, "--tls-dir", pki, "--name", ReplicationBenchmark.branchReplicator, "--log-level", "warning",
        ]
        FileManager.default.createFile(atPath: log, contents: nil)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle(forWritingAtPath: log) ?? FileHandle.nullDevice
        try process.run()
        return process
    }
}
