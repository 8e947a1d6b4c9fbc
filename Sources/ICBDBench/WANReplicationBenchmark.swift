import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDLocalDeployment
import ICBDProcess
import ICBDProto
import ICBDRPC
import Logging
import LoopFileBtrfs
import NIOCore
import Replicator
import SwiftProtobuf
import SystemPackage

/// `icbd bench replication --wan`: the full replication of the VM-like image over an emulated
/// 100 Mbit/s WAN (``ShapedLink``), the site link configured at that rate (so lz4, at the LZ4 HC
/// level the rate calls for), next to the uncompressed `btrfs send | ssh | btrfs receive` over
/// the same link.
///
/// The catalog and hq's replicator run in this process on this side of the link; branch's
/// replicator runs as a child `icbd replicator` inside the link's namespace (`nsenter --net`),
/// with its certificate in a temporary `icbd pki` directory. The loop filesystems are mounted
/// here and seen from the namespace (only the network is separate).
public struct WANReplicationBenchmark: Sendable {
    var imageSize: Int64 = 1 << 30
    var directory = FileManager.default.temporaryDirectory.path
    let logger: Logger

    public init(imageSize: Int64, directory: String, logger: Logger) {
        self.imageSize = imageSize
        self.directory = directory
        self.logger = logger
    }

    /// 100 Mbit/s, as ``ShapedLink`` shapes it.
    static let linkBytesPerSecond: Int64 = 12_500_000

    public func run() async throws -> [BenchFigure] {
        let base = (directory as NSString).appendingPathComponent("icbd-bench-wan-\(UUID())")
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        return try await LoopBtrfsMount.with(size: "\(imageSize * 2 + (512 << 20))", at: base + "/hq") { hq in
            try await LoopBtrfsMount.with(size: "\(imageSize * 3 + (512 << 20))", at: base + "/branch") { branch in
                let link = ShapedLink()
                do {
                    try await link.create()
                    let figures = try await measure(hq: hq, branch: branch, base: base, link: link)
                    await link.remove()
                    return figures
                } catch {
                    await link.remove()
                    throw error
                }
            }
        }
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
        return try await BenchServices.with(logger: logger) { services in
            services.start(catalog)
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
                services.start(hq)
                let branch = try await Self.startBranch(
                    link: link, root: branchRoot, catalog: catalogAddress, pki: pki.path, log: base + "/branch.log")
                do {
                    let figures = try await transfer(hq: hq, branchRoot: branchRoot, link: link, admin: admin, catalog: catalogClient)
                    await Self.stop(branch)
                    return figures
                } catch {
                    await Self.stop(branch)
                    throw error
                }
            }
        }
    }

    /// A full transfer to the branch, timed, next to `btrfs send | ssh | btrfs receive` over the same link.
    private func transfer(
        hq: ReplicatorService, branchRoot: String, link: ShapedLink, admin: TLSIdentity, catalog catalogClient: RPCClient
    ) async throws -> [BenchFigure] {
        let hqAddress = HostPort(host: link.hostAddress, port: try await hq.localAddress().port ?? 0)
        return try await withRPCClient(
            RPCClientConfiguration(target: hqAddress, expectedRole: .replicator, tls: admin), logger: logger
        ) { hqClient in
            let bench = ReplicationBenchmark(imageSize: imageSize, directory: directory, logger: logger)
            let full = try await bench.publishAndWait(version: 1, changedSeed: nil, hq: hqClient, catalog: catalogClient)
            let v1 = hq.repository.versionPath(of: try Name("bench"), 1)
            let sshDirectory = branchRoot + "/ssh"
            try FileManager.default.createDirectory(atPath: sshDirectory, withIntermediateDirectories: true)
            let sshFull = try await PrivateSSHServer.with(address: link.peerAddress, namespacePath: link.namespacePath) { ssh in
                await Writeback.settle()
                return try await BtrfsPipe.time(send: [v1], receiveInto: sshDirectory, through: ssh)
            }
            let speedup = sshFull.elapsed.seconds / full.elapsed.seconds
            return [
                BenchFigure(
                    name: "full replication of a \(imageSize >> 20) MiB VM-like image over 100 Mbit/s (tbf), lz4 HC", value: full.elapsed.seconds,
                    unit: "s", baseline: .init(name: "btrfs send | ssh (no compression) | btrfs receive, same link", value: sshFull.elapsed.seconds),
                    ratio: speedup, goal: "ratio >= 1.8 (ssh time / icbd time)", met: speedup >= 1.8)
            ]
        }
    }

    /// `icbd replicator` for site branch inside the link's namespace, logging to `log`.
    private static func startBranch(link: ShapedLink, root: String, catalog: HostPort, pki: String, log: String) async throws -> SpawnedChild {
        try await SpawnedChild(
            "/usr/bin/nsenter",
            [
                "--net=\(link.namespacePath)", ChildProcess.binary.path, "replicator", "--listen", "\(link.peerAddress):0", "--root", root,
                "--site", "branch", "--catalog", catalog.description, "--tls-dir", pki, "--name", ReplicationBenchmark.branchReplicator,
                "--log-level", "warning",
            ],
            error: try FileDescriptor.open(FilePath(log), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: .ownerReadWrite))
    }

    /// Stops the branch's replicator (SIGTERM) and waits for it.
    private static func stop(_ branch: SpawnedChild) async {
        branch.send(SIGTERM)
        _ = try? await branch.exit()
    }
}
