import CatalogClient
import CacheClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwiftProtobuf

/// A cache node: the chunk store, its upstream fills and its RPC server; registers with the
/// catalog (role cache, with its capacity) and heartbeats with used bytes and hit ratio
/// (``NodeMembership``). Its parts run as ``services`` in the process's `ServiceGroup`.
public final class CacheService: Service, Sendable {
    public let configuration: CacheConfiguration
    public let cache: ChunkCache
    public var store: ChunkStore { cache.store }
    public var metrics: CacheMetrics { cache.metrics }
    /// The parts, in start order; graceful shutdown stops them in reverse: upkeep, membership,
    /// then the server (calls in flight finish, with their fills), the fill workers, the catalog
    /// follower, the upstream pool and the catalog client last.
    public let services: [any Service]
    private let logger: Logger
    private let server: RPCServer

    /// Opens the store (a directory that takes no writes makes a pass-through) and prepares the
    /// server, on `group`'s event loops.
    public init(
        configuration: CacheConfiguration, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger
    ) throws {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "node"] = "\(configuration.name)"
        self.logger = logger
        let metrics = CacheMetrics(node: configuration.name)
        let store = ChunkStore(
            directory: configuration.directory, capacity: configuration.capacity, policy: configuration.eviction, metrics: metrics,
            logger: logger, verifyInterval: configuration.verifyInterval)
        // Tells a gateway on this host which node owns the directory (the same-host path).
        do {
            try CacheNodeIdentity(name: configuration.name, site: configuration.site.rawValue)
                .write(to: CacheDirectoryLayout(directory: configuration.directory))
        } catch {
            logger.warning(
                "cannot write the node's identity into its directory; a gateway on this host reads its chunks but fills through any node",
                metadata: ["error": "\(error)"])
        }
        let scheduler = FillScheduler(
            store: store, metrics: metrics, batchSize: configuration.batchSize, warmWorkers: configuration.warmCalls)
        var catalogClient = RPCClientConfiguration(target: configuration.catalog, expectedRole: .catalog, tls: configuration.tls)
        catalogClient.alternates = configuration.catalogAlternates
        let catalog = try RPCClient(configuration: catalogClient, logger: logger)
        let profiles = BootProfiles(catalog: catalog, node: configuration.name, window: configuration.bootProfileWindow, logger: logger)
        let cache = ChunkCache(
            store: store, metrics: metrics, scheduler: scheduler, readAhead: configuration.readAhead, logger: logger,
            observer: { profiles.served($0) })
        self.cache = cache
        let pool = RPCClientPool(configuration: RPCClientPool.Configuration(tls: configuration.tls), logger: logger)
        let directory = UpstreamDirectory(catalog: catalog, site: configuration.site, pool: pool, logger: logger)
        var fetcher = UpstreamFetcher(directory: directory, metrics: metrics, logger: logger)
        fetcher.timeout = configuration.upstreamTimeout
        var router = RPCRouter()
        router.register(
            HealthService(role: .cache, node: configuration.name, site: configuration.site.rawValue) {
                store.passThroughReason.map { "pass-through (nothing new is stored): \($0)" }
            })
        let warmer = Warmer(catalog: catalog, cache: cache, logger: logger)
        router.register(CacheRPCService(cache: cache, warmer: warmer, profiles: profiles, logger: logger))
        let server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls), router: router, group: group,
            logger: logger)
        self.server = server
        var registration = NodeMembership.Registration(
            name: configuration.name, role: .cache, site: configuration.site, heartbeatInterval: configuration.heartbeatInterval,
            heartbeatTTL: configuration.heartbeatTTL)
        registration.capacityBytes = configuration.capacity
        let membership = NodeMembership(
            catalog: catalog, registration: registration, logger: logger,
            endpoints: {
                let address = try await server.localAddress()
                return NodeMembership.Endpoints(
                    rpc: configuration.advertisedAddress
                        ?? HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0))
            },
            usage: { CacheUsage(usedBytes: store.usedBytes, hitRatio: metrics.hitRatio) })
        var services: [any Service] = [
            catalog, pool, directory.follower, FillWorkers(cache: cache, fetcher: fetcher, count: configuration.upstreamCalls),
        ]
        if configuration.verifyInterval > .zero && configuration.scrubBytesPerSecond > 0 {
            services.append(ChunkScrubber(store: store, bytesPerSecond: configuration.scrubBytesPerSecond))
        }
        services += [
            server,
            RevocationFollower(list: configuration.tls.revocations, catalog: catalog, logger: logger),
            membership,
            CacheUpkeep(
                node: configuration.name, store: store, profiles: profiles, warmer: warmer, directory: directory,
                interval: configuration.heartbeatInterval, warmNewVersions: configuration.warmNewVersions, logger: logger),
        ]
        self.services = services
    }

    /// Runs ``services`` in a `ServiceGroup` of their own until graceful shutdown: for a process
    /// that runs several nodes (tests, benchmarks). `icbd cache` puts ``services`` straight into
    /// the process's one group instead.
    public func run() async throws {
        try await ServiceGroup(services: services, logger: logger).run()
    }

    /// The address the cache listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }
}

/// The cache's RPC methods.
struct CacheRPCService: RPCService {
    let cache: ChunkCache
    let warmer: Warmer
    let profiles: BootProfiles
    let logger: Logger

    func register(into router: inout RPCRouter) {
        router.serverStreaming(CacheMethods.getChunks) { request, writer, _ in
            try await cache.serve(request, to: writer)
        }
        router.unary(CacheMethods.noteReads) { request, _ in
            guard request.offset == 0, request.length == 0 else {
                throw RPCError(code: .invalidArgument, message: "NoteReads names whole chunks: no offset or length")
            }
            let wants = try ChunkCache.wants(of: request)
            return .with { $0.chunksHeld = Int64(cache.noteSameHostReads(wants)) }
        }
        router.unary(CacheMethods.warm) { request, _ in
            let image: Name
            do { image = try Name(request.image) } catch { throw RPCError(code: .invalidArgument, message: "image: \(error)") }
            guard request.version > 0 else { throw RPCError(code: .invalidArgument, message: "version must be 1 or more") }
            // The version's own profile if it has one, else its predecessor's, first; without the
            // catalog's answer, manifest order.
            let profile: BootProfile?
            do {
                profile = try await profiles.newest(image: image, upTo: request.version)
            } catch {
                logger.warning("boot profile not read; warming in manifest order", metadata: ["image": "\(image)", "error": "\(error)"])
                profile = nil
            }
            let wants = Warmer.ordered(try await warmer.chunks(image: image, version: request.version), by: profile)
            let (queued, held) = warmer.warm(wants)
            return .with {
                $0.chunksQueued = Int64(queued)
                $0.chunksHeld = Int64(held)
            }
        }
    }
}
