import ICBDCore

extension CatalogRules {
    /// The usage a heartbeat leaves on a node: cache nodes keep what they report; other roles
    /// have none.
    public static func recordedUsage(_ usage: CacheUsage?, for role: NodeRole) -> CacheUsage? {
        role == .cache ? usage : nil
    }
}
