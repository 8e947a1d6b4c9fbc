import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC

/// A file and its manifest, made up for a test: deterministic entries, some of them zero chunks.
struct TestFile {
    let path: String
    let size: Int64
    let chunkSize: Int64
    let entries: [UInt8]

    init(path: String, size: Int64, chunkSize: Int64 = ChunkManifest.defaultChunkSize, seed: UInt8 = 1) {
        self.path = path
        self.size = size
        self.chunkSize = chunkSize
        let count = Int(ChunkManifest.chunkCount(fileSize: size, chunkSize: chunkSize))
        var entries = [UInt8]()
        entries.reserveCapacity(count * 32)
        for chunk in 0..<count {
            if chunk % 7 == 3 {
                entries += ChunkManifest.zeroEntry
            } else {
                entries += (0..<32).map { UInt8(truncatingIfNeeded: chunk &* 31 &+ $0 &* 7 &+ Int(seed)) }
            }
        }
        self.entries = entries
    }

    var digest: [UInt8] { ChunkManifest.digest(fileSize: size, chunkSize: chunkSize, entries: entries) }

    var spec: Icbd_Catalog_V1_FileSpec {
        var spec = Icbd_Catalog_V1_FileSpec()
        spec.path = path
        spec.size = size
        spec.chunkSize = chunkSize
        spec.manifestSha256 = Data(digest)
        return spec
    }

    func domainSpec() throws -> FileSpec {
        FileSpec(path: try VersionFilePath(path), size: size, chunkSize: chunkSize, manifestDigest: digest)
    }
}

/// Publishes a whole version over RPC as a replicator does: ensure the image, create the
/// version, upload each manifest, complete it. Returns the ready version.
@discardableResult
func publish(
    _ client: RPCClient, image: String, number: Int64 = 0, parent: Int64 = 0, files: [TestFile] = [TestFile(path: "disk.raw", size: 5 << 20)],
    manifestPiece: Int = 1000
) async throws -> Icbd_Catalog_V1_Version {
    var create = Icbd_Catalog_V1_CreateImageRequest()
    create.name = image
    create.ifMissing = true
    _ = try await client.unary(CatalogMethods.createImage, create)
    var request = Icbd_Catalog_V1_CreateVersionRequest()
    request.image = image
    request.number = number
    request.parent = parent
    request.btrfsUuid = UUID().uuidString.lowercased()
    request.files = files.map(\.spec)
    let version = try await client.unary(CatalogMethods.createVersion, request).version
    for file in files {
        try await uploadManifest(client, image: image, version: version.number, file: file, piece: manifestPiece)
    }
    var complete = Icbd_Catalog_V1_CompleteVersionRequest()
    complete.image = image
    complete.number = version.number
    return try await client.unary(CatalogMethods.completeVersion, complete).version
}

@discardableResult
func uploadManifest(_ client: RPCClient, image: String, version: Int64, file: TestFile, entries: [UInt8]? = nil, piece: Int = 1000) async throws
    -> Icbd_Catalog_V1_PutManifestResponse
{
    let bytes = entries ?? file.entries
    return try await client.clientStreaming(CatalogMethods.putManifest) { writer in
        var first = Icbd_Catalog_V1_PutManifestRequest()
        first.image = image
        first.version = version
        first.path = file.path
        var offset = 0
        let step = piece * 32
        first.entries = Data(bytes[0..<min(step, bytes.count)])
        offset = min(step, bytes.count)
        try await writer.write(first)
        while offset < bytes.count {
            var next = Icbd_Catalog_V1_PutManifestRequest()
            next.entries = Data(bytes[offset..<min(offset + step, bytes.count)])
            offset = min(offset + step, bytes.count)
            try await writer.write(next)
        }
    }
}

/// Adds a site over RPC.
@discardableResult
func addSite(_ client: RPCClient, _ name: String, cidrs: [String] = []) async throws -> Icbd_Catalog_V1_PutSiteResponse {
    var request = Icbd_Catalog_V1_PutSiteRequest()
    request.site.name = name
    request.site.cidrs = cidrs
    return try await client.unary(CatalogMethods.putSite, request)
}

/// Registers a node over RPC.
@discardableResult
func registerNode(
    _ client: RPCClient, _ name: String, role: Icbd_Catalog_V1_NodeRole, site: String, ttlMilliseconds: Int64 = 0
) async throws -> Icbd_Catalog_V1_Node {
    var request = Icbd_Catalog_V1_RegisterNodeRequest()
    request.name = name
    request.role = role
    request.site = site
    request.rpcAddress = "127.0.0.1:7000"
    request.heartbeatTtlMs = ttlMilliseconds
    return try await client.unary(CatalogMethods.registerNode, request).node
}

func moveTag(_ client: RPCClient, image: String, tag: String, version: Int64, expected: Int64? = nil) async throws -> Icbd_Catalog_V1_MoveTagResponse {
    var request = Icbd_Catalog_V1_MoveTagRequest()
    request.image = image
    request.tag = tag
    request.version = version
    if let expected { request.expectedRevision = expected }
    return try await client.unary(CatalogMethods.moveTag, request)
}

func getImage(_ client: RPCClient, _ name: String) async throws -> Icbd_Catalog_V1_GetImageResponse {
    var request = Icbd_Catalog_V1_GetImageRequest()
    request.name = name
    return try await client.unary(CatalogMethods.getImage, request)
}
