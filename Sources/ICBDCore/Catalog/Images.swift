import Foundation

/// An image: a named template (docs/architecture.md "Data model (catalog)").
public struct ImageRecord: Sendable, Hashable, Codable {
    public var name: Name
    public var description: String
    public var created: Date
    /// The site whose replicators may publish it (docs/catalog.md "Authority per image"); nil
    /// until known: the next replicator to create a version records its own site.
    public var homeSite: Name?
    public var revision: Revision

    public init(name: Name, description: String, created: Date, homeSite: Name? = nil, revision: Revision) {
        self.name = name
        self.description = description
        self.created = created
        self.homeSite = homeSite
        self.revision = revision
    }
}

/// A version's place in its life.
public enum VersionState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Files registered, manifests arriving.
    case publishing
    /// Every manifest stored and verified; immutable from here on.
    case ready
    /// No longer offered; no tag or assignment may point at it.
    case retired
}

/// A file of a version, without its manifest (GetManifest streams that).
public struct FileRecord: Sendable, Hashable, Codable {
    public var path: VersionFilePath
    public var size: Int64
    public var chunkSize: Int64
    /// SHA-256 of the manifest (``ChunkManifest``): the file's strong identity.
    public var manifestDigest: [UInt8]
    /// Whether the catalog holds the verified manifest.
    public var manifestStored: Bool

    public init(path: VersionFilePath, size: Int64, chunkSize: Int64, manifestDigest: [UInt8], manifestStored: Bool) {
        self.path = path
        self.size = size
        self.chunkSize = chunkSize
        self.manifestDigest = manifestDigest
        self.manifestStored = manifestStored
    }

    public var chunkCount: Int64 { ChunkManifest.chunkCount(fileSize: size, chunkSize: chunkSize) }

    private enum CodingKeys: String, CodingKey {
        case path, size, chunkSize, manifestDigest, manifestStored
    }

    // The digest is written as hex, as people and HTTP ETags see it.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        path = try container.decode(VersionFilePath.self, forKey: .path)
        size = try container.decode(Int64.self, forKey: .size)
        chunkSize = try container.decode(Int64.self, forKey: .chunkSize)
        let hex = try container.decode(String.self, forKey: .manifestDigest)
        guard let digest = [UInt8](hex: hex), digest.count == 32 else {
            throw DecodingError.dataCorruptedError(forKey: .manifestDigest, in: container, debugDescription: "not 32 bytes of hex")
        }
        manifestDigest = digest
        manifestStored = try container.decode(Bool.self, forKey: .manifestStored)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(path, forKey: .path)
        try container.encode(size, forKey: .size)
        try container.encode(chunkSize, forKey: .chunkSize)
        try container.encode(manifestDigest.hexString, forKey: .manifestDigest)
        try container.encode(manifestStored, forKey: .manifestStored)
    }
}

/// A published (or publishing) version of an image.
public struct VersionRecord: Sendable, Hashable, Codable {
    public var image: Name
    public var number: Int64
    /// The version this one was sent incrementally from; nil for a full send.
    public var parent: Int64?
    public var state: VersionState
    /// UUID of the read-only BTRFS snapshot on the publishing repository.
    public var btrfsUUID: String
    public var created: Date
    public var files: [FileRecord]
    /// The certificate name of the node that created it.
    public var publishedBy: String
    public var revision: Revision

    public init(
        image: Name, number: Int64, parent: Int64?, state: VersionState, btrfsUUID: String, created: Date,
        files: [FileRecord], publishedBy: String, revision: Revision
    ) {
        self.image = image
        self.number = number
        self.parent = parent
        self.state = state
        self.btrfsUUID = btrfsUUID
        self.created = created
        self.files = files
        self.publishedBy = publishedBy
        self.revision = revision
    }

    public var totalSize: Int64 { files.reduce(0) { $0 + $1.size } }
}

/// A named pointer to a version of an image: `latest` follows publishing, others move when told.
public struct TagRecord: Sendable, Hashable, Codable {
    public var image: Name
    public var name: Name
    public var version: Int64
    public var revision: Revision

    public init(image: Name, name: Name, version: Int64, revision: Revision) {
        self.image = image
        self.name = name
        self.version = version
        self.revision = revision
    }
}

/// An image with what a listing shows of it.
public struct ImageSummary: Sendable, Hashable, Codable {
    public var image: ImageRecord
    public var tags: [TagRecord]
    public var newestVersion: Int64?
    public var versionCount: Int

    public init(image: ImageRecord, tags: [TagRecord], newestVersion: Int64?, versionCount: Int) {
        self.image = image
        self.tags = tags
        self.newestVersion = newestVersion
        self.versionCount = versionCount
    }
}

/// An image with everything about it except manifests.
public struct ImageDetail: Sendable, Hashable, Codable {
    public var image: ImageRecord
    /// Oldest first.
    public var versions: [VersionRecord]
    public var tags: [TagRecord]
    public var placements: [PlacementRecord]
    public var policy: PolicyRecord?
    /// The rollouts of its tags (one per tag: the running or last one).
    public var rollouts: [RolloutRecord]

    public init(
        image: ImageRecord, versions: [VersionRecord], tags: [TagRecord], placements: [PlacementRecord], policy: PolicyRecord?,
        rollouts: [RolloutRecord] = []
    ) {
        self.rollouts = rollouts
        self.image = image
        self.versions = versions
        self.tags = tags
        self.placements = placements
        self.policy = policy
    }
}

/// One page of a listing.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    /// Where the next page starts; nil on the last page.
    public var next: String?

    public init(items: [Item], next: String?) {
        self.items = items
        self.next = next
    }
}
