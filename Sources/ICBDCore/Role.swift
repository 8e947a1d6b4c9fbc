/// The role a service or operator plays in a deployment. It is carried in every certificate
/// (SAN URI `icbd://ROLE/NAME`) and decides which RPC methods a caller may use.
public enum Role: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case catalog
    case replicator
    case cache
    case gateway
    /// Operators and their tools.
    case admin

    public var description: String { rawValue }
}
