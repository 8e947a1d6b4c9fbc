import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import Testing

/// A real `icbd catalog` child process with a PKI made by the real `icbd pki`, and RPC clients
/// of it, for tests of the catalog as a process. Its temporary directory lives as long as the
/// deployment (catalogs restarted on the same database find it), then is removed.
final class CatalogDeployment: Sendable {
    let directory: URL
    let pki: String
    var database: String { directory.appendingPathComponent("catalog.db").path }

    init() async throws {
        directory = try temporaryDirectory()
        pki = directory.appendingPathComponent("pki").path
        #expect(try await CommandRunner.run(["pki", "init", "--dir", pki]).status == 0)
        for (role, name) in [("catalog", "cat1"), ("admin", "admin"), ("replicator", "repo1"), ("gateway", "gw1"), ("cache", "cache1")] {
            let issued = try await CommandRunner.run(
                ["pki", "issue", "--dir", pki, "--role", role, "--name", name, "--ip", "127.0.0.1"])
            #expect(issued.status == 0, "\(issued.stderr)")
        }
    }

    deinit {
        removeTemporaryDirectory(directory)
    }

    /// Starts a catalog on a free port; returns the process and its `HOST:PORT`.
    func start() async throws -> ServiceProcess {
        try await ServiceProcess(
            ["catalog", "--listen", "127.0.0.1:0", "--db", database, "--tls-dir", pki, "--name", "cat1"], in: directory)
    }

    /// Runs `body` with an RPC client presenting the certificate `name` of the PKI.
    func withClient<R: Sendable>(_ address: String, as name: String = "admin", _ body: (RPCClient) async throws -> R) async throws -> R {
        let logger = quietLogger()
        let configuration = RPCClientConfiguration(
            target: try HostPort(parsing: address), expectedRole: .catalog, tls: try TLSIdentity.load(directory: pki, name: name))
        return try await withRPCClient(configuration, logger: logger, body)
    }

    /// `icbd ARGUMENTS --catalog ADDRESS --tls-dir PKI [EXTRA]`.
    func cli(_ arguments: [String], _ address: String, extra: [String] = []) async throws -> CommandRunner.Result {
        try await CommandRunner.run(arguments + ["--catalog", address, "--tls-dir", pki] + extra)
    }
}

/// Publishes a version with one made-up file, as a replicator does.
@discardableResult
func publishVersion(_ client: RPCClient, image: String, size: Int64 = 3 << 20) async throws -> Icbd_Catalog_V1_Version {
    let chunkSize = ChunkManifest.defaultChunkSize
    let count = Int(ChunkManifest.chunkCount(fileSize: size, chunkSize: chunkSize))
    let entries = (0..<(count * 32)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ Int(size % 251)) }
    var create = Icbd_Catalog_V1_CreateImageRequest()
    create.name = image
    create.ifMissing = true
    _ = try await client.unary(CatalogMethods.createImage, create)
    var request = Icbd_Catalog_V1_CreateVersionRequest()
    request.image = image
    var file = Icbd_Catalog_V1_FileSpec()
    file.path = "disk.raw"
    file.size = size
    file.chunkSize = chunkSize
    file.manifestSha256 = Data(ChunkManifest.digest(fileSize: size, chunkSize: chunkSize, entries: entries))
    request.files = [file]
    let version = try await client.unary(CatalogMethods.createVersion, request).version
    _ = try await client.clientStreaming(CatalogMethods.putManifest) { writer in
        var message = Icbd_Catalog_V1_PutManifestRequest()
        message.image = image
        message.version = version.number
        message.path = "disk.raw"
        message.entries = Data(entries)
        try await writer.write(message)
    }
    var complete = Icbd_Catalog_V1_CompleteVersionRequest()
    complete.image = image
    complete.number = version.number
    return try await client.unary(CatalogMethods.completeVersion, complete).version
}
