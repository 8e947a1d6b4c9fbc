import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf
import Synchronization

/// A live view of the catalog: lists everything once, then follows Watch, so requests read
/// memory instead of asking the catalog. On a broken watch it lists again (after a pause).
final class CatalogView: Sendable {
    private struct State {
        var snapshot = CatalogSnapshot()
        var loaded = false
    }

    private let state = Mutex(State())
    private let catalog: RPCClient
    private let logger: Logger
    private let retryDelay: Duration

    init(catalog: RPCClient, logger: Logger, retryDelay: Duration = .seconds(1)) {
        self.catalog = catalog
        self.logger = logger
        self.retryDelay = retryDelay
    }

    /// The current snapshot (a value: later changes do not show in it).
    var snapshot: CatalogSnapshot { state.withLock { $0.snapshot } }

    /// Whether a full listing has been loaded at least once.
    var isLoaded: Bool { state.withLock { $0.loaded } }

    /// Lists, then watches, until cancelled.
    func run() async {
        while !Task.isCancelled {
            do {
                let (snapshot, from) = try await list()
                state.withLock {
                    $0.snapshot = snapshot
                    $0.loaded = true
                }
                logger.info("catalog view loaded", metadata: ["revision": "\(from)", "images": "\(snapshot.images.count)"])
                try await watch(from: from)
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                logger.warning("catalog view interrupted; listing again", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: retryDelay)
        }
    }

    /// Copies the cache nodes' usage (bytes held, hit ratio) into the view every `interval`,
    /// until cancelled. Heartbeats update usage without a Watch event (it would bump the
    /// revision every few seconds per node), so this is the one thing the view asks for.
    func refreshCacheUsage(every interval: Duration) async {
        while !Task.isCancelled {
            do {
                let caches = try await catalog.allPages(CatalogMethods.listNodes, .with { $0.role = .cache }, options: RPCCallOptions(timeout: .seconds(10)))
                state.withLock { state in
                    for node in caches.nodes where state.snapshot.nodes[node.name] != nil {
                        state.snapshot.nodes[node.name]?.cacheUsage = node.cacheUsage
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("cache usage not refreshed", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: interval)
        }
    }

    /// Everything the gateway needs, and the lowest revision the listings were read at (a
    /// watch from there misses nothing).
    private func list() async throws -> (CatalogSnapshot, Int64) {
        var snapshot = CatalogSnapshot()
        let options = RPCCallOptions(timeout: .seconds(30))
        let sites = try await catalog.allPages(CatalogMethods.listSites, .init(), options: options)
        var from = sites.revision
        for site in sites.sites { snapshot.sites[site.name] = site }
        let nodes = try await catalog.allPages(CatalogMethods.listNodes, .init(), options: options)
        from = min(from, nodes.revision)
        for node in nodes.nodes { snapshot.nodes[node.name] = node }
        let assignments = try await catalog.allPages(CatalogMethods.listAssignments, .init(), options: options)
        from = min(from, assignments.revision)
        for assignment in assignments.assignments { snapshot.assignments[assignment.mac] = assignment }
        var token = ""
        repeat {
            let page = try await catalog.unary(
                CatalogMethods.listImages, .with { $0.pageSize = 1000; $0.pageToken = token }, options: options)
            from = min(from, page.revision)
            for summary in page.images {
                let image = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = summary.image.name }, options: options)
                from = min(from, image.revision)
                var entry = CatalogSnapshot.ImageEntry(image: image.image)
                for version in image.versions { entry.versions[version.number] = version }
                for tag in image.tags { entry.tags[tag.name] = tag }
                snapshot.images[image.image.name] = entry
                for placement in image.placements {
                    snapshot.placements[.init(image: placement.image, version: placement.version, node: placement.node)] = placement
                }
            }
            token = page.nextPageToken
        } while !token.isEmpty
        snapshot.revision = from
        return (snapshot, from)
    }

    private func watch(from revision: Int64) async throws {
        try await catalog.serverStreaming(CatalogMethods.watch, .with { $0.fromRevision = revision }) { responses in
            for try await response in responses {
                guard !response.events.isEmpty else { continue }
                state.withLock { state in
                    for event in response.events { state.snapshot.apply(event) }
                    state.snapshot.revision = response.revision
                }
            }
        }
        throw RPCError(code: .unavailable, message: "the catalog ended the watch")
    }
}
