import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf

/// Finds where chunks, named by their SHA-256, are held in an image's ready versions on this
/// repository: newest version first, each file's manifest from the catalog.
struct ChunkLocator: Sendable {
    /// A chunk's place: a file of a version and its index there.
    struct Place: Sendable, Equatable {
        let file: ManifestCache.Key
        let index: Int
    }

    let repository: ImageRepository
    let catalog: RPCClient
    let manifests: ManifestCache

    /// The place of each hash in `hashes` found; `version` 0 searches every ready version held
    /// here, `path` nil every file.
    func locate(_ hashes: Set<[UInt8]>, image: Name, version: Int64, path: VersionFilePath?) async throws -> [[UInt8]: Place] {
        let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
        let held = try repository.versions()[image] ?? [:]
        let candidates = answer.versions
            .filter { $0.state == .ready && held[$0.number] != nil && (version == 0 || $0.number == version) }
            .sorted { $0.number > $1.number }
        if version != 0, candidates.isEmpty {
            throw RPCError(code: .notFound, message: "version \(version) of image '\(image)' is not a ready version held on this repository")
        }
        var found: [[UInt8]: Place] = [:]
        for candidate in candidates {
            for file in candidate.files where path == nil || file.path == path?.rawValue {
                let key = ManifestCache.Key(image: image, version: candidate.number, path: try VersionFilePath(file.path))
                let manifest = try await manifests.manifest(key)
                for index in 0..<manifest.entries.count / ChunkManifest.entrySize {
                    let hash = Array(manifest.entries[index * ChunkManifest.entrySize..<(index + 1) * ChunkManifest.entrySize])
                    if hashes.contains(hash), found[hash] == nil {
                        found[hash] = Place(file: key, index: index)
                    }
                }
                if found.count == hashes.count { return found }
            }
        }
        return found
    }
}
