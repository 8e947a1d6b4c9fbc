import CatalogClient
import Foundation
import ICBDRPC
import Logging

extension RevocationFollower {
    /// Follows `store`, the catalog's own.
    public init(list: RevocationList, store: any CatalogStore, now: @escaping @Sendable () -> Date = Date.init, logger: Logger) {
        self.init(list: list, logger: logger) { try await store.revocations(at: now()).map(\.serial) }
    }
}
