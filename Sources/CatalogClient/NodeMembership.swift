import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle

/// A node's membership in the catalog: registers it (role, name, site, advertised addresses,
/// capacity, heartbeat TTL), then heartbeats every ``Registration/heartbeatInterval`` with what
/// `usage` reports, and registers again when the catalog answers NOT_FOUND (an operator removed
/// the node). A catalog that is down is retried at the heartbeat interval; the catalog client,
/// given several catalog addresses, fails over to the next (docs/catalog.md "High availability").
/// A `Service`: it stops at graceful shutdown.
public final class NodeMembership: Service, Sendable {
    /// What a node registers as.
    public struct Registration: Sendable {
        public var name: String
        public var role: NodeRole
        public var site: Name
        /// Bytes a cache node may hold (0 for other roles).
        public var capacityBytes: Int64 = 0
        public var heartbeatInterval: Duration
        /// Without a heartbeat for this long, the catalog marks the node down.
        public var heartbeatTTL: Duration

        public init(name: String, role: NodeRole, site: Name, heartbeatInterval: Duration, heartbeatTTL: Duration) {
            self.name = name
            self.role = role
            self.site = site
            self.heartbeatInterval = heartbeatInterval
            self.heartbeatTTL = heartbeatTTL
        }
    }

    /// Where other nodes reach this one, once it listens.
    public struct Endpoints: Sendable {
        /// icbd/1 (replicators, cache nodes).
        public var rpc: HostPort?
        /// HTTP (gateways).
        public var http: HostPort?

        public init(rpc: HostPort? = nil, http: HostPort? = nil) {
            self.rpc = rpc
            self.http = http
        }
    }

    public let registration: Registration
    private let catalog: RPCClient
    private let endpoints: @Sendable () async throws -> Endpoints
    private let usage: @Sendable () -> CacheUsage?
    private let ready: @Sendable () async -> Void
    private let logger: Logger

    /// - Parameters:
    ///   - endpoints: waits until the node listens and says where.
    ///   - usage: what a heartbeat reports (cache nodes); nil reports nothing.
    ///   - ready: waits until the node may register (a replicator first recovers its repository).
    public init(
        catalog: RPCClient, registration: Registration, logger: Logger, endpoints: @escaping @Sendable () async throws -> Endpoints,
        usage: @escaping @Sendable () -> CacheUsage? = { nil }, ready: @escaping @Sendable () async -> Void = {}
    ) {
        self.catalog = catalog
        self.registration = registration
        self.endpoints = endpoints
        self.usage = usage
        self.ready = ready
        self.logger = logger
    }

    /// Registers and heartbeats until graceful shutdown.
    public func run() async {
        await cancelWhenGracefulShutdown {
            await self.ready()
            var registered = false
            while !Task.isCancelled {
                do {
                    if registered {
                        try await self.heartbeat()
                    } else {
                        try await self.register()
                        registered = true
                    }
                } catch let error as RPCError where error.code == .notFound {
                    registered = false  // the catalog forgot this node (removed by an operator): register again
                    continue
                } catch {
                    if Task.isCancelled { return }
                    self.logger.warning("catalog unreachable", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.registration.heartbeatInterval)
            }
        }
    }

    private func register() async throws {
        let endpoints = try await endpoints()
        var request = Icbd_Catalog_V1_RegisterNodeRequest()
        request.name = registration.name
        request.role = Icbd_Catalog_V1_NodeRole(registration.role)
        request.site = registration.site.rawValue
        request.rpcAddress = endpoints.rpc?.description ?? ""
        request.httpAddress = endpoints.http?.description ?? ""
        request.capacityBytes = registration.capacityBytes
        request.heartbeatTtlMs = registration.heartbeatTTL.wholeMilliseconds
        _ = try await catalog.unary(CatalogMethods.registerNode, request, options: RPCCallOptions(timeout: .seconds(5)))
        logger.info(
            "registered with the catalog",
            metadata: [
                "role": "\(registration.role)", "site": "\(registration.site)", "rpc": "\(request.rpcAddress)",
                "http": "\(request.httpAddress)", "capacity": "\(registration.capacityBytes)",
            ])
    }

    private func heartbeat() async throws {
        var beat = Icbd_Catalog_V1_HeartbeatRequest()
        beat.name = registration.name
        if let usage = usage() {
            beat.usedBytes = usage.usedBytes
            beat.hitRatio = usage.hitRatio
        }
        _ = try await catalog.unary(CatalogMethods.heartbeat, beat, options: RPCCallOptions(timeout: .seconds(5)))
    }
}
