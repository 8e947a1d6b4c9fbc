import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import SwiftProtobuf
import Synchronization

/// Manifests of ready versions, fetched from the catalog (GetManifest) and kept for the most
/// recently used files, at most `capacity` entries' worth (32 bytes each) in memory.
final class ManifestCache: Sendable {
    struct Key: Hashable, Sendable {
        let image: Name
        let version: Int64
        let path: VersionFilePath
    }

    struct Manifest: Sendable {
        let fileSize: Int64
        let chunkSize: Int64
        let entries: [UInt8]
    }

    private struct State {
        var manifests: [Key: Manifest] = [:]
        var order: [Key] = []  // least recently used first
        var entryBytes = 0
    }

    private let catalog: RPCClient
    private let capacity: Int
    private let state = Mutex(State())

    init(catalog: RPCClient, capacityBytes: Int = 64 << 20) {
        self.catalog = catalog
        self.capacity = capacityBytes
    }

    func manifest(_ key: Key) async throws -> Manifest {
        if let cached = state.withLock({ state -> Manifest? in
            guard let found = state.manifests[key] else { return nil }
            state.order.removeAll { $0 == key }
            state.order.append(key)
            return found
        }) {
            return cached
        }
        let fetched = try await fetch(key)
        state.withLock { state in
            guard state.manifests[key] == nil else { return }
            state.manifests[key] = fetched
            state.order.append(key)
            state.entryBytes += fetched.entries.count
            while state.entryBytes > capacity, state.order.count > 1 {
                let evicted = state.order.removeFirst()
                state.entryBytes -= state.manifests.removeValue(forKey: evicted)?.entries.count ?? 0
            }
        }
        return fetched
    }

    private func fetch(_ key: Key) async throws -> Manifest {
        var request = Icbd_Catalog_V1_GetManifestRequest()
        request.image = key.image.rawValue
        request.version = key.version
        request.path = key.path.rawValue
        return try await catalog.serverStreaming(CatalogMethods.getManifest, request) { pieces in
            var file: Icbd_Catalog_V1_File?
            var entries: [UInt8] = []
            for try await piece in pieces {
                if piece.hasFile { file = piece.file }
                guard piece.firstChunk * 32 == Int64(entries.count) else {
                    throw RPCError(code: .internal, message: "the catalog sent manifest entries out of order")
                }
                entries += piece.entries
            }
            guard let file else { throw RPCError(code: .internal, message: "the catalog sent a manifest without its file") }
            return Manifest(fileSize: file.size, chunkSize: file.chunkSize, entries: entries)
        }
    }
}
