
/// Who creates, fills, completes or abandons an image's versions: an admin, or a replicator
/// node (by its certificate name), whose registered site must be the image's home site.
public enum Publisher: Sendable, Hashable, CustomStringConvertible {
    case admin
    case replicator(String)

    public var description: String {
        switch self {
        case .admin: "an admin"
        case .replicator(let name): "replicator '\(name)'"
        }
    }
}
