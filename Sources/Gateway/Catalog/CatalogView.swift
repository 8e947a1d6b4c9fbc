import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// A live view of the catalog: ``follower`` lists everything once, then applies the catalog's
/// changes (``CatalogFollower``), so requests read memory instead of asking the catalog; and
/// ``cacheUsage`` copies the cache nodes' usage in. When the nodes change, `nodesChanged` gets
/// the view (the gateway closes the clients of nodes that left).
final class CatalogView: Sendable {
    private struct State {
        var snapshot = CatalogSnapshot()
        var loaded = false
    }

    private let state = Mutex(State())
    private let catalog: RPCClient
    private let logger: Logger
    private let retryDelay: Duration
    private let nodesChanged: @Sendable (CatalogSnapshot) -> Void

    init(
        catalog: RPCClient, logger: Logger, retryDelay: Duration = .seconds(1),
        nodesChanged: @escaping @Sendable (CatalogSnapshot) -> Void = { _ in }
    ) {
        self.catalog = catalog
        self.logger = logger
        self.retryDelay = retryDelay
        self.nodesChanged = nodesChanged
    }

    /// The current snapshot (a value: later changes do not show in it).
    var snapshot: CatalogSnapshot { state.withLock { $0.snapshot } }

    /// Whether a full listing has been loaded at least once.
    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Keeps the view current; a `Service` of the gateway.
    var follower: CatalogFollower {
        CatalogFollower(
            catalog: catalog, retryDelay: retryDelay, logger: logger,
            list: { [self] in
                let snapshot = try await list()
                state.withLock {
                    $0.snapshot = snapshot
                    $0.loaded = true
                }
                logger.info("catalog view loaded", metadata: ["revision": "\(snapshot.revision)", "images": "\(snapshot.images.count)"])
                nodesChanged(snapshot)
                return snapshot.revision
            },
            apply: { [self] change in
                let snapshot = state.withLock { state in
                    state.snapshot.apply(change)
                    return state.snapshot
                }
                if change.events.contains(where: { $0.entity.kind == .node }) { nodesChanged(snapshot) }
            })
    }

    /// Copies the cache nodes' usage (bytes held, hit ratio) into the view every `interval`.
    /// Heartbeats update usage without a Watch event (it would bump the revision every few
    /// seconds per node), so this is the one thing the view asks for. A `Service`.
    func cacheUsage(every interval: Duration) -> some Service {
        ClosureService { [self] in
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    await self.refreshCacheUsage()
                    try? await Task.sleep(for: interval)
                }
            }
        }
    }

    private func refreshCacheUsage() async {
        do {
            let caches = try await catalog.allPages(
                CatalogMethods.listNodes, .with { $0.role = .cache }, options: RPCCallOptions(timeout: .seconds(10)))
            let usage = caches.nodes.filter(\.hasCacheUsage).map {
                ($0.name, CacheUsage(usedBytes: $0.cacheUsage.usedBytes, hitRatio: $0.cacheUsage.hitRatio))
            }
            state.withLock { state in
                for (name, usage) in usage where state.snapshot.nodes[name] != nil {
                    state.snapshot.nodes[name]?.cacheUsage = usage
                }
            }
        } catch {
            if Task.isCancelled { return }
            logger.debug("cache usage not refreshed", metadata: ["error": "\(error)"])
        }
    }

    /// Everything the gateway needs, at the lowest revision the listings were read at (a watch
    /// from there misses nothing).
    private func list() async throws -> CatalogSnapshot {
        var snapshot = CatalogSnapshot()
        let options = RPCCallOptions(timeout: .seconds(30))
        let sites = try await catalog.allPages(CatalogMethods.listSites, .init(), options: options)
        var from = sites.revision
        for site in try sites.sites.map(SiteRecord.init(wire:)) { snapshot.sites[site.name.rawValue] = site }
        let nodes = try await catalog.allPages(CatalogMethods.listNodes, .init(), options: options)
        from = min(from, nodes.revision)
        for node in try nodes.nodes.map(NodeRecord.init(wire:)) { snapshot.nodes[node.name.rawValue] = node }
        let assignments = try await catalog.allPages(CatalogMethods.listAssignments, .init(), options: options)
        from = min(from, assignments.revision)
        for assignment in try assignments.assignments.map(AssignmentRecord.init(wire:)) {
            snapshot.assignments[assignment.mac.description] = assignment
        }
        var token = ""
        repeat {
            let page = try await catalog.unary(
                CatalogMethods.listImages, .with { $0.pageSize = 1000; $0.pageToken = token }, options: options)
            from = min(from, page.revision)
            for summary in page.images {
                let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = summary.image.name }, options: options)
                from = min(from, answer.revision)
                let image = try ImageDetail(wire: answer)
                var entry = CatalogSnapshot.ImageEntry(image: image.image)
                for version in image.versions { entry.versions[version.number] = version }
                for tag in image.tags { entry.tags[tag.name.rawValue] = tag }
                for rollout in image.rollouts { entry.rollouts[rollout.tag.rawValue] = rollout }
                snapshot.images[image.image.name.rawValue] = entry
                for placement in image.placements {
                    snapshot.placements[.init(image: placement.image, version: placement.version, node: placement.node)] = placement
                }
            }
            token = page.nextPageToken
        } while !token.isEmpty
        snapshot.revision = Revision(from)
        return snapshot
    }
}
