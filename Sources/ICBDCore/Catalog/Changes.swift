/// Any object of the catalog, as a change carries it.
public enum CatalogEntity: Sendable, Hashable, Codable {
    case image(ImageRecord)
    case version(VersionRecord)
    case tag(TagRecord)
    case site(SiteRecord)
    case node(NodeRecord)
    case placement(PlacementRecord)
    case policy(PolicyRecord)
    case assignment(AssignmentRecord)
    case rollout(RolloutRecord)

    public var kind: EntityKind {
        switch self {
        case .image: .image
        case .version: .version
        case .tag: .tag
        case .site: .site
        case .node: .node
        case .placement: .placement
        case .policy: .policy
        case .assignment: .assignment
        case .rollout: .rollout
        }
    }

    /// Identifies the object among those of its kind (`image/3`, `image/stable`, ...).
    public var key: String {
        switch self {
        case .image(let image): "\(image.name)"
        case .version(let version): "\(version.image)/\(version.number)"
        case .tag(let tag): "\(tag.image)/\(tag.name)"
        case .site(let site): "\(site.name)"
        case .node(let node): "\(node.name)"
        case .placement(let placement): "\(placement.image)/\(placement.version)/\(placement.node)"
        case .policy(let policy): "\(policy.image)"
        case .assignment(let assignment): "\(assignment.mac)"
        case .rollout(let rollout): "\(rollout.image)/\(rollout.tag)"
        }
    }
}

/// The kinds of catalog objects, for filtering a watch.
public enum EntityKind: String, Sendable, Hashable, Codable, CaseIterable {
    case image, version, tag, site, node, placement, policy, assignment, rollout
}

/// One object written or deleted.
public struct CatalogEvent: Sendable, Hashable, Codable {
    public enum Change: String, Sendable, Hashable, Codable {
        case put, delete
    }

    public var change: Change
    /// For a delete: the object as it was.
    public var entity: CatalogEntity

    public init(_ change: Change, _ entity: CatalogEntity) {
        self.change = change
        self.entity = entity
    }
}

/// One committed revision: every event of its transaction, in order.
public struct CatalogChange: Sendable, Hashable {
    public var revision: Revision
    public var events: [CatalogEvent]

    public init(revision: Revision, events: [CatalogEvent]) {
        self.revision = revision
        self.events = events
    }
}
