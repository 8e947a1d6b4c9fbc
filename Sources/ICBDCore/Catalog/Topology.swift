import Foundation

/// A WAN link from a site to another.
public struct SiteLink: Sendable, Hashable, Codable {
    public var site: Name
    /// 0: unlimited.
    public var rateBytesPerSecond: Int64
    /// Whether replication transfers over the link use lz4.
    public var compression: LinkCompression

    public init(site: Name, rateBytesPerSecond: Int64, compression: LinkCompression = .auto) {
        self.site = site
        self.rateBytesPerSecond = rateBytesPerSecond
        self.compression = compression
    }

    private enum CodingKeys: String, CodingKey {
        case site, rateBytesPerSecond, compression
    }

    /// Links stored before `compression` existed decode as `auto`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        site = try container.decode(Name.self, forKey: .site)
        rateBytesPerSecond = try container.decode(Int64.self, forKey: .rateBytesPerSecond)
        compression = try container.decodeIfPresent(LinkCompression.self, forKey: .compression) ?? .auto
    }
}

/// An office: the workstation ranges it owns and its WAN links.
public struct SiteRecord: Sendable, Hashable, Codable {
    public var name: Name
    public var description: String
    public var cidrs: [CIDR]
    public var links: [SiteLink]
    public var revision: Revision

    public init(name: Name, description: String, cidrs: [CIDR], links: [SiteLink], revision: Revision) {
        self.name = name
        self.description = description
        self.cidrs = cidrs
        self.links = links
        self.revision = revision
    }
}

/// The roles a node registers with (the catalog and operators are not nodes).
public enum NodeRole: String, Sendable, Hashable, Codable, CaseIterable {
    case replicator, cache, gateway

    public init?(_ role: Role) {
        self.init(rawValue: role.rawValue)
    }
}

/// Whether a node takes work.
public enum NodeState: String, Sendable, Hashable, Codable, CaseIterable {
    case up
    /// No heartbeat within its TTL; a heartbeat brings it back up.
    case down
    /// Set by an operator; heartbeats keep it draining until an operator sets it up.
    case draining
}

/// A replicator, cache node or gateway.
public struct NodeRecord: Sendable, Hashable, Codable {
    public var name: Name
    public var role: NodeRole
    public var site: Name
    public var rpcAddress: HostPort?
    public var httpAddress: HostPort?
    public var capacityBytes: Int64
    /// Milliseconds without a heartbeat after which the node is marked down.
    public var heartbeatTTLMilliseconds: Int64
    public var lastHeartbeat: Date?
    public var state: NodeState
    public var revision: Revision
    /// Cache nodes: what the last heartbeat reported; nil before it and for other roles.
    public var cacheUsage: CacheUsage?

    public init(
        name: Name, role: NodeRole, site: Name, rpcAddress: HostPort?, httpAddress: HostPort?, capacityBytes: Int64,
        heartbeatTTLMilliseconds: Int64, lastHeartbeat: Date?, state: NodeState, revision: Revision
    ) {
        self.name = name
        self.role = role
        self.site = site
        self.rpcAddress = rpcAddress
        self.httpAddress = httpAddress
        self.capacityBytes = capacityBytes
        self.heartbeatTTLMilliseconds = heartbeatTTLMilliseconds
        self.lastHeartbeat = lastHeartbeat
        self.state = state
        self.revision = revision
    }
}

/// Where a version is on a repository node.
public enum PlacementState: String, Sendable, Hashable, Codable, CaseIterable {
    case receiving, present, failed, deleted
}

/// A version × repository node.
public struct PlacementRecord: Sendable, Hashable, Codable {
    public var image: Name
    public var version: Int64
    public var node: Name
    public var state: PlacementState
    public var detail: String
    public var updated: Date
    public var revision: Revision

    public init(image: Name, version: Int64, node: Name, state: PlacementState, detail: String, updated: Date, revision: Revision) {
        self.image = image
        self.version = version
        self.node = node
        self.state = state
        self.detail = detail
        self.updated = updated
        self.revision = revision
    }
}

/// Which sites an image goes to and how many versions each keeps.
public struct PolicyRecord: Sendable, Hashable, Codable {
    public var image: Name
    /// Empty: every site.
    public var sites: [Name]
    public var keepVersions: Int64
    public var revision: Revision

    public init(image: Name, sites: [Name], keepVersions: Int64, revision: Revision) {
        self.image = image
        self.sites = sites
        self.keepVersions = keepVersions
        self.revision = revision
    }
}

/// Which image a workstation boots.
public struct AssignmentRecord: Sendable, Hashable, Codable {
    public var mac: MACAddress
    public var image: Name
    public var version: VersionReference
    public var revision: Revision

    public init(mac: MACAddress, image: Name, version: VersionReference, revision: Revision) {
        self.mac = mac
        self.image = image
        self.version = version
        self.revision = revision
    }
}
