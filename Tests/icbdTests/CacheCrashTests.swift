import Catalog
import CatalogClient
import Crypto
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import Testing

@Suite("icbd cache as a process: killed with SIGKILL, it serves what it held after a restart", .requiresLoopBtrfs)
struct CacheCrashTests {
    static let getChunks = RPCMethod<Icbd_Cache_V1_GetChunksRequest, Icbd_Cache_V1_GetChunksResponse>(
        service: "icbd.cache.v1.Cache", method: "GetChunks", kind: .serverStreaming, allowedRoles: [.gateway])

    @Test func restartAfterKillServesWhatItHeldWithTheRepositoryGone() async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            let deployment = try await CatalogDeployment()  // its PKI has cache1
            let catalog = try await deployment.start()
            let catalogAddress = try await catalog.listeningAddress()
            #expect(try await deployment.cli(["site", "add", "hq"], catalogAddress).status == 0)
            let replicator = try await ServiceProcess(
                ["replicator", "--listen", "127.0.0.1:0", "--root", root, "--site", "hq", "--catalog", catalogAddress, "--tls-dir",
                 deployment.pki, "--name", "repo1"], in: deployment.directory)
            let replicatorAddress = try await replicator.listeningAddress()
            try await deployment.withClient(catalogAddress) { client in
                while try await client.unary(CatalogMethods.listNodes, .init()).nodes.isEmpty {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }

            // A 6 MiB disk of distinct chunks, published through the real CLI.
            let source = deployment.directory.appendingPathComponent("image")
            try FileManager.default.createDirectory(at: source, withIntermediateDirectories: true)
            var bytes = [UInt8](repeating: 0, count: 6 << 20)
            var state: UInt64 = 42
            for index in bytes.indices {
                state = state &* 6364136223846793005 &+ 1442695040888963407
                bytes[index] = UInt8(truncatingIfNeeded: state >> 33)
            }
            try Data(bytes).write(to: source.appendingPathComponent("disk.raw"))
            let published = try JSONShape.decode(
                JSONShape.Published.self,
                try await CommandRunner.run(
                    ["image", "publish", "win11", source.path, "--replicator", replicatorAddress, "--tls-dir", deployment.pki, "--json"]))
            let publishedFile = try #require(published.files.first)
            #expect(published.version == 1 && published.parent == 0 && !published.btrfsUuid.isEmpty && published.files.count == 1)
            #expect(publishedFile.path == "disk.raw" && publishedFile.size == 6 << 20 && publishedFile.etag.count == 64)
            #expect(publishedFile.writtenBytes == 6 << 20 && publishedFile.zeroChunks == 0 && !publishedFile.reflinked)
            let hashes = (0..<6).map { Data(SHA256.hash(data: bytes[($0 << 20)..<(($0 + 1) << 20)])) }

            let cacheDirectory = deployment.directory.appendingPathComponent("cache").path
            let arguments = [
                "cache", "--listen", "127.0.0.1:0", "--dir", cacheDirectory, "--capacity", "64MiB", "--site", "hq", "--catalog",
                catalogAddress, "--tls-dir", deployment.pki, "--name", "cache1",
            ]
            let first = try await ServiceProcess(arguments, in: deployment.directory)
            let firstAddress = try await first.listeningAddress()
            var hinted = Icbd_Cache_V1_GetChunksRequest()
            hinted.hashes = hashes
            hinted.image = "win11"
            hinted.version = 1
            hinted.path = "disk.raw"
            hinted.indexes = (0..<6).map(Int64.init)
            let filled = try await chunks(at: firstAddress, deployment: deployment, hinted)
            #expect(filled == (0..<6).map { Data(bytes[($0 << 20)..<(($0 + 1) << 20)]) })
            #expect(try await first.stop(with: SIGKILL) != 0)

            // The repository goes away: whatever the cache serves now comes from its disk.
            _ = try await replicator.stop(with: SIGTERM)
            let second = try await ServiceProcess(arguments, in: deployment.directory)
            let secondAddress = try await second.listeningAddress()
            var byHash = Icbd_Cache_V1_GetChunksRequest()
            byHash.hashes = hashes.reversed()
            let served = try await chunks(at: secondAddress, deployment: deployment, byHash)
            #expect(served == (0..<6).reversed().map { Data(bytes[($0 << 20)..<(($0 + 1) << 20)]) })
            let health = try await CommandRunner.run(
                ["health", secondAddress, "--role", "cache", "--tls-dir", deployment.pki])
            #expect(health.status == 0)
            #expect(health.stdout.contains("SERVING cache cache1"))
            #expect(try await second.stop(with: SIGTERM) == 0)
            _ = try await catalog.stop(with: SIGTERM)
        }
    }

    /// GetChunks as a gateway; each chunk's pieces joined.
    func chunks(at address: String, deployment: CatalogDeployment, _ request: Icbd_Cache_V1_GetChunksRequest) async throws -> [Data] {
        let logger = quietLogger()
        let configuration = RPCClientConfiguration(
            target: try HostPort(parsing: address), expectedRole: .cache, tls: try TLSIdentity.load(directory: deployment.pki, name: "gw1"))
        return try await withRPCClient(configuration, logger: logger) { client in
            try await client.serverStreaming(Self.getChunks, request) { responses in
                var chunks: [Data] = []
                for try await response in responses {
                    if response.sha256.isEmpty, !chunks.isEmpty {
                        chunks[chunks.count - 1] += response.data
                    } else {
                        #expect(Data(SHA256.hash(data: response.data)) == response.sha256 || response.data.count >= 8 << 20)
                        chunks.append(response.data)
                    }
                }
                return chunks
            }
        }
    }
}
