import Foundation
import ICBDCore

/// Where a cache node keeps its chunks on disk: the contract between the node, which writes the
/// directory, and a gateway on the same host, which reads chunk files from it directly (the
/// same-host path, docs/architecture.md "Data path"):
///
///     DIR/chunks/ab/abcd…(64 hex digits)   one file per chunk, named by its SHA-256; always whole
///                                          (written under tmp/, fsynced, renamed in)
///     DIR/tmp/                             chunks being written; emptied when the node starts
///     DIR/node.json                        the node that owns the directory (``CacheNodeIdentity``)
///
/// A reader trusts none of it: a file is a chunk only when its bytes hash to the name asked for.
public struct CacheDirectoryLayout: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var chunksDirectory: String { directory + "/chunks" }
    public var temporaryDirectory: String { directory + "/tmp" }
    public var identityFile: String { directory + "/node.json" }

    /// The file of the chunk whose SHA-256 is `hex` (64 lowercase hex digits).
    public func chunkPath(hex: String) -> String {
        "\(chunksDirectory)/\(hex.prefix(2))/\(hex)"
    }

    /// The file of the chunk whose SHA-256 is `sha256`.
    public func chunkPath(sha256: [UInt8]) -> String {
        chunkPath(hex: sha256.hexString)
    }
}

/// Which cache node owns a cache directory, as the node writes it at start into
/// ``CacheDirectoryLayout/identityFile``: a gateway on the same host reads it to know which of the
/// site's nodes is its local one (it fills through that node first). A claim, not a proof: a
/// wrong name only changes which node is asked first.
public struct CacheNodeIdentity: Codable, Sendable, Equatable {
    public let name: String
    public let site: String

    public init(name: String, site: String) {
        self.name = name
        self.site = site
    }

    /// Writes the identity into `layout`'s directory (a temporary file renamed into place).
    public func write(to layout: CacheDirectoryLayout) throws {
        let data = try JSONEncoder().encode(self)
        try data.write(to: URL(fileURLWithPath: layout.identityFile), options: .atomic)
    }

    /// The identity in `layout`'s directory; nil when there is none (yet) or it is not one:
    /// larger than 4 KiB or not this JSON.
    public static func read(from layout: CacheDirectoryLayout) -> CacheNodeIdentity? {
        guard let handle = FileHandle(forReadingAtPath: layout.identityFile) else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 4096), data.count < 4096 else { return nil }
        return try? JSONDecoder().decode(CacheNodeIdentity.self, from: data)
    }
}
