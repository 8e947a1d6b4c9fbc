import Catalog
import CatalogClient
import Crypto
import Foundation
import ICBDTestSupport
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import Replicator
import ReplicatorClient
import SwiftProtobuf
import Testing

/// A catalog and a replicator on a loop-mounted BTRFS, in process, with admin clients of both.
struct PublishDeployment {
    let catalog: RPCClient
    let replicator: RPCClient
    let repository: ImageRepository
    let mint: (Role, String) throws -> TLSIdentity
    let replicatorAddress: HostPort

    /// Runs `body` with a deployment; its temporary directory (the catalog's database) and BTRFS
    /// are removed after it, whether it returns or throws.
    static func with(_ body: (PublishDeployment) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in try await with(in: directory.path, body) }
    }

    private static func with(in directory: String, _ body: (PublishDeployment) async throws -> Void) async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            let logger = quietLogger()
            let authority = try CertificateAuthority.create(commonName: "icbd publish test CA \(UUID())")
            let mint: (Role, String) throws -> TLSIdentity = { role, name in
                try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"])
            }
            let database = directory + "/catalog.db"
            let catalogService = try CatalogService(
                configuration: CatalogConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), databasePath: database, tls: try mint(.catalog, "cat1"), name: "cat1"),
                logger: logger)
            try await withRunningServices([catalogService], logger: logger) {
                let catalogAddress = HostPort(host: "127.0.0.1", port: try await catalogService.localAddress().port ?? 0)
                var configuration = ReplicatorConfiguration(
                    listen: HostPort(host: "127.0.0.1", port: 0), root: root, site: try Name("hq"), catalog: catalogAddress,
                    tls: try mint(.replicator, "repo-hq"), name: "repo-hq")
                configuration.heartbeatInterval = .milliseconds(100)
                let replicator = try ReplicatorService(configuration: configuration, logger: logger)
                try await withRunningServices(replicator.services, logger: logger) {
                    let replicatorAddress = HostPort(host: "127.0.0.1", port: try await replicator.localAddress().port ?? 0)
                    let admin = try mint(.admin, "admin")
                    try await withRPCClient(
                        RPCClientConfiguration(target: catalogAddress, expectedRole: .catalog, tls: admin), logger: logger
                    ) { catalog in
                        _ = try await catalog.unary(CatalogMethods.putSite, .with { $0.site.name = "hq" })
                        // Placements are reported by registered nodes only: wait for the registration.
                        while try await catalog.unary(CatalogMethods.listNodes, .init()).nodes.isEmpty {
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        try await withRPCClient(
                            RPCClientConfiguration(target: replicatorAddress, expectedRole: .replicator, tls: admin), logger: logger
                        ) { replicatorClient in
                            try await body(
                                PublishDeployment(
                                    catalog: catalog, replicator: replicatorClient, repository: replicator.repository, mint: mint,
                                    replicatorAddress: replicatorAddress))
                        }
                    }
                }
            }
        }
    }
}

/// Streams `files` to Publish in 1 MiB pieces, payloads uncopied.
func publish(_ client: RPCClient, image: String, files: [(String, [UInt8])]) async throws -> Icbd_Replicator_V1_PublishResponse {
    try await client.clientStreaming(ReplicatorMethods.publish) { writer in
        try await writer.write(
            .with {
                $0.start.image = image
                $0.start.files = files.map { file in .with { $0.path = file.0; $0.size = Int64(file.1.count) } }
            })
        for (index, file) in files.enumerated() {
            for start in stride(from: 0, to: file.1.count, by: 1 << 20) {
                let piece = ByteBuffer(bytes: file.1[start..<min(start + (1 << 20), file.1.count)])
                try await writer.write(.with { $0.file = UInt32(index); $0.offset = Int64(start) }, payload: piece)
            }
        }
    }
}

/// The manifest digest computed independently from the bytes.
func expectedDigest(_ bytes: [UInt8]) -> [UInt8] {
    let chunk = 1 << 20
    let entries = stride(from: 0, to: bytes.count, by: chunk).flatMap { start -> [UInt8] in
        let piece = bytes[start..<min(start + chunk, bytes.count)]
        return piece.allSatisfy { $0 == 0 } ? ChunkManifest.zeroEntry : Array(SHA256.hash(data: Array(piece)))
    }
    return ChunkManifest.digest(fileSize: Int64(bytes.count), chunkSize: Int64(chunk), entries: entries)
}

@Suite("Publishing versions into a real BTRFS repository and a real catalog", .requiresLoopBtrfs)
struct PublishTests {
    /// 8 MiB: data, a zero MiB, data.
    func disk(seed: UInt8) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 8 << 20)
        for mib in [0, 1, 2, 4, 5, 6, 7] {
            let block = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &+ mib &* 13) | 1 }
            for offset in stride(from: mib << 20, to: (mib + 1) << 20, by: 4096) {
                bytes.replaceSubrange(offset..<offset + 4096, with: block)
            }
        }
        bytes[5 << 20] = seed  // one byte that differs between versions
        return bytes
    }

    @Test func publishesVersionsThatShareWhatDidNotChange() async throws {
        try await PublishDeployment.with { deployment in
            let kernel = Array("vmlinuz bytes".utf8)
            let v1 = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 1)), ("boot/vmlinuz", kernel)])
            #expect(v1.version == 1 && v1.parent == 0)
            #expect(v1.files.map(\.path) == ["disk.raw", "boot/vmlinuz"])
            #expect(v1.files[0].manifestSha256 == Data(expectedDigest(disk(seed: 1))))
            #expect(v1.files[0].zeroChunks == 1)
            #expect(v1.files[1].manifestSha256 == Data(expectedDigest(kernel)))

            let v2 = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 2)), ("boot/vmlinuz", kernel)])
            #expect(v2.version == 2 && v2.parent == 1)
            // Only the block holding the changed byte was written; the rest shares v1's extents.
            #expect(v2.files[0].writtenBytes == 4096)
            #expect(v2.files[1].writtenBytes == 0)

            let image = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = "win11" })
            #expect(image.versions.map(\.number) == [1, 2])
            #expect(image.versions.allSatisfy { $0.state == .ready })
            #expect(image.versions[1].btrfsUuid == v2.btrfsUuid)
            #expect(image.tags.first { $0.name == "latest" }?.version == 2)
            let stored = try Data(contentsOf: URL(fileURLWithPath: deployment.repository.versionPath(of: try Name("win11"), 2) + "/disk.raw"))
            #expect(stored == Data(disk(seed: 2)))
            #expect(try Subvolume.isReadOnly(at: deployment.repository.versionPath(of: try Name("win11"), 2)))
        }
    }

    @Test func badPublishesAreRefusedAndLeaveNothingBehind() async throws {
        try await PublishDeployment.with { deployment in
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 1))])
            for (image, path) in [("../etc", "disk.raw"), ("win11", "../disk.raw"), ("win11", "/etc/passwd"), ("Win11", "disk.raw")] {
                await #expect(throws: RPCError.self, "\(image) \(path)") {
                    _ = try await publish(deployment.replicator, image: image, files: [(path, [1, 2, 3])])
                }
            }
            // Fewer bytes than announced: refused after the data, and no version is left.
            let error = await #expect(throws: RPCError.self) {
                _ = try await deployment.replicator.clientStreaming(ReplicatorMethods.publish) { writer in
                    try await writer.write(.with { $0.start.image = "win11"; $0.start.files = [.with { $0.path = "disk.raw"; $0.size = 10 }] })
                    try await writer.write(.with { $0.file = 0; $0.offset = 0 }, payload: ByteBuffer(bytes: [1, 2, 3]))
                }
            }
            #expect(error?.code == .invalidArgument)
            #expect(try deployment.repository.versions()[try Name("win11")]?.keys.sorted() == [1])
            #expect(!FileManager.default.fileExists(atPath: deployment.repository.workPath(of: try Name("win11"))))
            let image = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = "win11" })
            #expect(image.versions.map(\.number) == [1])
            // The first publish of a new image fails: the catalog does not get the image either.
            await #expect(throws: RPCError.self) {
                _ = try await deployment.replicator.clientStreaming(ReplicatorMethods.publish) { writer in
                    try await writer.write(.with { $0.start.image = "fresh"; $0.start.files = [.with { $0.path = "disk.raw"; $0.size = 10 }] })
                }
            }
            let fresh = await #expect(throws: RPCError.self) {
                _ = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = "fresh" })
            }
            #expect(fresh?.code == .notFound)
        }
    }

    @Test func onlyOperatorsPublish() async throws {
        try await PublishDeployment.with { deployment in
            let cache = RPCClientConfiguration(
                target: deployment.replicatorAddress, expectedRole: .replicator, tls: try deployment.mint(.cache, "cache-1"))
            let logger = quietLogger()
            let error = await #expect(throws: RPCError.self) {
                _ = try await withRPCClient(cache, logger: logger) { client in
                    try await publish(client, image: "win11", files: [("disk.raw", [1])])
                }
            }
            #expect(error?.code == .permissionDenied)
        }
    }

    @Test func readChunksVerifiesEveryChunkAndNeverServesACorruptOne() async throws {
        try await PublishDeployment.with { deployment in
            let bytes = disk(seed: 1)
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", bytes)])
            let request = Icbd_Replicator_V1_ReadChunksRequest.with {
                $0.image = "win11"
                $0.version = 1
                $0.path = "disk.raw"
                $0.chunks = Array(0..<8)
            }
            let chunks = try await deployment.replicator.serverStreaming(ReplicatorMethods.readChunks, request) { responses in
                var chunks: [UInt32: [UInt8]] = [:]
                for try await item in responses.withPayloads { chunks[item.message.index] = Array(item.payload.readableBytesView) }
                return chunks
            }
            // Chunk 3 is all zeros: not sent. The others are the published bytes.
            #expect(chunks.keys.sorted() == [0, 1, 2, 4, 5, 6, 7])
            for (index, data) in chunks { #expect(data == Array(bytes[Int(index) << 20..<(Int(index) + 1) << 20])) }

            // Flip one byte of chunk 5 on disk, as a failing disk would.
            let snapshot = deployment.repository.versionPath(of: try Name("win11"), 1)
            try Subvolume.setReadOnly(false, at: snapshot)
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: snapshot + "/disk.raw"))
            try handle.seek(toOffset: UInt64(5 << 20) + 77)
            try handle.write(contentsOf: [bytes[(5 << 20) + 77] ^ 0x01])
            try handle.close()
            try Subvolume.setReadOnly(true, at: snapshot)

            let error = await #expect(throws: RPCError.self) {
                try await deployment.replicator.serverStreaming(ReplicatorMethods.readChunks, request) { responses in
                    for try await item in responses.withPayloads {
                        #expect(item.message.index != 5, "a corrupt chunk was served")
                    }
                }
            }
            #expect(error?.code == .dataLoss)
            #expect(error?.message.contains("chunk 5") == true)
        }
    }

    @Test func readChunksByHashFindsChunksInTheNewestVersionHoldingThem() async throws {
        try await PublishDeployment.with { deployment in
            let v1 = disk(seed: 1)
            let v2 = disk(seed: 2)
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", v1), ("vmlinuz", Array("kernel".utf8))])
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", v2)])
            func hash(_ bytes: [UInt8], _ index: Int) -> Data { Data(SHA256.hash(data: Array(bytes[index << 20..<(index + 1) << 20]))) }
            func read(_ request: Icbd_Replicator_V1_ReadChunksRequest) async throws -> [(Icbd_Replicator_V1_Chunk, [UInt8])] {
                try await deployment.replicator.serverStreaming(ReplicatorMethods.readChunks, request) { responses in
                    var chunks: [(Icbd_Replicator_V1_Chunk, [UInt8])] = []
                    for try await item in responses.withPayloads { chunks.append((item.message, Array(item.payload.readableBytesView))) }
                    return chunks
                }
            }
            // v1's chunk 5 exists only in v1, v2's only in v2; chunk 0 is in both (and asked twice).
            let asked = [hash(v1, 5), hash(v2, 5), hash(v2, 0), hash(v2, 0), Data(SHA256.hash(data: Array("kernel".utf8)))]
            let chunks = try await read(.with { $0.image = "win11"; $0.hashes = asked })
            #expect(chunks.map(\.0.sha256) == [asked[0], asked[1], asked[2], asked[4]])
            #expect(chunks.map(\.0.path) == ["disk.raw", "disk.raw", "disk.raw", "vmlinuz"])
            #expect(chunks.map(\.0.index) == [5, 5, 0, 0])
            #expect(chunks[0].1 == Array(v1[5 << 20..<6 << 20]))
            #expect(chunks[1].1 == Array(v2[5 << 20..<6 << 20]))
            #expect(chunks[3].1 == Array("kernel".utf8))

            // Limited to v1, v2's chunk is not there.
            let missing = await #expect(throws: RPCError.self) {
                _ = try await read(.with { $0.image = "win11"; $0.version = 1; $0.hashes = [hash(v2, 5)] })
            }
            #expect(missing?.code == .notFound)
            #expect(missing?.message.contains(hash(v2, 5).map { String(format: "%02x", $0) }.joined()) == true)
            for bad in [
                Icbd_Replicator_V1_ReadChunksRequest.with { $0.image = "win11"; $0.hashes = [Data([1, 2, 3])] },
                .with { $0.image = "win11"; $0.path = "disk.raw"; $0.chunks = [0]; $0.hashes = [hash(v1, 0)] },
                .with { $0.image = "win11"; $0.hashes = Array(repeating: hash(v1, 0), count: 1025) },
            ] {
                let error = await #expect(throws: RPCError.self) { _ = try await read(bad) }
                #expect(error?.code == .invalidArgument)
            }
        }
    }

    @Test func aLocalPublishReflinksFromTheRepositoryFilesystemAndCopiesFromElsewhere() async throws {
        try await PublishDeployment.with { deployment in
            func publishLocal(_ directory: String, _ files: [(String, Int)]) async throws -> Icbd_Replicator_V1_PublishResponse {
                try await deployment.replicator.clientStreaming(ReplicatorMethods.publish) { writer in
                    try await writer.write(
                        .with {
                            $0.start.image = "win11"
                            $0.start.localDirectory = directory
                            $0.start.files = files.map { file in .with { $0.path = file.0; $0.size = Int64(file.1) } }
                        })
                }
            }
            let kernel = Array("vmlinuz".utf8)
            // On the repository's own BTRFS: reflinked, nothing copied.
            let staging = deployment.repository.root + "/staging"
            try FileManager.default.createDirectory(atPath: staging + "/boot", withIntermediateDirectories: true)
            try Data(disk(seed: 1)).write(to: URL(fileURLWithPath: staging + "/disk.raw"))
            try Data(kernel).write(to: URL(fileURLWithPath: staging + "/boot/vmlinuz"))
            let v1 = try await publishLocal(staging, [("disk.raw", 8 << 20), ("boot/vmlinuz", kernel.count)])
            #expect(v1.files.map(\.reflinked) == [true, true])
            #expect(v1.files[0].manifestSha256 == Data(expectedDigest(disk(seed: 1))))
            let v1Path = deployment.repository.versionPath(of: try Name("win11"), 1)
            #expect(try Data(contentsOf: URL(fileURLWithPath: v1Path + "/disk.raw")) == Data(disk(seed: 1)))

            // Elsewhere (another filesystem): copied over v1's blocks, only the changed one written.
            let elsewhere = FileManager.default.temporaryDirectory.appendingPathComponent("local-publish-\(UUID())").path
            try FileManager.default.createDirectory(atPath: elsewhere, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: elsewhere) }
            try Data(disk(seed: 2)).write(to: URL(fileURLWithPath: elsewhere + "/disk.raw"))
            let v2 = try await publishLocal(elsewhere, [("disk.raw", 8 << 20)])
            #expect(v2.files.map(\.reflinked) == [false])
            #expect(v2.files[0].writtenBytes == 4096)
            #expect(v2.files[0].manifestSha256 == Data(expectedDigest(disk(seed: 2))))

            // Refused: a relative directory, a file reached through a symbolic link, a size that
            // does not match; nothing is left behind.
            try FileManager.default.createSymbolicLink(atPath: elsewhere + "/escape.raw", withDestinationPath: "/etc/passwd")
            for (directory, files, fragment) in [
                ("relative/dir", [("disk.raw", 8 << 20)], "absolute path"),
                (elsewhere, [("escape.raw", 10)], "symbolic link"),
                (elsewhere, [("disk.raw", 5)], "announced with 5 bytes"),
            ] {
                let error = await #expect(throws: RPCError.self) { _ = try await publishLocal(directory, files) }
                #expect(error?.code == .invalidArgument)
                #expect(error?.message.contains(fragment) == true, "\(error?.message ?? "")")
            }
            #expect(try deployment.repository.versions()[try Name("win11")]?.keys.sorted() == [1, 2])
            #expect(!FileManager.default.fileExists(atPath: deployment.repository.workPath(of: try Name("win11"))))
        }
    }

    /// Opening a fifo for reading waits for a writer: it is opened non-blocking and refused.
    @Test(.timeLimit(.minutes(1))) func aFifoInALocalStagingDirectoryIsRefusedWithoutHanging() async throws {
        try await PublishDeployment.with { deployment in
            let staging = deployment.repository.root + "/staging"
            try FileManager.default.createDirectory(atPath: staging, withIntermediateDirectories: true)
            #expect(mkfifo(staging + "/disk.raw", 0o600) == 0)
            let error = await #expect(throws: RPCError.self) {
                _ = try await deployment.replicator.clientStreaming(ReplicatorMethods.publish) { writer in
                    try await writer.write(
                        .with {
                            $0.start.image = "win11"
                            $0.start.localDirectory = staging
                            $0.start.files = [.with { $0.path = "disk.raw"; $0.size = 10 }]
                        })
                }
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("not a regular file") == true, "\(error?.message ?? "")")
            #expect(!FileManager.default.fileExists(atPath: deployment.repository.workPath(of: try Name("win11"))))
        }
    }

    @Test func retentionKeepsWhatPolicyAndTagsSay() async throws {
        try await PublishDeployment.with { deployment in
            _ = try await deployment.catalog.unary(CatalogMethods.createImage, .with { $0.name = "win11" })
            _ = try await deployment.catalog.unary(
                CatalogMethods.putPolicy, .with { $0.policy.image = "win11"; $0.policy.keepVersions = 1 })
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 1))])
            _ = try await deployment.catalog.unary(
                CatalogMethods.moveTag, .with { $0.image = "win11"; $0.tag = "stable"; $0.version = 1 })
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 2))])
            _ = try await publish(deployment.replicator, image: "win11", files: [("disk.raw", disk(seed: 3))])
            // Keep 1: v3 stays as the newest, v1 as the rollback target "stable"; v2 goes.
            #expect(try deployment.repository.versions()[try Name("win11")]?.keys.sorted() == [1, 3])
            let image = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = "win11" })
            #expect(image.placements.first { $0.version == 2 }?.state == .deleted)
            #expect(image.placements.first { $0.version == 3 }?.state == .present)
        }
    }
}
