import Catalog
import CatalogClient
import Foundation
import ICBDTestSupport
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import SwiftProtobuf
import Testing

@Suite("The replicator service with a real catalog, on a real loop-mounted BTRFS", .requiresLoopBtrfs)
struct ReplicatorServiceTests {
    @Test func registersHeartbeatsAndCleansUpWhatAnInterruptedPublishLeft() async throws {
        try await LoopBtrfs.with { root in
            // What an interrupted publish left: a read-only v1 the catalog never heard of, and a work.
            let repository = try ImageRepository(root: root)
            let image = try Name("win11")
            try repository.prepareWork(of: image, basedOn: nil)
            _ = try repository.commitWork(of: image, as: 1)
            try repository.prepareWork(of: image, basedOn: 1)

            let (node, port) = try await registeredReplicator(root: root)
            #expect(node.role == .replicator)
            #expect(node.site == "hq")
            #expect(node.state == .up)
            #expect(node.rpcAddress == "127.0.0.1:\(port)")
            // Recovery ran before registration: the unknown v1 and the work are gone.
            #expect(try repository.versions()[image] == nil)
            #expect(!FileManager.default.fileExists(atPath: repository.workPath(of: image)))
        }
    }

    /// In a container the listening address (0.0.0.0) is no use to the other replicators and
    /// the cache nodes: the replicator registers the address it is told to advertise.
    @Test func registersTheAddressItAdvertises() async throws {
        try await LoopBtrfs.with { root in
            let (node, _) = try await registeredReplicator(root: root) {
                $0.advertisedAddress = HostPort(host: "replicator-hq", port: 7001)
            }
            #expect(node.rpcAddress == "replicator-hq:7001")
        }
    }

    /// Runs a catalog and replicator `repo-hq` of site `hq` on `root` (its configuration
    /// changed by `configure`) until the replicator has registered; returns the node the catalog
    /// lists and the port the replicator listens on.
    private func registeredReplicator(
        root: String, configure: (inout ReplicatorConfiguration) -> Void = { _ in }
    ) async throws -> (node: Icbd_Catalog_V1_Node, port: Int) {
        try await withTemporaryDirectory { directory in
            let logger = quietLogger()
            let authority = try CertificateAuthority.create(commonName: "icbd replicator test CA \(UUID())")
            func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
                try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let catalog = try CatalogService(
                configuration: CatalogConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), databasePath: directory.appendingPathComponent("catalog.db").path,
                    tls: try identity(.catalog, "cat1"), name: "cat1"),
                logger: logger)
            return try await withRunningServices([catalog], logger: logger) {
                let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
                var configuration = ReplicatorConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                    tls: try identity(.replicator, "repo-hq"), name: "repo-hq")
                configuration.heartbeatInterval = .milliseconds(100)
                configure(&configuration)
                let replicator = try ReplicatorService(configuration: configuration, logger: logger)
                return try await withRunningServices(replicator.services, logger: logger) {
                    let admin = RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: try identity(.admin, "admin"))
                    let node = try await withRPCClient(admin, logger: logger) { client in
                        _ = try await client.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        // Wait (as long as the test's own limit allows) for the registration.
                        while true {
                            if let node = try await client.unary(CatalogMethods.listNodes, .init()).nodes.first(where: { $0.name == "repo-hq" }) {
                                return node
                            }
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    return (node, try await replicator.localAddress().port ?? 0)
                }
            }
        }
    }
}
