import Foundation

/// The order in which a version's chunks were first read in the minutes after its first read:
/// what a boot needs, in the order it needs it. Positions (file and chunk index), not hashes, so
/// the profile of one version maps onto the next through the new version's manifest.
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
    public var positions: [Position]

    public init(image: String, version: Int64, positions: [Position]) {
        self.image = image
        self.version = version
        self.positions = positions
    }

    /// One `INDEX PATH` line per position.
    var text: String {
        positions.map { "\($0.index) \($0.path)\n" }.joined()
    }

    /// Parses ``text``; lines that do not parse are skipped (a profile is a hint).
    init(image: String, version: Int64, text: String) {
        self.image = image
        self.version = version
        self.positions = text.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ", maxSplits: 1)
            guard parts.count == 2, let index = UInt32(parts[0]) else { return nil }
            return Position(path: String(parts[1]), index: index)
        }
    }
}
