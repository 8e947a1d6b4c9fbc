import Foundation
import ICBDCore

/// A file as a publisher declares it; its manifest follows with ``CatalogStore/storeManifest(_:entries:at:)``.
public struct FileSpec: Sendable, Hashable {
    public var path: VersionFilePath
    public var size: Int64
    public var chunkSize: Int64
    public var manifestDigest: [UInt8]

    public init(path: VersionFilePath, size: Int64, chunkSize: Int64, manifestDigest: [UInt8]) {
        self.path = path
        self.size = size
        self.chunkSize = chunkSize
        self.manifestDigest = manifestDigest
    }
}

/// A version to create (state `publishing`).
public struct NewVersion: Sendable, Hashable {
    public var image: Name
    /// The number the publisher read as next; nil: whatever is next.
    public var number: Int64?
    public var parent: Int64?
    public var btrfsUUID: String
    public var files: [FileSpec]
    public var publishedBy: String

    public init(image: Name, number: Int64?, parent: Int64?, btrfsUUID: String, files: [FileSpec], publishedBy: String) {
        self.image = image
        self.number = number
        self.parent = parent
        self.btrfsUUID = btrfsUUID
        self.files = files
        self.publishedBy = publishedBy
    }
}

/// Which file's manifest.
public struct ManifestLocator: Sendable, Hashable, CustomStringConvertible {
    public var image: Name
    public var version: Int64
    public var path: VersionFilePath

    public init(image: Name, version: Int64, path: VersionFilePath) {
        self.image = image
        self.version = version
        self.path = path
    }

    public var description: String { "\(image)/\(version)/\(path)" }
}

/// A site as an operator describes it.
public struct SiteSpec: Sendable, Hashable {
    public var name: Name
    public var description: String
    public var cidrs: [CIDR]
    public var links: [SiteLink]

    public init(name: Name, description: String, cidrs: [CIDR], links: [SiteLink]) {
        self.name = name
        self.description = description
        self.cidrs = cidrs
        self.links = links
    }
}

/// A node announcing itself.
public struct NodeRegistration: Sendable, Hashable {
    public var name: Name
    public var role: NodeRole
    public var site: Name
    public var rpcAddress: HostPort?
    public var httpAddress: HostPort?
    public var capacityBytes: Int64
    public var heartbeatTTLMilliseconds: Int64

    public init(
        name: Name, role: NodeRole, site: Name, rpcAddress: HostPort?, httpAddress: HostPort?, capacityBytes: Int64,
        heartbeatTTLMilliseconds: Int64
    ) {
        self.name = name
        self.role = role
        self.site = site
        self.rpcAddress = rpcAddress
        self.httpAddress = httpAddress
        self.capacityBytes = capacityBytes
        self.heartbeatTTLMilliseconds = heartbeatTTLMilliseconds
    }
}

/// A repository node's report about one version.
public struct PlacementUpdate: Sendable, Hashable {
    public var image: Name
    public var version: Int64
    public var node: Name
    public var state: PlacementState
    public var detail: String

    public init(image: Name, version: Int64, node: Name, state: PlacementState, detail: String) {
        self.image = image
        self.version = version
        self.node = node
        self.state = state
        self.detail = detail
    }
}

/// A replication policy as an operator sets it.
public struct PolicySpec: Sendable, Hashable {
    public var image: Name
    public var sites: [Name]
    public var keepVersions: Int64

    public init(image: Name, sites: [Name], keepVersions: Int64) {
        self.image = image
        self.sites = sites
        self.keepVersions = keepVersions
    }
}

/// Filters of a node listing.
public struct NodeFilter: Sendable, Hashable {
    public var site: Name?
    public var role: NodeRole?

    public init(site: Name? = nil, role: NodeRole? = nil) {
        self.site = site
        self.role = role
    }
}
