import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

/// The check a received version passes before it counts as present: its subvolume is
/// read-only, carries the source's UUID as `received_uuid`, and every file's manifest, rebuilt
/// from what is on disk, has the digest the catalog gives the version.
///
/// After an incremental stream, a chunk the stream did not touch is not read again: its entry
/// is the parent's. That is safe because `btrfs receive` makes the new subvolume a snapshot of
/// the local subvolume the stream names as its parent (checked before the receive started to
/// be the parent this repository offered: read-only, verified when it arrived or was
/// published) and then changes only what the stream's commands change. ``SendStreamScan``
/// sees every command that reaches `btrfs receive` and records every byte range a write, clone,
/// truncate, fallocate or extent update touches; a byte outside them is the parent's byte.
/// When the stream creates, renames, links or removes a file, holds a command the scan does not
/// know, or the parent's manifest of a file is missing or differently chunked, every chunk of
/// that file (or of all files) is read. The digest comparison at the end is the same either way.
///
/// After a full stream, a file's chunks come from ``StreamWriteManifests``, which hashed the
/// stream's writes as they passed (the stream's SHA-256 verified, `btrfs receive` succeeded):
/// nothing is read back unless the stream did something it does not follow.
struct ReceivedVersionCheck: Sendable {
    /// What an incremental stream was sent against, and what it touched.
    struct Parent: Sendable {
        let version: Int64
        let scan: SendStreamScan
        let manifests: ManifestCache
    }

    /// How much was read.
    struct Outcome: Sendable, Equatable {
        var chunksRead = 0
        var chunksReused = 0
        /// Chunks hashed from a full stream's writes as they passed.
        var chunksFromStream = 0
    }

    let repository: ImageRepository
    let target: VersionPull.Target
    let parent: Parent?
    /// A full stream's files as its writes built them; nil: read them back.
    var written: StreamWriteManifests? = nil
    let logger: Logger

    func run() async throws(ReplicationError) -> Outcome {
        let path = repository.versionPath(of: target.image, target.version)
        let info: Subvolume.Info
        do { info = try Subvolume.info(at: path) } catch {
            throw ReplicationError(.dataLoss, "btrfs receive left no v\(target.version): \(error)")
        }
        guard info.isReadOnly, info.receivedUUID == target.identity else {
            throw ReplicationError(
                .dataLoss,
                "the received v\(target.version) carries received_uuid \(info.receivedUUID?.uuidString.lowercased() ?? "none"), not \(target.identity.uuidString.lowercased())")
        }
        var outcome = Outcome()
        for file in target.files {
            if let manifest = fromStream(file, in: path) {
                if manifest.digest == Array(file.manifestSha256), manifest.fileSize == file.size {
                    outcome.chunksFromStream += manifest.chunkCount
                    continue
                }
                // Only a match is taken from the stream; anything else is decided by the bytes on disk.
                logger.warning("the manifest hashed from the stream's writes differs: reading the file back", metadata: ["file": "\(file.path)"])
            }
            var builder = ManifestBuilder()
            builder.chunkSize = file.chunkSize > 0 ? file.chunkSize : ChunkManifest.defaultChunkSize
            let reuse = await reusable(file, chunkSize: builder.chunkSize)
            let built: ManifestBuilder.Manifest
            do { built = try await builder.build(path: path + "/" + file.path, reusing: reuse) } catch {
                throw ReplicationError(.dataLoss, "'\(file.path)' of the received version cannot be read: \(error)")
            }
            guard built.fileSize == file.size, built.digest == Array(file.manifestSha256) else {
                throw ReplicationError(.dataLoss, "'\(file.path)' of the received version does not match its manifest")
            }
            let reused = reuse.map { reuse in (0..<Int64(built.chunkCount)).count(where: { reuse.keeps($0) }) } ?? 0
            outcome.chunksReused += reused
            outcome.chunksRead += built.chunkCount - reused
        }
        return outcome
    }

    /// The manifest of `file` from a full stream's writes, if they were followed and the file
    /// on disk is a regular file (its size from the disk: what a reader sees).
    private func fromStream(_ file: Icbd_Catalog_V1_File, in version: String) -> ManifestBuilder.Manifest? {
        guard parent == nil, let written else { return nil }
        if let reason = written.abandoned {
            logger.debug("full stream not followed: reading the files back", metadata: ["reason": "\(reason)"])
            return nil
        }
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: version + "/" + file.path),
            attributes[.type] as? FileAttributeType == .typeRegular, let size = attributes[.size] as? NSNumber
        else { return nil }
        let chunkSize = file.chunkSize > 0 ? file.chunkSize : ChunkManifest.defaultChunkSize
        guard let manifest = written.manifest(path: file.path, fileSize: size.int64Value), manifest.chunkSize == chunkSize else { return nil }
        return manifest
    }

    /// The parent's entries of the chunks of `file` that the stream left alone; nil: read all.
    private func reusable(_ file: Icbd_Catalog_V1_File, chunkSize: Int64) async -> ManifestBuilder.Reuse? {
        guard let parent, !parent.scan.reshaped, parent.scan.isAtCommandBoundary, let filePath = try? VersionFilePath(file.path) else {
            return nil
        }
        let base: ManifestCache.Manifest
        do {
            base = try await parent.manifests.manifest(.init(image: target.image, version: parent.version, path: filePath))
        } catch {
            logger.debug("no parent manifest: reading the whole file", metadata: ["file": "\(file.path)", "error": "\(error)"])
            return nil
        }
        guard base.chunkSize == chunkSize else { return nil }
        let count = ChunkManifest.chunkCount(fileSize: file.size, chunkSize: chunkSize)
        var keep = parent.scan.untouchedChunks(chunkSize: chunkSize, count: count)
        // A file that grew or shrank: chunks from where the two sizes part are read.
        if base.fileSize != file.size {
            let sameUpTo = Int(min(base.fileSize, file.size) / chunkSize)
            for index in sameUpTo..<Int(count) { keep[index] = false }
        }
        return ManifestBuilder.Reuse(entries: base.entries, keep: keep)
    }
}

extension SendStreamScan {
    /// For each of `count` chunks of `chunkSize` bytes: true when no touched range reaches it.
    func untouchedChunks(chunkSize: Int64, count: Int64) -> [Bool] {
        var untouched = [Bool](repeating: true, count: Int(count))
        guard chunkSize > 0 else { return untouched.map { _ in false } }
        for range in touched where !range.isEmpty {
            let first = range.lowerBound / chunkSize
            guard first < count else { continue }
            let last = min(count - 1, (range.upperBound - 1) / chunkSize)
            for index in first...last { untouched[Int(index)] = false }
        }
        return untouched
    }
}
