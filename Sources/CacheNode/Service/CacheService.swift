import CatalogClient
import CacheClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf
import NIOCore
import NIOPosix
import ServiceLifecycle

/// A cache node: the chunk store, its upstream fills and its RPC server; registers with the
/// catalog (role cache, with its capacity) and heartbeats with used bytes and hit ratio.
public final class CacheService: Service, Sendable {
    public let configuration: CacheConfiguration
    public let cache: ChunkCache
    public var store: ChunkStore { cache.store }
    public var metrics: CacheMetrics { cache.metrics }
    private let server: RPCServer
    private let catalog: RPCClient
    private let directory: UpstreamDirectory
    private let fetcher: UpstreamFetcher
    private let profiles: BootProfiles
    private let warmer: Warmer
    private let logger: Logger

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
        let scheduler = FillScheduler(
            store: store, metrics: metrics, batchSize: configuration.batchSize, warmWorkers: configuration.warmCalls)
        var catalogClient = RPCClientConfiguration(target: configuration.catalog, expectedRole: .catalog, tls: configuration.tls)
        catalogClient.alternates = configuration.catalogAlternates
        self.catalog = try RPCClient(configuration: catalogClient, logger: logger)
        let profiles = BootProfiles(catalog: catalog, node: configuration.name, window: configuration.bootProfileWindow, logger: logger)
        self.profiles = profiles
        self.cache = ChunkCache(
            store: store, metrics: metrics, scheduler: scheduler, readAhead: configuration.readAhead, logger: logger,
            observer: { profiles.served($0) })
        self.directory = UpstreamDirectory(catalog: catalog, site: configuration.site, tls: configuration.tls, logger: logger)
        var fetcher = UpstreamFetcher(directory: directory, metrics: metrics, logger: logger)
        fetcher.timeout = configuration.upstreamTimeout
        self.fetcher = fetcher
        var router = RPCRouter()
        router.register(
            HealthService(role: .cache, node: configuration.name, site: configuration.site.rawValue) {
                store.passThroughReason.map { "pass-through (nothing new is stored): \($0)" }
            })
        self.warmer = Warmer(catalog: catalog, cache: cache, logger: logger)
        router.register(CacheRPCService(cache: cache, warmer: warmer, profiles: profiles, logger: logger))
        self.server = try RPCServer(
            configuration: RPCServerConfiguration(listen: configuration.listen, tls: configuration.tls), router: router, group: group,
            logger: logger)
    }

    /// The address the cache listens on, once it does.
    public func localAddress() async throws -> SocketAddress {
        try await server.localAddress()
    }

    public func run() async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await self.catalog.run() }
            group.addTask { await self.directory.run() }
            group.addTask { try await self.server.run() }
            group.addTask { await self.maintain() }
            group.addTask {
                await RevocationFollower(list: self.configuration.tls.revocations, catalog: self.catalog, logger: self.logger).run()
            }
            if configuration.verifyInterval > .zero && configuration.scrubBytesPerSecond > 0 {
                let scrubber = ChunkScrubber(store: store, bytesPerSecond: configuration.scrubBytesPerSecond)
                group.addTask { await scrubber.run() }
            }
            for _ in 0..<max(1, configuration.upstreamCalls) {
                group.addTask { await self.cache.runWorker(fetcher: self.fetcher) }
            }
            defer { cache.scheduler.finish() }
            try await group.next()
            group.cancelAll()
        }
    }

    /// Registers, then heartbeats with used bytes and hit ratio until cancelled; retries a
    /// pass-through store's directory at each beat.
    private func maintain() async {
        var registered = false
        var placed: Set<BootProfileRecorder.Key>?
        while !Task.isCancelled {
            await store.probe()
            await profiles.publish()
            if configuration.warmNewVersions {
                do {
                    try await warmNewlyPlaced(known: &placed)
                } catch {
                    logger.warning("placements not checked", metadata: ["error": "\(error)"])
                }
            }
            do {
                if !registered {
                    try await register()
                    registered = true
                } else {
                    var beat = Icbd_Catalog_V1_HeartbeatRequest()
                    beat.name = configuration.name
                    beat.usedBytes = store.usedBytes
                    beat.hitRatio = metrics.hitRatio
                    _ = try await catalog.unary(CatalogMethods.heartbeat, beat, options: RPCCallOptions(timeout: .seconds(5)))
                }
            } catch let error as RPCError where error.code == .notFound {
                registered = false  // the catalog forgot this node: register again
                continue
            } catch {
                logger.warning("catalog unreachable", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Versions present on this site's repositories that were not at the last look are warmed,
    /// the chunks their predecessor's boot profile names, in its order. The first look only
    /// notes what is there.
    private func warmNewlyPlaced(known: inout Set<BootProfileRecorder.Key>?) async throws {
        let options = RPCCallOptions(timeout: .seconds(5))
        let replicators = try await catalog.allPages(
            CatalogMethods.listNodes,
            .with {
                $0.site = configuration.site.rawValue
                $0.role = .replicator
            }, options: options
        ).nodes.map(\.name)
        let placements = try await catalog.allPages(CatalogMethods.listPlacements, .init(), options: options).placements
        let present = Set(
            placements.filter { $0.state == .present && replicators.contains($0.node) }.map {
                BootProfileRecorder.Key(image: $0.image, version: $0.version)
            })
        guard let previous = known else {
            known = present
            return
        }
        // A version that could not be warmed yet (its placement is reported before it is ready)
        // stays new until it can.
        var handled = previous.intersection(present)
        for key in present.subtracting(previous) {
            do {
                try await warmNewVersion(key)
                handled.insert(key)
            } catch {
                logger.debug("newly placed version not warmed yet", metadata: ["image": "\(key.image)", "version": "\(key.version)", "error": "\(error)"])
            }
        }
        known = handled
    }

    private func warmNewVersion(_ key: BootProfileRecorder.Key) async throws {
        guard let name = try? Name(key.image), let profile = try await profiles.newest(image: name, upTo: key.version - 1) else {
            return
        }
        let profiled = Warmer.ordered(try await warmer.chunks(image: name, version: key.version), by: profile, profiledOnly: true)
        let siteCaches = try await catalog.allPages(
            CatalogMethods.listNodes,
            .with {
                $0.site = configuration.site.rawValue
                $0.role = .cache
            }, options: RPCCallOptions(timeout: .seconds(5))
        ).nodes.filter { $0.state == .up }.map(\.name)
        let wants = Warmer.share(of: profiled, for: configuration.name, among: siteCaches)
        let (queued, held) = warmer.warm(wants)
        logger.info(
            "warming a newly placed version by its predecessor's boot profile",
            metadata: [
                "image": "\(key.image)", "version": "\(key.version)", "profile": "\(profile.version)", "queued": "\(queued)",
                "held": "\(held)", "profiled": "\(profiled.count)", "siteCaches": "\(siteCaches.count)",
            ])
    }

    private func register() async throws {
        let address = try await localAddress()
        var request = Icbd_Catalog_V1_RegisterNodeRequest()
        request.name = configuration.name
        request.role = .cache
        request.site = configuration.site.rawValue
        request.rpcAddress = (configuration.advertisedAddress
            ?? HostPort(host: address.ipAddress ?? configuration.listen.host, port: address.port ?? 0)).description
        request.capacityBytes = configuration.capacity
        request.heartbeatTtlMs = configuration.heartbeatTTL.wholeMilliseconds
        _ = try await catalog.unary(CatalogMethods.registerNode, request, options: RPCCallOptions(timeout: .seconds(5)))
        logger.info(
            "registered with the catalog",
            metadata: ["site": "\(configuration.site)", "address": "\(request.rpcAddress)", "capacity": "\(configuration.capacity)"])
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
