import Crypto
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import SwiftProtobuf

/// The receiving side of one transfer of one version from one source repository.
///
/// The stream goes, segment by verified segment, both into the spool (for a resume) and into
/// `btrfs receive` running in `<root>/images/<image>/` (received subvolumes cannot be moved,
/// so they are received in place). `btrfs receive` starts only once the stream's first command
/// names the expected subvolume, UUID and parent. At the end the whole stream's SHA-256, the
/// received subvolume's `received_uuid` and every file's manifest must match; anything else
/// removes the subvolume.
struct VersionPull: Sendable {
    /// The version to pull, as the catalog describes it.
    struct Target: Sendable {
        let image: Name
        let version: Int64
        /// The version's identity: its snapshot's UUID on the publishing repository.
        let identity: UUID
        let files: [Icbd_Catalog_V1_File]
    }

    struct Options: Sendable {
        var lz4 = false
        var rateBytesPerSecond: Int64 = 0
        var segmentSize = SegmentCodec.defaultSegmentSize
        var callTimeout: Duration? = nil
    }

    /// How far a transfer got.
    struct Progress: Sendable {
        /// Stream bytes held (spooled and fed to `btrfs receive`).
        var streamBytes: Int64 = 0
        /// Of those, the bytes that came over the network in this attempt, before decompression...
        var rawBytesThisAttempt: Int64 = 0
        /// ...and as they travelled.
        var wireBytesThisAttempt: Int64 = 0
        /// Where this attempt started in the stream (0, or the spool's length on a resume).
        var resumedAt: Int64 = 0
        /// The parent the stream is sent against (0: full).
        var parent: Int64 = 0
    }

    let repository: ImageRepository
    let tls: TLSIdentity
    let metrics: ReplicationMetrics
    let logger: Logger

    var spool: ReceiveSpool { ReceiveSpool(directory: ReceiveSpool.directory(root: repository.root), image: target.image, version: target.version) }
    let target: Target

    /// Deletes what an earlier, interrupted receive of this version left: a `v<N>` that is
    /// writable or lacks the expected `received_uuid`. Returns whether one was removed.
    @discardableResult
    func removePartial() throws -> Bool {
        let path = repository.versionPath(of: target.image, target.version)
        guard Subvolume.exists(at: path) else { return false }
        try repository.deleteVersion(of: target.image, target.version)
        logger.warning("removed a partly received version", metadata: ["path": "\(path)"])
        return true
    }

    /// Pulls the version from `source`; on success it is on disk, read-only and verified.
    func run(
        from source: HostPort, parents: [Icbd_Replicator_V1_ParentCandidate], options: Options,
        progress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Progress {
        try removePartial()
        var state = Progress()
        var receive: BtrfsCommand?
        var writer: SpoolWriter?
        var hasher = SHA256()
        // The RPC client reports what the body threw as an RPCError; keep the original.
        var bodyFailure: ReplicationError?
        let parentsByNumber = Dictionary(parents.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        do {
            // A resume: the spool's bytes go to a fresh `btrfs receive` first.
            if let held = spool.held(), held.parent == 0 || parentsByNumber[held.parent] != nil {
                let resumed = try spool.resume(at: held.length)
                writer = resumed
                state.resumedAt = held.length
                state.parent = held.parent
                let head = try resumed.read(at: 0, count: Int(min(held.length, Int64(SendStreamHead.maximumLength))))
                guard let parsed = try SendStreamHead.parse(Array(head.readableBytesView)) else {
                    throw ReplicationError(.dataLoss, "the spooled stream is too short to hold its first command")
                }
                receive = try startReceive(checking: parsed, parent: held.parent, parents: parentsByNumber)
                var position: Int64 = 0
                while position < held.length {
                    let piece = try resumed.read(at: position, count: Int(min(Int64(options.segmentSize), held.length - position)))
                    piece.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                    if let receive { try await feed(receive, piece) }
                    position += Int64(piece.readableBytes)
                }
                state.streamBytes = held.length
                logger.info("resuming a transfer", metadata: ["offset": "\(held.length)", "parent": "\(held.parent)"])
            } else {
                spool.discard()
            }

            var request = Icbd_Replicator_V1_SendVersionRequest()
            request.image = target.image.rawValue
            request.version = target.version
            request.parents = parents
            request.offset = state.resumedAt
            request.resumeParent = state.resumedAt > 0 ? state.parent : 0
            request.lz4 = options.lz4
            request.rateBytesPerSecond = options.rateBytesPerSecond
            request.segmentSize = UInt32(options.segmentSize)
            var clientConfiguration = RPCClientConfiguration(target: source, expectedRole: .replicator, tls: tls)
            clientConfiguration.connectTimeout = .seconds(5)
            let prefix = hasher
            let resumedAt = state.resumedAt
            let verified: Progress = try await withRPCClient(clientConfiguration, logger: logger) { client in
                try await client.serverStreaming(
                    ReplicationMethods.sendVersion, request, options: RPCCallOptions(timeout: options.callTimeout)
                ) { segments in
                  do {
                    var state = state
                    var hasher = prefix
                    var headBytes: [UInt8] = []
                    var trailer: Icbd_Replicator_V1_SendVersionTrailer?
                    var messages = segments.withPayloads.makeAsyncIterator()
                    guard let first = try await messages.next(), first.message.hasHeader else {
                        throw ReplicationError(.dataLoss, "the sender's stream does not begin with its header")
                    }
                    let header = first.message.header
                    guard UUID(uuidString: header.btrfsUuid) == target.identity else {
                        throw ReplicationError(
                            .dataLoss,
                            "the sender offers snapshot \(header.btrfsUuid), not \(target.identity.uuidString.lowercased()) of version \(target.version) of image '\(target.image)'")
                    }
                    guard header.offset == resumedAt else {
                        throw ReplicationError(.dataLoss, "the sender resumes at \(header.offset), not at \(resumedAt)")
                    }
                    if resumedAt > 0 {
                        guard header.parent == state.parent, Array(header.prefixSha256) == Array(prefix.finalize()) else {
                            throw ReplicationError(.dataLoss, "the resumed stream differs from the spooled one: starting over")
                        }
                    } else {
                        guard header.parent == 0 || parentsByNumber[header.parent] != nil else {
                            throw ReplicationError(.dataLoss, "the sender chose parent \(header.parent), which this repository did not offer")
                        }
                        state.parent = header.parent
                        writer = try spool.begin(parent: header.parent)
                    }
                    while let segment = try await messages.next() {
                        if segment.message.hasTrailer {
                            trailer = segment.message.trailer
                            break
                        }
                        guard segment.message.offset == state.streamBytes else {
                            throw ReplicationError(.dataLoss, "a segment at \(segment.message.offset) where \(state.streamBytes) was due")
                        }
                        let raw = try SegmentCodec.decode(
                            segment.payload, lz4: segment.message.lz4, rawLength: Int(segment.message.rawLength),
                            sha256: Array(segment.message.sha256))
                        if receive == nil {
                            headBytes += raw.readableBytesView.prefix(SendStreamHead.maximumLength - headBytes.count)
                            if let parsed = try SendStreamHead.parse(headBytes) {
                                receive = try startReceive(checking: parsed, parent: state.parent, parents: parentsByNumber)
                                // Bytes spooled before the head was complete (an unusually small first segment).
                                if let writer, writer.length > 0, let receive { try await feed(receive, try writer.read(at: 0, count: Int(writer.length))) }
                            } else if headBytes.count >= SendStreamHead.maximumLength {
                                throw ReplicationError(.dataLoss, "the stream's first command does not end within \(SendStreamHead.maximumLength) bytes")
                            }
                        }
                        try writer?.append(raw)
                        if let receive { try await feed(receive, raw) }
                        raw.withUnsafeReadableBytes { hasher.update(bufferPointer: $0) }
                        state.streamBytes += Int64(raw.readableBytes)
                        state.rawBytesThisAttempt += Int64(raw.readableBytes)
                        state.wireBytesThisAttempt += Int64(segment.payload.readableBytes)
                        metrics.received(raw: raw.readableBytes, wire: segment.payload.readableBytes)
                        progress(state)
                    }
                    guard let trailer else { throw ReplicationError(.unavailable, "the stream ended without its trailer") }
                    guard trailer.length == state.streamBytes, Array(trailer.sha256) == Array(hasher.finalize()) else {
                        throw ReplicationError(.dataLoss, "the stream fails its SHA-256 (\(state.streamBytes) bytes received, \(trailer.length) sent)")
                    }
                    return state
                  } catch let error as ReplicationError {
                    bodyFailure = error
                    throw error
                  }
                }
            }
            state = verified
            logger.debug("stream complete", metadata: ["bytes": "\(state.streamBytes)"])
            guard let receiving = receive else { throw ReplicationError(.dataLoss, "the stream was empty") }
            receiving.closeInput()
            let exit = await receiving.wait()
            receive = nil
            guard exit.succeeded else { throw Self.receiveFailure(exit) }
            try await verify()
            spool.discard()
            return state
        } catch {
            logger.debug("transfer attempt failed", metadata: ["error": "\(error)", "receiving": "\(receive != nil)"])
            if let receive {
                receive.terminate()
                _ = await receive.wait()
            }
            writer = nil
            let failure = bodyFailure ?? Self.classify(error)
            do {
                try removePartial()
            } catch {
                logger.error("cannot remove a partly received version", metadata: ["error": "\(error)"])
            }
            if !failure.keepsSpool { spool.discard() }
            throw failure
        }
    }

    /// Writes stream bytes to `btrfs receive`; when it stopped reading, its own error says why.
    private func feed(_ receive: BtrfsCommand, _ bytes: ByteBuffer) async throws {
        do {
            try await receive.write(bytes)
        } catch {
            receive.terminate()
            throw Self.receiveFailure(await receive.wait())
        }
    }

    static func receiveFailure(_ exit: BtrfsCommand.Exit) -> ReplicationError {
        if exit.errors.contains("No space left") {
            return ReplicationError(.resourceExhausted, "the repository's filesystem is full: btrfs receive: \(exit.errors)")
        }
        return ReplicationError(.internal, "btrfs receive failed (exit \(exit.status)): \(exit.errors)")
    }

    /// Starts `btrfs receive` once the stream's head shows the expected subvolume.
    private func startReceive(
        checking head: SendStreamHead, parent: Int64, parents: [Int64: Icbd_Replicator_V1_ParentCandidate]
    ) throws(ReplicationError) -> BtrfsCommand {
        guard head.name == "v\(target.version)", head.uuid == target.identity else {
            throw ReplicationError(
                .dataLoss,
                "the stream creates '\(head.name)' (\(head.uuid.uuidString.lowercased())), not v\(target.version) of image '\(target.image)' (\(target.identity.uuidString.lowercased()))")
        }
        if parent > 0 {
            guard let candidate = parents[parent], head.cloneUUID == UUID(uuidString: candidate.btrfsUuid) else {
                throw ReplicationError(.dataLoss, "the incremental stream is not against version \(parent) as this repository holds it")
            }
        } else if head.cloneUUID != nil {
            throw ReplicationError(.dataLoss, "the stream is incremental where a full one was announced")
        }
        let directory = repository.directory(of: target.image)
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            return try BtrfsCommand(["receive", directory], readOutput: false, writeInput: true)
        } catch let error as ReplicationError {
            throw error
        } catch {
            throw ReplicationError(.internal, "cannot start btrfs receive: \(error)")
        }
    }

    /// The received subvolume is read-only, carries the source's UUID as `received_uuid`, and
    /// every file matches its manifest.
    func verify() async throws(ReplicationError) {
        let path = repository.versionPath(of: target.image, target.version)
        let info: Subvolume.Info
        do { info = try Subvolume.info(at: path) } catch {
            throw ReplicationError(.dataLoss, "btrfs receive left no v\(target.version): \(error)")
        }
        guard info.isReadOnly, info.receivedUUID == target.identity else {
            throw ReplicationError(
                .dataLoss,
                "the received v\(target.version) carries received_uuid \(info.receivedUUID?.uuidString.lowercased() ?? "none"), not \(target.identity.uuidString.lowercased())")
        }
        for file in target.files {
            var builder = ManifestBuilder()
            builder.chunkSize = file.chunkSize > 0 ? file.chunkSize : ChunkManifest.defaultChunkSize
            let built: ManifestBuilder.Manifest
            do { built = try await builder.build(path: path + "/" + file.path) } catch {
                throw ReplicationError(.dataLoss, "'\(file.path)' of the received version cannot be read: \(error)")
            }
            guard built.fileSize == file.size, built.digest == Array(file.manifestSha256) else {
                throw ReplicationError(.dataLoss, "'\(file.path)' of the received version does not match its manifest")
            }
        }
    }

    static func classify(_ error: any Error) -> ReplicationError {
        if let error = error as? ReplicationError { return error }
        if let error = error as? RPCError {
            if error.code == .dataLoss || error.code == .failedPrecondition {
                return ReplicationError(error.code, "the sender: \(error.message)")
            }
            if error.code == .notFound { return ReplicationError(.notFound, "the sender: \(error.message)") }
            return ReplicationError(.unavailable, "the transfer broke off: \(error.message)")
        }
        return ReplicationError(.internal, "\(error)")
    }
}
