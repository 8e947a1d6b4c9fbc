import CacheClient
import CacheNode
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import SwiftProtobuf
import Synchronization

/// A hostile cache node: it holds a real cache certificate and answers GetChunks with the hash
/// it was asked for but with other bytes, of the right length (the chunk of `disk` asked for,
/// its first byte flipped). It counts the chunks it was asked for.
final class LyingCacheNode: Sendable {
    let server: RPCServer
    private let counter: Counter

    init(identity: TLSIdentity, disk: [UInt8], chunkSize: Int = 1 << 20, logger: Logger) throws {
        var router = RPCRouter()
        let counter = Counter()
        router.serverStreaming(CacheMethods.getChunks) { request, writer, _ in
            for (hash, index) in zip(request.hashes, request.indexes) {
                counter.add()
                let start = Int(index) * chunkSize + Int(request.offset)
                let end = request.length > 0 ? start + Int(request.length) : min(Int(index + 1) * chunkSize, disk.count)
                var wrong = Array(disk[start..<end])
                wrong[0] ^= 0xFF
                try await writer.write(.with { $0.sha256 = hash }, payload: ByteBuffer(bytes: wrong))
            }
        }
        server = try RPCServer(
            configuration: RPCServerConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), tls: identity), router: router, logger: logger)
        self.counter = counter
    }

    /// Chunks asked for so far.
    var chunksAsked: Int { counter.value }

    private final class Counter: Sendable {
        private let count = Atomic<Int>(0)
        func add() { count.add(1, ordering: .relaxed) }
        var value: Int { count.load(ordering: .relaxed) }
    }

    func address() async throws -> HostPort {
        HostPort(host: "127.0.0.1", port: try await server.localAddress().port ?? 0)
    }
}
