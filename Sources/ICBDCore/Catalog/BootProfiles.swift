import Foundation

/// One position of a boot profile: a chunk of a version's file, and when it was first read.
public struct BootProfileEntry: Sendable, Hashable, Codable {
    public var path: String
    public var index: UInt32
    /// Milliseconds after the recording's first read.
    public var offsetMilliseconds: UInt32

    public init(path: String, index: UInt32, offsetMilliseconds: UInt32) {
        self.path = path
        self.index = index
        self.offsetMilliseconds = offsetMilliseconds
    }
}

/// The order in which one cache node first read a version's chunks after the version's first
/// read there (a boot). Cache nodes see only their share of a site's reads (the gateway spreads
/// chunks over them), so a version's profile is the merge of its nodes' recordings.
public struct BootProfileRecord: Sendable, Hashable {
    public var image: Name
    public var version: Int64
    /// The cache node that recorded it.
    public var node: Name
    public var recorded: Date
    /// In first-read order.
    public var entries: [BootProfileEntry]

    /// The most entries one recording, or a merged profile, holds.
    public static let maximumEntries = 1 << 16

    public init(image: Name, version: Int64, node: Name, recorded: Date, entries: [BootProfileEntry]) {
        self.image = image
        self.version = version
        self.node = node
        self.recorded = recorded
        self.entries = entries
    }

    /// The recordings of one version merged into one boot order: entries by offset (a stable
    /// sort, so one node's order survives ties), each position once at its earliest read, at
    /// most ``maximumEntries``. Each recording's offsets count from that node's first read; the
    /// reads of a boot reach all nodes of a site within moments, so the offsets line up.
    public static func merged(_ recordings: [BootProfileRecord]) -> [BootProfileEntry] {
        let all = recordings.flatMap(\.entries).enumerated().sorted {
            ($0.element.offsetMilliseconds, $0.offset) < ($1.element.offsetMilliseconds, $1.offset)
        }
        var seen: Set<BootProfilePosition> = []
        var merged: [BootProfileEntry] = []
        for (_, entry) in all where seen.insert(BootProfilePosition(path: entry.path, index: entry.index)).inserted {
            merged.append(entry)
            if merged.count == maximumEntries { break }
        }
        return merged
    }
}

private struct BootProfilePosition: Hashable {
    let path: String
    let index: UInt32
}

/// What a cache node reported in its last heartbeat. Kept with the heartbeat time: updating it
/// is not a change (no revision, no Watch event).
public struct CacheUsage: Sendable, Hashable, Codable {
    /// Bytes of chunks held.
    public var usedBytes: Int64
    /// Hits / (hits + misses) since the node started, 0...1.
    public var hitRatio: Double

    public init(usedBytes: Int64, hitRatio: Double) {
        self.usedBytes = usedBytes
        self.hitRatio = hitRatio
    }
}
