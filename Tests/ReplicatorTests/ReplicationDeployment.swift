import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
@testable import Replicator
import SwiftProtobuf
import Testing

/// A real catalog and two real replicators, "repo-hq" at site hq and "repo-branch" at site
/// branch, each on its own loop-mounted BTRFS, in process; an admin client of the catalog and
/// of repo-hq (to publish).
struct ReplicationDeployment {
    let catalog: RPCClient
    let hq: RPCClient
    let hqRepository: ImageRepository
    let branchRepository: ImageRepository
    let hqAddress: HostPort
    let mint: @Sendable (Role, String) throws -> TLSIdentity
    let logger: Logger
    /// Makes another replicator for the branch repository (when the deployment runs none there).
    let makeBranch: @Sendable () throws -> ReplicatorService

    /// Runs `body` with a deployment; its temporary directory (the catalog's database) and
    /// BTRFS filesystems are removed after it, whether it returns or throws.
    static func with(
        branchReplicates: Bool = true, startBranch: Bool = true, branchSize: String = "1G", configure: @escaping @Sendable (inout ReplicationConfiguration) -> Void = { _ in },
        _ body: (ReplicationDeployment) async throws -> Void
    ) async throws {
        try await withTemporaryDirectory { directory in
            try await with(
                in: directory.path, branchReplicates: branchReplicates, startBranch: startBranch, branchSize: branchSize, configure: configure, body)
        }
    }

    private static func with(
        in directory: String, branchReplicates: Bool, startBranch: Bool, branchSize: String,
        configure: @escaping @Sendable (inout ReplicationConfiguration) -> Void, _ body: (ReplicationDeployment) async throws -> Void
    ) async throws {
        try await LoopBtrfs.with(size: "1G") { hqRoot in
            try await LoopBtrfs.with(size: branchSize) { branchRoot in
                let logger = {
                    var logger = Logger(label: "test")
                    logger.logLevel = ProcessInfo.processInfo.environment["ICBD_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
                    return logger
                }()
                let authority = try CertificateAuthority.create(commonName: "icbd replication test CA \(UUID())")
                let mint: @Sendable (Role, String) throws -> TLSIdentity = { role, name in
                    try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
                }
                let database = directory + "/catalog.db"
                let catalogService = try CatalogService(
                    configuration: CatalogConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), databasePath: database, tls: try mint(.catalog, "cat1"), name: "cat1"),
                    logger: logger)
                try await withRunningServices([catalogService], logger: logger) {
                    let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalogService.localAddress().port ?? 0)
                    @Sendable func replicator(_ name: String, site: String, root: String, pulls: Bool) throws -> ReplicatorService {
                        var configuration = ReplicatorConfiguration(
                            listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name(site), catalog: catalogAddress,
                            tls: try mint(.replicator, name), name: name)
                        configuration.heartbeatInterval = .milliseconds(100)
                        configuration.replication.scanInterval = .milliseconds(100)
                        configuration.replication.progressInterval = .milliseconds(200)
                        configuration.replication.initialBackoff = .milliseconds(50)
                        configuration.replication.maximumBackoff = .milliseconds(200)
                        configuration.replication.enabled = pulls
                        configure(&configuration.replication)
                        return try ReplicatorService(configuration: configuration, logger: logger)
                    }
                    let admin = try mint(.admin, "admin")
                    try await withRPCClient(
                        RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger
                    ) { catalog in
                        _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "branch" })
                        let hq = try replicator("repo-hq", site: "hq", root: hqRoot, pulls: false)
                        let branch = try replicator("repo-branch", site: "branch", root: branchRoot, pulls: branchReplicates)
                        try await withRunningServices(hq.services + (startBranch ? branch.services : []), logger: logger) {
                            while try await catalog.unary(CatalogMethods.listNodes, .init()).nodes.count < (startBranch ? 2 : 1) {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                            let hqAddress = HostPort(host: "127.0.0.1", port: try await hq.localAddress().port ?? 0)
                            try await withRPCClient(
                                RPCClientConfiguration(target: hqAddress, expectedRole: .replicator, tls: admin), logger: logger
                            ) { hqClient in
                                try await body(
                                    ReplicationDeployment(
                                        catalog: catalog, hq: hqClient, hqRepository: hq.repository, branchRepository: branch.repository,
                                        hqAddress: hqAddress, mint: mint, logger: logger,
                                        makeBranch: { try replicator("repo-branch", site: "branch", root: branchRoot, pulls: true) }))
                            }
                        }
                    }
                }
            }
        }
    }

    func siteRevision(_ name: String) async throws -> Int64 {
        let sites = try await catalog.unary(CatalogMethods.listSites, .init()).sites
        return sites.first { $0.name == name }?.revision ?? 0
    }

    /// Waits (within the test's own limit) until repo-branch's placement of `version` is final.
    func settledPlacement(image: String, version: Int64) async throws -> Icbd_Catalog_V1_Placement {
        for _ in 0..<3000 {
            let placements = try await catalog.unary(CatalogMethods.listPlacements, .with { $0.image = image; $0.node = "repo-branch" })
            if let placement = placements.placements.first(where: { $0.version == version }),
                placement.state == .present || (placement.state == .failed && placement.detail.hasPrefix("gave up"))
            {
                return placement
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw ReplicationTestError("version \(version) of \(image) never settled at repo-branch")
    }
}

struct ReplicationTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A VM-like disk: random, compressible and zero regions, from a seed.
func vmLikeDisk(mebibytes: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = [UInt8](repeating: 0, count: mebibytes << 20)
    for mib in 0..<mebibytes {
        let range = (mib << 20)..<((mib + 1) << 20)
        switch mib % 4 {
        case 0, 1: fillRandom(&bytes, range, &generator)
        case 2: for offset in stride(from: range.lowerBound, to: range.upperBound, by: 64) { bytes[offset] = UInt8(truncatingIfNeeded: offset >> 6) }
        default: break  // zeros
        }
    }
    return bytes
}

/// Overwrites `mebibytes` whole MiB of `bytes` (every other data MiB) with new random bytes.
func changed(_ bytes: [UInt8], mebibytes: Int, seed: UInt64) -> [UInt8] {
    var generator = SeededGenerator(seed: seed)
    var bytes = bytes
    for index in 0..<mebibytes {
        let mib = (index * 4) % (bytes.count >> 20)
        fillRandom(&bytes, (mib << 20)..<((mib + 1) << 20), &generator)
    }
    return bytes
}

func fillRandom(_ bytes: inout [UInt8], _ range: Range<Int>, _ generator: inout SeededGenerator) {
    bytes.withUnsafeMutableBytes { raw in
        for offset in stride(from: range.lowerBound, to: range.upperBound, by: 8) {
            raw.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
        }
    }
}
