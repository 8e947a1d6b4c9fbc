import Foundation
import ICBDCore
import ICBDRPC
import CatalogClient
import Logging

/// The handlers of `/icbd.catalog.v1.Catalog`: they check who calls, turn requests into domain
/// values (INVALID_ARGUMENT when a field breaks a rule), call the ``CatalogStore`` and turn its
/// answers back into messages. They hold no state of their own.
public struct CatalogRPCService: RPCService {
    /// Limits and defaults of the RPC surface.
    public struct Settings: Sendable {
        /// The TTL of a node that registers without one. Default 15 s.
        public var defaultHeartbeatTTL: Duration = .seconds(15)
        /// The TTLs a node may ask for.
        public var heartbeatTTLRange: ClosedRange<Duration> = .seconds(1) ... .seconds(3600)
        /// Revisions a watcher reads from the log at once. Default 256.
        public var watchBatch = 256
        /// Encoded bytes a page of a listing stays within. Default 4 MiB, a quarter of a frame.
        public var pageBudgetBytes = 4 << 20

        public init() {}
    }

    let store: any CatalogStore
    let settings: Settings
    let now: @Sendable () -> Date
    let logger: Logger

    public init(store: any CatalogStore, settings: Settings = .init(), now: @escaping @Sendable () -> Date = Date.init, logger: Logger) {
        self.store = store
        self.settings = settings
        self.now = now
        self.logger = logger
    }

    var pager: ListingPager { ListingPager(budgetBytes: settings.pageBudgetBytes) }

    public func register(into router: inout RPCRouter) {
        registerImages(into: &router)
        registerPublishing(into: &router)
        registerTopology(into: &router)
        registerPlacements(into: &router)
        registerAssignments(into: &router)
        registerWatch(into: &router)
        registerBootProfiles(into: &router)
        registerRevocations(into: &router)
        registerRollouts(into: &router)
        registerBoots(into: &router)
    }

    /// Refuses a node-scoped call made by another node; admins act for anyone.
    static func requireSelf(_ context: RPCCallContext, _ name: Name, _ action: String) throws {
        guard context.peer.role == .admin || context.peer.name == name.rawValue else {
            throw RPCError(
                code: .permissionDenied,
                message: "\(context.peer) may \(action) only as itself ('\(context.peer.name)'), not as '\(name)'")
        }
    }

    /// A logger with the caller's identity, for events an operator may care about.
    func logger(for context: RPCCallContext) -> Logger {
        var logger = self.logger
        logger[metadataKey: "caller"] = "\(context.peer)"
        return logger
    }
}
