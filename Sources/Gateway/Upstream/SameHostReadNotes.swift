import CacheClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Tells the local cache node which of its chunks the gateway read from its files (the same-host
/// path), with `NoteReads`, so that the node counts them as its own reads: their recency in its
/// eviction order, its hits, its boot profiles (which decide the order new versions are warmed
/// in). Without it, a chunk the gateway reads all day looks unused to the node.
///
/// Reads are noted as they happen and sent once a `interval`, each chunk once per round,
/// grouped by file (a call names one file's chunks, at most 1024). Bounded: at most `capacity`
/// distinct chunks wait; beyond that, reads are not noted until the next round (a lost note
/// costs the node one recency update, never a byte) and counted as dropped.
final class SameHostReadNotes: Sendable {
    /// One file's chunks, as a `NoteReads` call names them.
    private struct FileKey: Hashable {
        let image: String
        let version: Int64
        let path: String
    }

    private struct Pending {
        var files: [FileKey: [Int64: [UInt8]]] = [:]
        var count = 0
        var dropped = 0
    }

    private let pending = Mutex(Pending())
    private let local: SameHostChunks
    private let view: CatalogView
    private let clients: RPCClientPool
    private let logger: Logger
    let capacity: Int
    let interval: Duration

    init(
        local: SameHostChunks, view: CatalogView, clients: RPCClientPool, logger: Logger, capacity: Int = 8192,
        interval: Duration = .seconds(1)
    ) {
        self.local = local
        self.view = view
        self.clients = clients
        self.logger = logger
        self.capacity = capacity
        self.interval = interval
    }

    /// Notes that chunk `index` (`hash`) of `path` in `image` version `version` was read locally.
    func note(image: String, version: Int64, path: String, index: Int64, hash: [UInt8]) {
        let key = FileKey(image: image, version: version, path: path)
        pending.withLock { pending in
            if pending.files[key]?[index] != nil { return }
            guard pending.count < capacity else {
                pending.dropped += 1
                return
            }
            pending.files[key, default: [:]][index] = hash
            pending.count += 1
        }
    }

    /// Sends the notes every `interval` until graceful shutdown, then once more.
    var service: some Service {
        ClosureService { [self] in
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.interval)
                    await self.send()
                }
            }
            await send()
        }
    }

    /// Sends what is pending to the local node (dropped when it is unknown or down: notes are
    /// hints, and the node's files were read whatever it learns of it).
    func send() async {
        let taken = pending.withLock { pending -> Pending in
            defer { pending = Pending() }
            return pending
        }
        if taken.dropped > 0 {
            logger.debug("same-host read notes dropped: more distinct chunks read than noted per round", metadata: ["dropped": "\(taken.dropped)"])
        }
        guard !taken.files.isEmpty, let name = local.nodeName, let node = view.snapshot.nodes[name], node.role == .cache,
            let address = node.rpcAddress
        else { return }
        do {
            let client = try clients.client(for: address, role: .cache)
            for (file, chunks) in taken.files {
                let ordered = chunks.sorted { $0.key < $1.key }
                for start in stride(from: 0, to: ordered.count, by: 1024) {
                    let batch = ordered[start..<min(start + 1024, ordered.count)]
                    _ = try await client.unary(
                        CacheMethods.noteReads,
                        .with {
                            $0.image = file.image
                            $0.version = file.version
                            $0.path = file.path
                            $0.hashes = batch.map { Data($0.value) }
                            $0.indexes = batch.map(\.key)
                        },
                        options: RPCCallOptions(timeout: .seconds(5)))
                }
            }
        } catch {
            logger.debug("same-host read notes not delivered", metadata: ["node": "\(name)", "error": "\(error)"])
        }
    }
}
