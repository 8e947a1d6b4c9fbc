import CatalogClient
import ICBDCore

/// The order in which a version's chunks were first read in the minutes after its first read:
/// what a boot needs, in the order it needs it. Positions (file and chunk index), not hashes, so
/// the profile of one version maps onto the next through the new version's manifest. Kept in
/// the catalog (`PutBootProfile`), merged there over the site's cache nodes.
public struct BootProfile: Sendable, Equatable {
    /// A chunk position in a version.
    public struct Position: Sendable, Hashable {
        public var path: String
        public var index: UInt32

        public init(path: String, index: UInt32) {
            self.path = path
            self.index = index
        }
    }

    public var image: String
    public var version: Int64
    /// In first-read order, each with its milliseconds after the recording's first read.
    public var entries: [BootProfileEntry]

    public init(image: String, version: Int64, entries: [BootProfileEntry]) {
        self.image = image
        self.version = version
        self.entries = entries
    }

    /// A profile whose reads all count as the first (order only).
    public init(image: String, version: Int64, positions: [Position]) {
        self.init(
            image: image, version: version,
            entries: positions.map { BootProfileEntry(path: $0.path, index: $0.index, offsetMilliseconds: 0) })
    }

    /// The positions in first-read order.
    public var positions: [Position] {
        entries.map { Position(path: $0.path, index: $0.index) }
    }
}
