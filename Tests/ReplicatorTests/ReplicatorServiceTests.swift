import Catalog
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

@Suite("The replicator service with a real catalog, on a real loop-mounted BTRFS")
struct ReplicatorServiceTests {
    @Test func registersHeartbeatsAndCleansUpWhatAnInterruptedPublishLeft() async throws {
        try await LoopBtrfs.with { root in
            try await withTemporaryDirectory { directory in
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let authority = try CertificateAuthority.create(commonName: "icbd replicator test CA \(UUID())")
                func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
                    try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
                }
                let database = directory.appendingPathComponent("catalog.db").path
                let catalog = try CatalogService(
                    configuration: CatalogConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), databasePath: database, tls: try identity(.catalog, "cat1"),
                        name: "cat1"),
                    logger: logger)

                // What an interrupted publish left: a read-only v1 the catalog never heard of, and a work.
                let repository = try ImageRepository(root: root)
                let image = try Name("win11")
                try repository.prepareWork(of: image, basedOn: nil)
                _ = try repository.commitWork(of: image, as: 1)
                try repository.prepareWork(of: image, basedOn: 1)

                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await catalog.run() }
                    defer { group.cancelAll() }
                    let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
                    var configuration = ReplicatorConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                        tls: try identity(.replicator, "repo-hq"), name: "repo-hq")
                    configuration.heartbeatInterval = .milliseconds(100)
                    let replicator = try ReplicatorService(configuration: configuration, logger: logger)
                    group.addTask { try await replicator.run() }

                    let admin = RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: try identity(.admin, "admin"))
                    try await withRPCClient(admin, logger: logger) { client in
                        _ = try await client.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        // Wait (as long as the test's own limit allows) for the registration.
                        var node: Icbd_Catalog_V1_Node?
                        while node == nil {
                            node = try await client.unary(CatalogMethods.listNodes, .init()).nodes.first { $0.name == "repo-hq" }
                            if node == nil { try await Task.sleep(for: .milliseconds(50)) }
                        }
                        #expect(node?.role == .replicator)
                        #expect(node?.site == "hq")
                        #expect(node?.state == .up)
                        let address = try await replicator.localAddress()
                        #expect(node?.rpcAddress == "127.0.0.1:\(address.port ?? 0)")
                    }
                    // Recovery ran before registration: the unknown v1 and the work are gone.
                    #expect(try repository.versions()[image] == nil)
                    #expect(!FileManager.default.fileExists(atPath: repository.workPath(of: image)))
                }
            }
        }
    }
    /// In a container the listening address (0.0.0.0) is no use to the other replicators and
    /// the cache nodes: the replicator registers the address it is told to advertise.
    @Test func registersTheAddressItAdvertises() async throws {
        try await LoopBtrfs.with { root in
            try await withTemporaryDirectory { directory in
                var logger = Logger(label: "test")
                logger.logLevel = .critical
                let authority = try CertificateAuthority.create(commonName: "icbd replicator test CA \(UUID())")
                func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
                    try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
                }
                let catalog = try CatalogService(
                    configuration: CatalogConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), databasePath: directory.appendingPathComponent("catalog.db").path,
                        tls: try identity(.catalog, "cat1"), name: "cat1"),
                    logger: logger)
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await catalog.run() }
                    defer { group.cancelAll() }
                    let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
                    var configuration = ReplicatorConfiguration(
                        listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                        tls: try identity(.replicator, "repo-hq"), name: "repo-hq")
                    configuration.advertisedAddress = HostPort(host: "replicator-hq", port: 7001)
                    configuration.heartbeatInterval = .milliseconds(100)
                    let replicator = try ReplicatorService(configuration: configuration, logger: logger)
                    group.addTask { try await replicator.run() }

                    let admin = RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: try identity(.admin, "admin"))
                    try await withRPCClient(admin, logger: logger) { client in
                        _ = try await client.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        var node: Icbd_Catalog_V1_Node?
                        while node == nil {
                            node = try await client.unary(CatalogMethods.listNodes, .init()).nodes.first { $0.name == "repo-hq" }
                            if node == nil { try await Task.sleep(for: .milliseconds(50)) }
                        }
                        #expect(node?.rpcAddress == "replicator-hq:7001")
                    }
                }
            }
        }
    }
}
