import ICBDCore
import ICBDProto

/// About how many bytes a send stream of a version will have, from the catalog's manifests:
/// the non-zero chunks that differ from the parent's (all of them for a full stream). It
/// gives the ETA of a running transfer; `btrfs send` itself does not announce its length.
struct StreamEstimate: Sendable {
    let manifests: ManifestCache

    func bytes(image: Name, version: Int64, files: [Icbd_Catalog_V1_File], parent: Int64?) async -> Int64? {
        var total: Int64 = 0
        for file in files {
            guard let path = try? VersionFilePath(file.path),
                let target = try? await manifests.manifest(.init(image: image, version: version, path: path))
            else { return nil }
            var base: ManifestCache.Manifest?
            if let parent { base = try? await manifests.manifest(.init(image: image, version: parent, path: path)) }
            let count = target.entries.count / ChunkManifest.entrySize
            for index in 0..<count {
                let range = index * ChunkManifest.entrySize..<(index + 1) * ChunkManifest.entrySize
                let entry = target.entries[range]
                if entry.elementsEqual(ChunkManifest.zeroEntry) { continue }
                if let base, base.chunkSize == target.chunkSize, base.entries.count >= range.upperBound,
                    base.entries[range].elementsEqual(entry)
                {
                    continue
                }
                total += min(target.chunkSize, target.fileSize - Int64(index) * target.chunkSize)
            }
        }
        return total
    }
}
