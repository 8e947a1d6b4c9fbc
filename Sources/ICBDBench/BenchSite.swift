import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import SwiftProtobuf

/// Site `hq` of an in-process benchmark: a certificate authority for 127.0.0.1, a catalog, and
/// a repository (``MemoryRepository``) registered as the site's replicator, both started in
/// `services`. The cache and gateway benches build on it.
struct BenchSite {
    let catalogAddress: HostPort
    private let authority: CertificateAuthority

    /// A certificate of `role` named `name`, valid for 127.0.0.1.
    func identity(_ role: Role, _ name: String) throws -> TLSIdentity {
        try Self.identity(role, name, from: authority)
    }

    private static func identity(_ role: Role, _ name: String, from authority: CertificateAuthority) throws -> TLSIdentity {
        try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
    }

    /// Starts the catalog (its database in `directory`) and the repository, adds site `hq` and
    /// registers the repository; then `register`, as an admin, adds whatever the bench needs.
    /// `authority`: the CA of the site's certificates (default: a new one, in memory only).
    static func start(
        repository: MemoryRepository, directory: URL, services: BenchServices, logger: Logger, authority: CertificateAuthority? = nil,
        register: (RPCClient) async throws -> Void = { _ in }
    ) async throws -> BenchSite {
        let authority = try authority ?? CertificateAuthority.create(commonName: "icbd bench CA")
        func identity(_ role: Role, _ name: String) throws -> TLSIdentity { try Self.identity(role, name, from: authority) }
        let catalog = try CatalogService(
            configuration: CatalogConfiguration(
                listen: HostPort(host: "127.0.0.1", port: 0), databasePath: directory.appendingPathComponent("catalog.db").path,
                tls: try identity(.catalog, "bench-catalog"), name: "bench-catalog"),
            logger: logger)
        var router = RPCRouter()
        router.register(repository)
        let repositoryServer = try RPCServer(
            configuration: RPCServerConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), tls: try identity(.replicator, "bench-repo")),
            router: router, logger: logger)
        services.start(catalog)
        services.start(repositoryServer)
        let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalog.localAddress().port ?? 0)
        let repositoryPort = try await repositoryServer.localAddress().port ?? 0
        try await withRPCClient(
            RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: try identity(.admin, "bench-admin")), logger: logger
        ) { admin in
            _ = try await admin.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
            _ = try await admin.unary(
                CatalogMethods.registerNode,
                .with {
                    $0.name = "bench-repo"
                    $0.role = .replicator
                    $0.site = "hq"
                    $0.rpcAddress = "127.0.0.1:\(repositoryPort)"
                    $0.heartbeatTtlMs = 3_600_000
                })
            try await register(admin)
        }
        return BenchSite(catalogAddress: catalogAddress, authority: authority)
    }
}
