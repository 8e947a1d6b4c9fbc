import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf
import Synchronization

/// A repository the cache can fetch from.
struct UpstreamSource: Sendable {
    let node: String
    let site: String
    let client: RPCClient
}

/// Which repositories to ask, from the catalog: replicators of this site first, then of other
/// sites; for a version, those holding it (placement `present`) first. Node lists and placements
/// are kept for a few seconds; one client per repository, kept while the cache runs.
final class UpstreamDirectory: Sendable {
    private struct State {
        var nodes: [Icbd_Catalog_V1_Node] = []
        var nodesFetched: ContinuousClock.Instant?
        var placements: [String: (fetched: ContinuousClock.Instant, present: [Int64: Set<String>])] = [:]
        var clients: [String: RPCClient] = [:]
        var images: [String] = []
        var imagesFetched: ContinuousClock.Instant?
    }

    private let catalog: RPCClient
    private let site: Name
    private let tls: TLSIdentity
    private let logger: Logger
    private let freshness: Duration
    private let state = Mutex(State())
    private let newClients: AsyncStream<RPCClient>
    private let addClient: AsyncStream<RPCClient>.Continuation

    init(catalog: RPCClient, site: Name, tls: TLSIdentity, logger: Logger, freshness: Duration = .seconds(5)) {
        self.catalog = catalog
        self.site = site
        self.tls = tls
        self.logger = logger
        self.freshness = freshness
        (newClients, addClient) = AsyncStream.makeStream()
    }

    /// Runs the repositories' clients until cancelled.
    func run() async {
        await withDiscardingTaskGroup { group in
            for await client in newClients {
                group.addTask { await client.run() }
            }
            group.cancelAll()
        }
    }

    /// The repositories to ask for a group of chunks, best first.
    func sources(for group: FillGroup) async throws -> [UpstreamSource] {
        let nodes = try await replicators()
        var holders: Set<String> = []
        if case .file(let image, let version, _) = group {
            holders = (try? await present(image: image))?[version] ?? []
        }
        let ranked = nodes.sorted { rank($0, holders) < rank($1, holders) }
        return ranked.compactMap { node in
            guard node.state != .down, let client = client(for: node) else { return nil }
            return UpstreamSource(node: node.name, site: node.site, client: client)
        }
    }

    /// The images the catalog lists (at most 1000), for misses that name none.
    func images() async throws -> [String] {
        let now = ContinuousClock.now
        if let cached = state.withLock({ state -> [String]? in
            guard let fetched = state.imagesFetched, now - fetched < freshness else { return nil }
            return state.images
        }) {
            return cached
        }
        let images = try await catalog.allPages(
            CatalogMethods.listImages, .with { $0.pageSize = 1000 }, options: RPCCallOptions(timeout: .seconds(5))
        ).images.map(\.image.name)
        state.withLock { state in
            state.images = images
            state.imagesFetched = now
        }
        return images
    }

    /// Forgets the cached node list (a repository failed: maybe it moved).
    func invalidate() {
        state.withLock { $0.nodesFetched = nil }
    }

    private func rank(_ node: Icbd_Catalog_V1_Node, _ holders: Set<String>) -> Int {
        (node.site == site.rawValue ? 0 : 2) + (holders.isEmpty || holders.contains(node.name) ? 0 : 1)
            + (node.state == .up ? 0 : 4)
    }

    private func replicators() async throws -> [Icbd_Catalog_V1_Node] {
        let now = ContinuousClock.now
        if let cached = state.withLock({ state -> [Icbd_Catalog_V1_Node]? in
            guard let fetched = state.nodesFetched, now - fetched < freshness else { return nil }
            return state.nodes
        }) {
            return cached
        }
        let nodes = try await catalog.allPages(
            CatalogMethods.listNodes, .with { $0.role = .replicator }, options: RPCCallOptions(timeout: .seconds(5))
        ).nodes
        state.withLock { state in
            state.nodes = nodes
            state.nodesFetched = now
        }
        return nodes
    }

    private func present(image: String) async throws -> [Int64: Set<String>] {
        let now = ContinuousClock.now
        if let cached = state.withLock({ state -> [Int64: Set<String>]? in
            guard let entry = state.placements[image], now - entry.fetched < freshness else { return nil }
            return entry.present
        }) {
            return cached
        }
        let placements = try await catalog.allPages(
            CatalogMethods.listPlacements, .with { $0.image = image }, options: RPCCallOptions(timeout: .seconds(5))
        ).placements
        var present: [Int64: Set<String>] = [:]
        for placement in placements where placement.state == .present {
            present[placement.version, default: []].insert(placement.node)
        }
        state.withLock { state in
            if state.placements.count > 1024 { state.placements = [:] }  // bounded
            state.placements[image] = (now, present)
        }
        return present
    }

    private func client(for node: Icbd_Catalog_V1_Node) -> RPCClient? {
        guard let address = try? HostPort(parsing: node.rpcAddress) else { return nil }
        let (client, created) = state.withLock { state -> (RPCClient?, Bool) in
            if let client = state.clients[node.rpcAddress] { return (client, false) }
            guard state.clients.count < 256,
                let client = try? RPCClient(
                    configuration: RPCClientConfiguration(target: address, expectedRole: .replicator, tls: tls), logger: logger)
            else { return (nil, false) }
            state.clients[node.rpcAddress] = client
            return (client, true)
        }
        if let client, created { addClient.yield(client) }
        return client
    }
}
