import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import Synchronization

/// A repository the cache can fetch from.
struct UpstreamSource: Sendable {
    let node: String
    let site: String
    let client: RPCClient
}

/// What the cache knows of the catalog, kept live by ``follower`` (a ``CatalogFollower`` of
/// nodes, placements and images): which repositories to ask — replicators of this site first,
/// then of other sites; for a version, those holding it (placement `present`) first — the
/// images to search for a chunk named by hash alone, and the versions present on this site
/// (for warming). Clients of the repositories come from the cache's ``RPCClientPool``; a
/// repository that leaves the catalog has its client closed.
final class UpstreamDirectory: Sendable {
    private struct VersionKey: Hashable {
        let image: Name
        let version: Int64
    }

    private struct State {
        var loaded = false
        var nodes: [Name: NodeRecord] = [:]
        var placements: [String: PlacementRecord] = [:]
        var images: Set<Name> = []
    }

    private let catalog: RPCClient
    private let site: Name
    private let pool: RPCClientPool
    private let logger: Logger
    private let loadWait: Duration
    private let state = Mutex(State())

    /// - Parameter loadWait: how long a fill waits for the first listing before failing.
    init(catalog: RPCClient, site: Name, pool: RPCClientPool, logger: Logger, loadWait: Duration = .seconds(5)) {
        self.catalog = catalog
        self.site = site
        self.pool = pool
        self.logger = logger
        self.loadWait = loadWait
    }

    /// Keeps the directory current; a `Service` of the cache.
    var follower: CatalogFollower {
        CatalogFollower(catalog: catalog, kinds: [.node, .placement, .image], logger: logger, list: list, apply: apply)
    }

    /// The repositories to ask for a group of chunks, best first.
    func sources(for group: FillGroup) async throws -> [UpstreamSource] {
        let (nodes, holders) = try await read { state in
            var holders: Set<Name> = []
            if case .file(let image, let version, _) = group {
                holders = Set(
                    state.placements.values.filter { $0.image.rawValue == image && $0.version == version && $0.state == .present }.map(\.node))
            }
            return (state.nodes.values.filter { $0.role == .replicator }, holders)
        }
        let ranked = nodes.sorted { (rank($0, holders), $0.name.rawValue) < (rank($1, holders), $1.name.rawValue) }
        return ranked.compactMap { node in
            guard node.state != .down, let address = node.rpcAddress, let client = try? pool.client(for: address, role: .replicator) else {
                return nil
            }
            return UpstreamSource(node: node.name.rawValue, site: node.site.rawValue, client: client)
        }
    }

    /// The images the catalog lists (at most 1000), for misses that name none.
    func images() async throws -> [String] {
        try await read { state in state.images.map(\.rawValue).sorted().prefix(1000).map { $0 } }
    }

    /// The versions present on this site's replicators.
    func presentOnSite() async throws -> Set<BootProfileRecorder.Key> {
        try await read { state in
            let replicators = Set(state.nodes.values.filter { $0.role == .replicator && $0.site == self.site }.map(\.name))
            return Set(
                state.placements.values.filter { $0.state == .present && replicators.contains($0.node) }.map {
                    BootProfileRecorder.Key(image: $0.image.rawValue, version: $0.version)
                })
        }
    }

    /// The names of this site's cache nodes that are up.
    func upCachesOnSite() async throws -> [String] {
        try await read { state in
            state.nodes.values.filter { $0.role == .cache && $0.site == self.site && $0.state == .up }.map(\.name.rawValue).sorted()
        }
    }

    private func rank(_ node: NodeRecord, _ holders: Set<Name>) -> Int {
        (node.site == site ? 0 : 2) + (holders.isEmpty || holders.contains(node.name) ? 0 : 1) + (node.state == .up ? 0 : 4)
    }

    /// Reads the state once the first listing is in (waiting at most `loadWait` for it).
    private func read<Value>(_ body: (State) -> Value) async throws -> Value {
        let deadline = ContinuousClock.now + loadWait
        while true {
            if let value = state.withLock({ $0.loaded ? body($0) : nil }) { return value }
            guard ContinuousClock.now < deadline else {
                throw RPCError(code: .unavailable, message: "the cache has not read the catalog yet")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Sendable private func list() async throws -> Revision {
        let options = RPCCallOptions(timeout: .seconds(30))
        let nodes = try await catalog.allPages(CatalogMethods.listNodes, .init(), options: options)
        let placements = try await catalog.allPages(CatalogMethods.listPlacements, .init(), options: options)
        let images = try await catalog.allPages(CatalogMethods.listImages, .init(), options: options)
        var listed = State()
        listed.loaded = true
        for node in try nodes.nodes.map(NodeRecord.init(wire:)) { listed.nodes[node.name] = node }
        for placement in try placements.placements.map(PlacementRecord.init(wire:)) {
            listed.placements[CatalogEntity.placement(placement).key] = placement
        }
        listed.images = Set(try images.images.map { try ImageRecord(wire: $0.image).name })
        state.withLock { $0 = listed }
        retainClients()
        return Revision(min(nodes.revision, placements.revision, images.revision))
    }

    @Sendable private func apply(_ change: CatalogChange) async {
        state.withLock { state in
            for event in change.events {
                let deleted = event.change == .delete
                switch event.entity {
                case .node(let node): state.nodes[node.name] = deleted ? nil : node
                case .placement(let placement): state.placements[event.entity.key] = deleted ? nil : placement
                case .image(let image): if deleted { state.images.remove(image.name) } else { state.images.insert(image.name) }
                default: break
                }
            }
        }
        if change.events.contains(where: { $0.entity.kind == .node }) { retainClients() }
    }

    /// Closes the clients of repositories no longer in the catalog (or moved).
    private func retainClients() {
        pool.retain(Set(state.withLock { $0.nodes.values.compactMap(\.rpcAddress) }))
    }
}
