import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle

/// Follows the catalog for a consumer: `list` reads what the consumer needs and returns the
/// revision it was read at; then every committed change after it, of `kinds`, goes to `apply`
/// as domain values (``CatalogChange``), in order. A stream broken by a catalog that restarted
/// or failed over resumes from the last revision seen (``CatalogWatch``), so no change is missed
/// or repeated; when the watch cannot resume (its revision was compacted away, the catalog was
/// gone too long, or it sent an event that does not decode) the follower lists again after
/// `retryDelay`. A `Service`: it stops at graceful shutdown.
public struct CatalogFollower: Service, Sendable {
    let catalog: RPCClient
    let kinds: [EntityKind]
    let retryDelay: Duration
    let resumption: CatalogWatch.Resumption
    let logger: Logger
    let list: @Sendable () async throws -> Revision
    let apply: @Sendable (CatalogChange) async -> Void

    /// - Parameters:
    ///   - kinds: the kinds of objects whose changes `apply` gets; empty: every kind.
    ///   - list: reads the consumer's starting state (through `catalog`); called again after a
    ///     watch that cannot resume.
    ///   - apply: one committed change (never an empty one).
    public init(
        catalog: RPCClient, kinds: [EntityKind] = [], retryDelay: Duration = .seconds(1), resumption: CatalogWatch.Resumption = .init(),
        logger: Logger, list: @escaping @Sendable () async throws -> Revision, apply: @escaping @Sendable (CatalogChange) async -> Void
    ) {
        self.catalog = catalog
        self.kinds = kinds
        self.retryDelay = retryDelay
        self.resumption = resumption
        self.logger = logger
        self.list = list
        self.apply = apply
    }

    /// Lists, then watches, until graceful shutdown.
    public func run() async {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.follow(from: try await self.list())
                } catch {
                    if Task.isCancelled { return }
                    self.logger.warning("catalog watch ended; listing again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: self.retryDelay)
            }
        }
    }

    private func follow(from revision: Revision) async throws {
        try await CatalogWatch.follow(
            catalog, from: revision.rawValue, kinds: kinds.map(Icbd_Catalog_V1_EntityKind.init), resumption: resumption, logger: logger
        ) { response in
            guard !response.events.isEmpty else { return true }
            let change = CatalogChange(revision: Revision(response.revision), events: try response.events.map(CatalogEvent.init(wire:)))
            await apply(change)
            return true
        }
        throw RPCError(code: .unavailable, message: "the watch ended")
    }
}
