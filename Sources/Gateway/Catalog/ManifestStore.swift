import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Synchronization

/// A file's manifest as the gateway uses it: where each chunk's bytes come from.
struct FileManifest: Sendable {
    let fileSize: Int64
    let chunkSize: Int64
    /// 32 bytes per chunk; all zero for a chunk of zeros.
    let entries: [UInt8]

    var chunkCount: Int64 { ChunkManifest.chunkCount(fileSize: fileSize, chunkSize: chunkSize) }

    /// The hash of chunk `index`, or nil for an all-zero chunk (produced locally, never fetched).
    func hash(of index: Int64) -> [UInt8]? {
        let start = Int(index) * ChunkManifest.entrySize
        let entry = entries[start..<start + ChunkManifest.entrySize]
        return entry.allSatisfy { $0 == 0 } ? nil : Array(entry)
    }

    /// The bytes chunk `index` holds (the last chunk may be short).
    func length(of index: Int64) -> Int64 {
        min(chunkSize, fileSize - index * chunkSize)
    }

    /// The bytes of chunk `index` that `range` covers, counted from the chunk's start.
    func part(of index: Int64, in range: ClosedRange<Int64>) -> Range<Int> {
        let chunkStart = index * chunkSize
        let lower = Int(max(range.lowerBound, chunkStart) - chunkStart)
        let upper = Int(min(range.upperBound + 1, chunkStart + length(of: index)) - chunkStart)
        return lower..<upper
    }
}

/// Manifests fetched from the catalog on demand (GetManifest), verified against the digest the
/// version lists, and kept for the most recently used files up to `capacityBytes` of entries.
/// Concurrent requests for one manifest share one fetch.
final class ManifestStore: Sendable {
    struct Key: Hashable, Sendable {
        let image: String
        let version: Int64
        let path: String

        init(_ version: VersionRecord, _ file: FileRecord) {
            image = version.image.rawValue
            self.version = version.number
            path = file.path.rawValue
        }
    }

    private struct State {
        var manifests: [Key: FileManifest] = [:]
        var order: [Key] = []  // least recently used first
        var bytes = 0
        var fetching: [Key: Task<FileManifest, any Error>] = [:]
    }

    private let catalog: RPCClient
    private let capacityBytes: Int
    private let state = Mutex(State())

    init(catalog: RPCClient, capacityBytes: Int) {
        self.catalog = catalog
        self.capacityBytes = capacityBytes
    }

    /// The manifest of `file` of `version`.
    func manifest(of version: VersionRecord, file: FileRecord) async throws -> FileManifest {
        let key = Key(version, file)
        if let found = held(key) { return found }
        let task: Task<FileManifest, any Error> = state.withLock { state in
            if let running = state.fetching[key] { return running }
            let catalog = self.catalog
            let fetch = Task { try await Self.fetch(key, expected: file, from: catalog) }
            state.fetching[key] = fetch
            return fetch
        }
        do {
            let manifest = try await task.value
            remember(key, manifest)
            return manifest
        } catch {
            _ = state.withLock { $0.fetching.removeValue(forKey: key) }
            throw error
        }
    }

    /// The manifest of `file` of `version` if it is held now (no call to the catalog).
    func held(of version: VersionRecord, file: FileRecord) -> FileManifest? {
        held(Key(version, file))
    }

    private func held(_ key: Key) -> FileManifest? {
        state.withLock { state in
            guard let found = state.manifests[key] else { return nil }
            if state.order.last != key {
                state.order.removeAll { $0 == key }
                state.order.append(key)
            }
            return found
        }
    }

    private func remember(_ key: Key, _ manifest: FileManifest) {
        state.withLock { state in
            state.fetching[key] = nil
            guard state.manifests[key] == nil else { return }
            state.manifests[key] = manifest
            state.order.append(key)
            state.bytes += manifest.entries.count
            while state.bytes > capacityBytes, state.order.count > 1 {
                let evicted = state.order.removeFirst()
                state.bytes -= state.manifests.removeValue(forKey: evicted)?.entries.count ?? 0
            }
        }
    }

    private static func fetch(_ key: Key, expected: FileRecord, from catalog: RPCClient) async throws -> FileManifest {
        var request = Icbd_Catalog_V1_GetManifestRequest()
        request.image = key.image
        request.version = key.version
        request.path = key.path
        let entries = try await catalog.serverStreaming(CatalogMethods.getManifest, request, options: RPCCallOptions(timeout: .seconds(30))) {
            pieces in
            var entries: [UInt8] = []
            for try await piece in pieces {
                guard piece.firstChunk * Int64(ChunkManifest.entrySize) == Int64(entries.count) else {
                    throw RPCError(code: .internal, message: "the catalog sent manifest entries out of order")
                }
                entries += piece.entries
            }
            return entries
        }
        let digest = ChunkManifest.digest(fileSize: expected.size, chunkSize: expected.chunkSize, entries: entries)
        guard digest == expected.manifestDigest,
            Int64(entries.count) == ChunkManifest.chunkCount(fileSize: expected.size, chunkSize: expected.chunkSize) * 32
        else {
            throw RPCError(code: .dataLoss, message: "the manifest of \(key.image) v\(key.version) \(key.path) does not match its digest")
        }
        return FileManifest(fileSize: expected.size, chunkSize: expected.chunkSize, entries: entries)
    }
}
