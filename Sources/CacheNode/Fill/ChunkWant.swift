/// A chunk the cache wants from upstream, and where to look for it.
public struct ChunkWant: Sendable, Hashable {
    public var digest: ChunkDigest
    public var source: Source

    /// Where a repository finds the chunk.
    public enum Source: Sendable, Hashable {
        /// By position: chunk `index` of `path` in `version` of `image` (the caller's hint).
        case position(image: String, version: Int64, path: String, index: UInt32)
        /// By content, in any ready version of `image` (empty: any image).
        case content(image: String)
    }

    public init(digest: ChunkDigest, source: Source) {
        self.digest = digest
        self.source = source
    }

    /// Chunks of one group go upstream in one call.
    var group: FillGroup {
        switch source {
        case .position(let image, let version, let path, _): .file(image: image, version: version, path: path)
        case .content(let image): .image(image)
        }
    }
}

/// What one upstream call can ask for together.
enum FillGroup: Hashable, Sendable {
    case file(image: String, version: Int64, path: String)
    case image(String)
}

/// Chunks of one group fetched in one upstream call.
struct FillBatch: Sendable {
    enum Priority: Sendable { case demand, warm }

    let group: FillGroup
    var wants: [ChunkWant]
    let priority: Priority
}
