import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf

/// Warms a version: queues every non-zero chunk of its files that the store does not hold for a
/// background fill at warm priority (demand reads overtake it), in the order `order` gives.
struct Warmer: Sendable {
    let catalog: RPCClient
    let cache: ChunkCache
    let logger: Logger

    /// The version's chunks, file by file in manifest order.
    func chunks(image: Name, version: Int64) async throws -> [ChunkWant] {
        let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
        guard let found = answer.versions.first(where: { $0.number == version }) else {
            throw RPCError(code: .notFound, message: "image '\(image)' has no version \(version)")
        }
        guard found.state == .ready else {
            throw RPCError(code: .failedPrecondition, message: "version \(version) of image '\(image)' is not ready")
        }
        var wants: [ChunkWant] = []
        for file in found.files {
            let entries = try await manifest(image: image, version: version, path: file.path)
            for index in 0..<entries.count / ChunkManifest.entrySize {
                let start = index * ChunkManifest.entrySize
                guard let digest = ChunkDigest(bytes: entries[start..<start + ChunkManifest.entrySize]), !digest.isZeroEntry else {
                    continue
                }
                wants.append(
                    ChunkWant(
                        digest: digest, source: .position(image: image.rawValue, version: version, path: file.path, index: UInt32(index))))
            }
        }
        return wants
    }

    /// `wants` with the positions `profile` names first, in its order, then the rest in theirs
    /// (or only the profiled ones, `profiledOnly`).
    static func ordered(_ wants: [ChunkWant], by profile: BootProfile?, profiledOnly: Bool = false) -> [ChunkWant] {
        guard let profile else { return profiledOnly ? [] : wants }
        var byPosition: [BootProfile.Position: ChunkWant] = [:]
        for want in wants {
            if case .position(_, _, let path, let index) = want.source { byPosition[.init(path: path, index: index)] = want }
        }
        let first = profile.positions.compactMap { byPosition[$0] }
        guard !profiledOnly else { return first }
        let named = Set(profile.positions)
        let rest = wants.filter { want in
            guard case .position(_, _, let path, let index) = want.source else { return true }
            return !named.contains(.init(path: path, index: index))
        }
        return first + rest
    }

    /// The part of `wants` that is `node`'s to hold: the chunks for which `node` ranks first, in
    /// rendezvous order, among `siteCaches` (the names of its site's cache nodes that are up).
    /// Gateways send each read to the chunk's first-ranked cache, so a chunk warmed anywhere
    /// else would only take room there. A node that is not among them (not registered, or down
    /// in the catalog's view) takes all: better twice than not at all.
    static func share(of wants: [ChunkWant], for node: String, among siteCaches: [String]) -> [ChunkWant] {
        guard siteCaches.contains(node), siteCaches.count > 1 else { return wants }
        return wants.filter { RendezvousOrder.rank(siteCaches, for: $0.digest.bytes, name: { $0 }).first == node }
    }

    /// Queues the chunks not held; returns (queued, held).
    func warm(_ wants: [ChunkWant]) -> (queued: Int, held: Int) {
        var seen: Set<ChunkDigest> = []
        let unique = wants.filter { seen.insert($0.digest).inserted }
        let missing = unique.filter { !cache.store.contains($0.digest) }
        let queued = cache.scheduler.prefetch(missing, priority: .warm).count
        return (queued, unique.count - missing.count)
    }

    private func manifest(image: Name, version: Int64, path: String) async throws -> [UInt8] {
        var request = Icbd_Catalog_V1_GetManifestRequest()
        request.image = image.rawValue
        request.version = version
        request.path = path
        return try await catalog.serverStreaming(CatalogMethods.getManifest, request) { pieces in
            var entries: [UInt8] = []
            for try await piece in pieces {
                guard piece.firstChunk * 32 == Int64(entries.count) else {
                    throw RPCError(code: .internal, message: "the catalog sent manifest entries out of order")
                }
                entries += piece.entries
            }
            return entries
        }
    }
}
