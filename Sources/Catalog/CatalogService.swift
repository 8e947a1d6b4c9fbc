import Foundation
import ICBDCore
import ICBDRPC
import Logging
import NIOCore
import ServiceLifecycle

/// How a catalog runs (`icbd catalog ...`).
public struct CatalogConfiguration: Sendable {
    /// Where the RPC server listens.
    public var listen: HostPort
    /// The database file (SQLite, created on first start).
    public var databasePath: String
    /// The catalog's certificate (role `catalog`), key and the deployment CA.
    public var tls: TLSIdentity
    /// This catalog's node name.
    public var name: String

    public init(listen: HostPort, databasePath: String, tls: TLSIdentity, name: String) {
        self.listen = listen
        self.databasePath = databasePath
        self.tls = tls
        self.name = name
    }
}

/// The catalog service: the source of truth for images, versions, tags, sites and nodes.
///
/// For now it serves Health only; the data model comes with its own issue.
public final class CatalogService: Service, Sendable {
    public let configuration: CatalogConfiguration
    private let server: RPCServer

    public init(configuration: CatalogConfiguration, logger: Logger) throws {
        let directory = (configuration.databasePath as NSString).deletingLastPathComponent
        guard FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory) else {
            throw CatalogError(
                "the database directory '\(directory)' does not exist or is not writable; create it or choose another --db")
        }
        self.configuration = configuration
        var router = RPCRouter()
        router.register(HealthService(role: .catalog, node: configuration.name))
        self.server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls),
            router: router,
            logger: logger
        )
    }

    /// The address the catalog listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }

    public func run() async throws {
        try await server.run()
    }
}

/// A catalog that cannot start or answer.
public struct CatalogError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { problem }
}
