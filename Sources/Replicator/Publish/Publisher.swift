import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import NIOPosix
import SwiftProtobuf

/// The files of a publish, as announced by its first message, validated.
public struct PublishPlan: Sendable {
    public let image: Name
    public let description: String
    public let files: [(path: VersionFilePath, size: Int64)]
    /// A local publish: the directory on this host the files are read from.
    public let localDirectory: String?

    /// At most 64 files, distinct relative paths, sizes from 0 to 16 TiB.
    public init(_ start: Icbd_Replicator_V1_PublishStart) throws(RPCError) {
        do { image = try Name(start.image) } catch {
            throw RPCError(code: .invalidArgument, message: "image: \(error)")
        }
        description = start.description_p
        if start.localDirectory.isEmpty {
            localDirectory = nil
        } else {
            guard start.localDirectory.hasPrefix("/"), !start.localDirectory.split(separator: "/").contains("..") else {
                throw RPCError(
                    code: .invalidArgument, message: "local_directory must be an absolute path without '..', not '\(start.localDirectory)'")
            }
            localDirectory = start.localDirectory
        }
        guard !start.files.isEmpty, start.files.count <= 64 else {
            throw RPCError(code: .invalidArgument, message: "a version has 1 to 64 files, this publish announces \(start.files.count)")
        }
        var files: [(VersionFilePath, Int64)] = []
        for (index, file) in start.files.enumerated() {
            let path: VersionFilePath
            do { path = try VersionFilePath(file.path) } catch {
                throw RPCError(code: .invalidArgument, message: "files[\(index)]: \(error)")
            }
            guard (0...(Int64(1) << 44)).contains(file.size) else {
                throw RPCError(code: .invalidArgument, message: "files[\(index)] '\(file.path)': size \(file.size) is outside 0...16 TiB")
            }
            guard !files.contains(where: { $0.0 == path }) else {
                throw RPCError(code: .invalidArgument, message: "files[\(index)]: '\(file.path)' is announced twice")
            }
            files.append((path, file.size))
        }
        self.files = files
    }
}

/// How one file of a publish got into `work`.
struct WrittenFile: Sendable {
    /// Bytes that differed from the parent version and were written.
    let writtenBytes: Int64
    /// A local publish's reflink of its source: nothing written, extents shared.
    let reflinked: Bool
}

/// Publishes a new version of an image: the files go into the image's `work` (a writable
/// snapshot of the newest ready version here, so unchanged blocks keep their extents), their
/// manifests are built, `work` becomes the read-only `v<N>`, and the catalog registers it
/// (publishing, manifests, ready). Anything that fails before the catalog accepted the version
/// leaves the repository as it was.
struct Publisher: Sendable {
    let repository: ImageRepository
    let catalog: RPCClient
    /// This replicator's node name, for its placement of the new version.
    let node: String
    let logger: Logger

    /// Publishes `plan` with the file bytes of `data` (the messages after the first one).
    func publish<Messages: AsyncSequence>(_ plan: PublishPlan, data: Messages) async throws -> Icbd_Replicator_V1_PublishResponse
    where Messages.Element == RPCPayloadMessage<Icbd_Replicator_V1_PublishRequest> {
        let known: [Icbd_Catalog_V1_Version]
        do {
            known = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = plan.image.rawValue }).versions
        } catch let error as RPCError where error.code == .notFound {
            known = []  // a new image: created when the version is registered
        }
        let number = (known.map(\.number).max() ?? 0) + 1
        let local = try repository.versions()[plan.image] ?? [:]
        let parent = known.filter { $0.state == .ready && local[$0.number] != nil }.map(\.number).max()

        // Local work first: until the snapshot exists nothing is visible to anyone.
        let work = try repository.prepareWork(of: plan.image, basedOn: parent)
        let manifests: [ManifestBuilder.Manifest]
        let written: [WrittenFile]
        let snapshot: Subvolume.Info
        do {
            try removeFiles(in: work, except: Set(plan.files.map { $0.path.rawValue }))
            if let directory = plan.localDirectory {
                written = try await copy(plan, from: directory, into: work, data: data)
            } else {
                written = try await receive(plan, into: work, data: data)
            }
            var built: [ManifestBuilder.Manifest] = []
            for file in plan.files { built.append(try await ManifestBuilder().build(path: work + "/" + file.path.rawValue)) }
            manifests = built
            snapshot = try await NIOThreadPool.singleton.runIfActive { [repository] in try repository.commitWork(of: plan.image, as: number) }
        } catch {
            try? repository.discardWork(of: plan.image)
            throw error
        }

        do {
            try await register(plan, number: number, parent: parent, snapshot: snapshot, manifests: manifests)
        } catch {
            try? repository.deleteVersion(of: plan.image, number)
            throw error
        }
        await reportPlacement(plan, number: number)
        logger.info("published", metadata: ["image": "\(plan.image)", "version": "\(number)", "parent": "\(parent ?? 0)"])
        return .with { response in
            response.version = number
            response.parent = parent ?? 0
            response.btrfsUuid = snapshot.uuid.uuidString.lowercased()
            response.files = zip(plan.files, zip(manifests, written)).map { file, result in
                .with {
                    $0.path = file.path.rawValue
                    $0.size = file.size
                    $0.manifestSha256 = Data(result.0.digest)
                    $0.zeroChunks = Int64(result.0.zeroChunks)
                    $0.writtenBytes = result.1.writtenBytes
                    $0.reflinked = result.1.reflinked
                }
            }
        }
    }

    /// A local publish: each file read from the directory on this host, off the event loops.
    private func copy<Messages: AsyncSequence>(_ plan: PublishPlan, from directory: String, into work: String, data: Messages)
        async throws -> [WrittenFile]
    where Messages.Element == RPCPayloadMessage<Icbd_Replicator_V1_PublishRequest> {
        var messages = data.makeAsyncIterator()
        guard case .none = try await messages.next() else {
            throw RPCError(code: .invalidArgument, message: "a local publish sends no data: the replicator reads \(directory) itself")
        }
        var written: [WrittenFile] = []
        for file in plan.files {
            written.append(
                try await NIOThreadPool.singleton.runIfActive {
                    try LocalFileCopy.copy(file.path.rawValue, size: file.size, from: directory, into: work)
                })
        }
        return written
    }

    /// Writes each file's bytes, in order, into `work`; returns what was written per file.
    private func receive<Messages: AsyncSequence>(_ plan: PublishPlan, into work: String, data: Messages) async throws -> [WrittenFile]
    where Messages.Element == RPCPayloadMessage<Icbd_Replicator_V1_PublishRequest> {
        var written: [WrittenFile] = []
        var current = 0
        var writer: SparseFileWriter? = try openFile(plan, 0, in: work)
        func closeCurrent() throws {
            guard var open = writer.take() else { return }
            let size = open.size
            guard size == plan.files[current].size else {
                throw RPCError(
                    code: .invalidArgument,
                    message: "'\(plan.files[current].path)' was announced with \(plan.files[current].size) bytes, \(size) arrived")
            }
            written.append(WrittenFile(writtenBytes: open.writtenBytes, reflinked: false))
            _ = try open.finish()
        }
        for try await item in data {
            let message = item.message
            guard !message.hasStart else {
                throw RPCError(code: .invalidArgument, message: "only the first message of a publish may carry `start`")
            }
            while Int(message.file) > current {
                try closeCurrent()
                current += 1
                writer = try openFile(plan, current, in: work)
            }
            guard Int(message.file) == current, var open = writer.take() else {
                throw RPCError(code: .invalidArgument, message: "file \(message.file) arrived after file \(current); send files in order")
            }
            guard message.offset == open.size else {
                throw RPCError(code: .invalidArgument, message: "'\(plan.files[current].path)': data at offset \(message.offset), expected \(open.size)")
            }
            guard open.size + Int64(item.payload.readableBytes) <= plan.files[current].size else {
                throw RPCError(code: .invalidArgument, message: "'\(plan.files[current].path)': more bytes than the \(plan.files[current].size) announced")
            }
            try open.write(item.payload)
            writer = consume open
        }
        try closeCurrent()
        while current + 1 < plan.files.count {
            current += 1
            writer = try openFile(plan, current, in: work)
            try closeCurrent()
        }
        return written
    }

    private func openFile(_ plan: PublishPlan, _ index: Int, in work: String) throws -> SparseFileWriter? {
        guard index < plan.files.count else { return nil }
        let path = work + "/" + plan.files[index].path.rawValue
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        return try SparseFileWriter(overwriting: path)
    }

    /// Removes files the previous version had and this one does not.
    private func removeFiles(in work: String, except keep: Set<String>) throws {
        guard let walker = FileManager.default.enumerator(atPath: work) else { return }
        var doomed: [String] = []
        while let relative = walker.nextObject() as? String {
            var isDirectory: ObjCBool = false
            FileManager.default.fileExists(atPath: work + "/" + relative, isDirectory: &isDirectory)
            if !isDirectory.boolValue && !keep.contains(relative) { doomed.append(relative) }
        }
        for relative in doomed { try FileManager.default.removeItem(atPath: work + "/" + relative) }
    }

    /// Registers the version in the catalog: publishing, every manifest, then ready; abandoned
    /// again when a step after its creation fails.
    private func register(
        _ plan: PublishPlan, number: Int64, parent: Int64?, snapshot: Subvolume.Info, manifests: [ManifestBuilder.Manifest]
    ) async throws {
        var create = Icbd_Catalog_V1_CreateVersionRequest()
        create.image = plan.image.rawValue
        create.number = number
        create.parent = parent ?? 0
        create.btrfsUuid = snapshot.uuid.uuidString.lowercased()
        create.files = zip(plan.files, manifests).map { file, manifest in
            .with {
                $0.path = file.path.rawValue
                $0.size = file.size
                $0.chunkSize = manifest.chunkSize
                $0.manifestSha256 = Data(manifest.digest)
            }
        }
        let image = try await catalog.unary(
            CatalogMethods.createImage,
            .with { $0.name = plan.image.rawValue; $0.description_p = plan.description; $0.ifMissing = true })
        _ = try await catalog.unary(CatalogMethods.createVersion, create)
        do {
            try await completeRegistration(plan, number: number, manifests: manifests)
        } catch {
            await abandon(plan, number: number, dropImage: image.created, after: error)
            throw error
        }
    }

    /// Sends every manifest and marks the version ready.
    private func completeRegistration(_ plan: PublishPlan, number: Int64, manifests: [ManifestBuilder.Manifest]) async throws {
        for (file, manifest) in zip(plan.files, manifests) {
            _ = try await catalog.clientStreaming(CatalogMethods.putManifest) { writer in
                let piece = 1 << 20  // entries per message: 32 KiB of them, well under the 4 MiB limit
                var start = 0
                repeat {
                    let end = min(start + piece, manifest.entries.count)
                    try await writer.write(
                        .with {
                            if start == 0 {
                                $0.image = plan.image.rawValue
                                $0.version = number
                                $0.path = file.path.rawValue
                            }
                            $0.entries = Data(manifest.entries[start..<end])
                        })
                    start = end
                } while start < manifest.entries.count
            }
        }
        _ = try await catalog.unary(CatalogMethods.completeVersion, .with { $0.image = plan.image.rawValue; $0.number = number })
    }

    /// Takes back a version the catalog accepted but that never became ready, and the image
    /// when this publish created it, so that a failed publish leaves the catalog as it was.
    private func abandon(_ plan: PublishPlan, number: Int64, dropImage: Bool, after failure: any Error) async {
        do {
            _ = try await catalog.unary(
                CatalogMethods.abandonVersion,
                .with {
                    $0.image = plan.image.rawValue
                    $0.number = number
                    $0.dropImageIfUnused = dropImage
                })
        } catch {
            logger.warning(
                "a failed publish could not be taken back from the catalog; the version stays 'publishing' there",
                metadata: ["image": "\(plan.image)", "version": "\(number)", "failure": "\(failure)", "error": "\(error)"])
        }
    }

    /// Tells the catalog this repository holds the version. Only a report: the version is
    /// published whether or not it arrives (an unregistered node's report is refused).
    private func reportPlacement(_ plan: PublishPlan, number: Int64) async {
        do {
            _ = try await catalog.unary(
                CatalogMethods.setPlacement,
                .with {
                    $0.image = plan.image.rawValue
                    $0.version = number
                    $0.node = node
                    $0.state = .present
                })
        } catch {
            logger.warning("placement not reported", metadata: ["image": "\(plan.image)", "version": "\(number)", "error": "\(error)"])
        }
    }
}
