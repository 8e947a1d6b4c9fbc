import Crypto
import Foundation
import ICBDCore
import ReplicatorClient
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
/// names the expected subvolume, UUID and parent. At the end the whole stream's digest (see
/// ``StreamDigest``), the received subvolume's `received_uuid` and every file's manifest must
/// match (``ReceivedVersionCheck``); anything else removes the subvolume.
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
        /// The source repository's node name, as the catalog lists its placement: its
        /// certificate must carry it (another replicator at that address is refused).
        var sourceName: String? = nil
        /// No message from the source for this long ends the attempt (UNAVAILABLE; the spool
        /// keeps what arrived); nil: no limit.
        var inactivityTimeout: Duration? = nil
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
        /// The check after the receive: chunks read from disk and hashed, and chunks whose
        /// entries came from the parent's manifest (untouched by an incremental stream).
        var chunksRead = 0
        var chunksReused = 0
        /// Chunks of a full stream hashed from its writes as they passed (nothing read back).
        var chunksFromStream = 0
    }

    let repository: ImageRepository
    let tls: TLSIdentity
    let metrics: ReplicationMetrics
    let logger: Logger

    var spool: ReceiveSpool { ReceiveSpool(directory: ReceiveSpool.directory(root: repository.root), image: target.image, version: target.version) }
    let target: Target
    /// The catalog's manifests, for a check after an incremental stream that reads only what the
    /// stream touched; nil: every chunk is read (see ``ReceivedVersionCheck``).
    var parentManifests: ManifestCache? = nil

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

    /// Pulls the version from `source`; on success it is on disk, read-only and verified, and
    /// its spool is left for ``discardSpool()``.
    ///
    /// Segments are pipelined: while one is spooled and written to `btrfs receive`, the next
    /// is taken off the connection, decompressed and hashed (one segment in flight, so memory
    /// stays at a few segments whatever the stream's length).
    ///
    /// A cut (the connection, the task) keeps the spool and the partly received subvolume: the
    /// input of `btrfs receive` is closed, so it applies every whole command it was given, and
    /// the next attempt resumes from what it rebuilds (see ``ReceiveSpool``).
    func run(
        from source: HostPort, parents: [Icbd_Replicator_V1_ParentCandidate], options: Options,
        progress: @escaping @Sendable (Progress) -> Void
    ) async throws -> Progress {
        var state = Progress()
        var receive: BtrfsCommand?
        var writer: SpoolWriter?
        var scan = freshScan()
        // The spooled prefix of a resume, hashed both ways until the sender says which it uses.
        var prefixList = StreamDigest(list: true)
        var prefixBytes = StreamDigest(list: false)
        // The RPC client reports what the body threw as an RPCError; keep the original.
        var bodyFailure: ReplicationError?
        let parentsByNumber = Dictionary(parents.map { ($0.version, $0) }, uniquingKeysWith: { a, _ in a })
        // The stream, validated command by command; `btrfs receive` gets only whole validated
        // commands, and starts once the first one shows what it will make.
        var validated = freshValidation()
        do {
            if let parent = spool.parent(), parent == 0 || parentsByNumber[parent] != nil,
                spool.keepPartial(from: repository.versionPath(of: target.image, target.version)) || Subvolume.exists(at: spool.partialPath),
                let rebuild = SpoolRebuild(spool: spool)
            {
                // A resume: the spooled segments, rebuilt, go to a fresh `btrfs receive` first.
                try removePartial()
                state.parent = parent
                while let segment = rebuild.next() {
                    segment.bytes.withUnsafeReadableBytes { bytes in
                        prefixList.add(bytes, digest: segment.sha256)
                        prefixBytes.add(bytes, digest: segment.sha256)
                        scan.consume(bytes)
                    }
                    try validated.add(segment.bytes)
                    if receive == nil, let parsed = validated.head {
                        receive = try await startReceive(checking: parsed, parent: parent, parents: parentsByNumber)
                    }
                    if let receive { try await feed(receive, validated.take()) }
                }
                if let reason = rebuild.stopped { logger.info("the spool is resumed only in part", metadata: ["reason": "\(reason)"]) }
                spool.removePartialCopy()
                if receive != nil {
                    writer = try spool.resume(fileLength: rebuild.validEnd, streamLength: rebuild.length)
                    state.resumedAt = rebuild.length
                    state.streamBytes = rebuild.length
                    logger.info("resuming a transfer", metadata: ["offset": "\(rebuild.length)", "parent": "\(parent)"])
                } else {
                    logger.info("the spool did not rebuild as far as the stream's first command: starting over")
                    spool.discard()
                    (state, scan, validated) = (Progress(), freshScan(), freshValidation())
                    (prefixList, prefixBytes) = (StreamDigest(list: true), StreamDigest(list: false))
                }
            } else {
                try removePartial()
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
            request.digestList = true
            var clientConfiguration = RPCClientConfiguration(target: source, expectedRole: .replicator, tls: tls)
            clientConfiguration.connectTimeout = .seconds(5)
            clientConfiguration.expectedName = options.sourceName
            let resumedAt = state.resumedAt
            let activity = TransferActivity()
            let verified: Progress = try await withWatchedClient(
                clientConfiguration, activity: activity, timeout: options.inactivityTimeout, logger: logger
            ) { client in
                try await client.serverStreaming(
                    ReplicationMethods.sendVersion, request, options: RPCCallOptions(timeout: options.callTimeout)
                ) { segments in
                  do {
                    var state = state
                    var trailer: Icbd_Replicator_V1_SendVersionTrailer?
                    var messages = segments.withPayloads.makeAsyncIterator()
                    guard let first = try await messages.next(), first.message.hasHeader else {
                        throw ReplicationError(.dataLoss, "the sender's stream does not begin with its header")
                    }
                    activity.touch()
                    let header = first.message.header
                    guard UUID(uuidString: header.btrfsUuid) == target.identity else {
                        throw ReplicationError(
                            .dataLoss,
                            "the sender offers snapshot \(header.btrfsUuid), not \(target.identity.uuidString.lowercased()) of version \(target.version) of image '\(target.image)'")
                    }
                    guard header.offset == resumedAt else {
                        throw ReplicationError(.dataLoss, "the sender resumes at \(header.offset), not at \(resumedAt)")
                    }
                    var digest = header.digestList ? prefixList : prefixBytes
                    if resumedAt > 0 {
                        guard header.parent == state.parent, Array(header.prefixSha256) == digest.finalize() else {
                            throw ReplicationError(.dataLoss, "the resumed stream differs from the spooled one: starting over")
                        }
                    } else {
                        guard header.parent == 0 || parentsByNumber[header.parent] != nil else {
                            throw ReplicationError(.dataLoss, "the sender chose parent \(header.parent), which this repository did not offer")
                        }
                        state.parent = header.parent
                        writer = try spool.begin(parent: header.parent)
                    }

                    /// The next segment, verified and accounted, with its spool record; nil once the
                    /// trailer (or the end) came.
                    /// `ready`: the bytes that may go to `btrfs receive` (validated, whole commands).
                    func take() async throws -> (raw: ByteBuffer, record: SpoolRecord, ready: [ByteBuffer])? {
                        guard let segment = try await messages.next() else { return nil }
                        activity.touch()
                        if segment.message.hasTrailer {
                            trailer = segment.message.trailer
                            return nil
                        }
                        guard segment.message.offset == state.streamBytes else {
                            throw ReplicationError(.dataLoss, "a segment at \(segment.message.offset) where \(state.streamBytes) was due")
                        }
                        let sha256 = Array(segment.message.sha256)
                        let raw = try SegmentCodec.decode(
                            segment.payload, lz4: segment.message.lz4, rawLength: Int(segment.message.rawLength), sha256: sha256)
                        try validated.add(raw)
                        let record = raw.withUnsafeReadableBytes { bytes in
                            digest.add(bytes, digest: sha256)
                            scan.consume(bytes)
                            return SpoolRecord(raw: bytes, sha256: sha256, landmarks: scan.landmarks ?? .init())
                        }
                        state.streamBytes += Int64(raw.readableBytes)
                        state.rawBytesThisAttempt += Int64(raw.readableBytes)
                        state.wireBytesThisAttempt += Int64(segment.payload.readableBytes)
                        metrics.received(raw: raw.readableBytes, wire: segment.payload.readableBytes)
                        progress(state)
                        return (raw, record, validated.take())
                    }

                    // Until `btrfs receive` runs (normally the first segment): one at a time.
                    var early: [ByteBuffer] = []
                    while receive == nil, let (_, record, ready) = try await take() {
                        try writer?.append(record)
                        early += ready
                        if let parsed = validated.head {
                            let started = try await startReceive(checking: parsed, parent: state.parent, parents: parentsByNumber)
                            receive = started
                            // Everything validated so far (the head may take more than one segment).
                            try await feed(started, early)
                        }
                    }
                    // Then pipelined: segment n is spooled and fed while n + 1 is taken.
                    if let receiving = receive, trailer == nil {
                        let spooling = writer
                        var pending = try await take()
                        while let ready = pending {
                            async let sunk: Void = sink(ready.ready, record: ready.record, spool: spooling, receive: receiving)
                            let next = try await take()
                            try await sunk
                            pending = next
                        }
                    }
                    guard let trailer else { throw ReplicationError(.unavailable, "the stream ended without its trailer") }
                    guard trailer.length == state.streamBytes, Array(trailer.sha256) == digest.finalize() else {
                        throw ReplicationError(.dataLoss, "the stream fails its SHA-256 (\(state.streamBytes) bytes received, \(trailer.length) sent)")
                    }
                    guard validated.isComplete else {
                        throw ReplicationError(.dataLoss, "the send stream ends at byte \(state.streamBytes) without its end command")
                    }
                    return state
                  } catch let error as ReplicationError {
                    bodyFailure = error
                    throw error
                  }
                }
            }
            state = verified
            let streamed = ContinuousClock.now
            guard let receiving = receive else { throw ReplicationError(.dataLoss, "the stream was empty") }
            receiving.closeInput()
            let exit = await receiving.wait()
            receive = nil
            guard exit.succeeded else { throw Self.receiveFailure(exit) }
            let received = ContinuousClock.now
            let check = ReceivedVersionCheck(
                repository: repository, target: target,
                parent: incrementalParent(state.parent, scan: scan),
                written: state.parent == 0 && scan.isAtCommandBoundary ? scan.writes : nil,
                logger: logger)
            let outcome = try await check.run()
            state.chunksRead = outcome.chunksRead
            state.chunksReused = outcome.chunksReused
            state.chunksFromStream = outcome.chunksFromStream
            metrics.verified(chunksRead: outcome.chunksRead, reused: outcome.chunksReused)
            logger.debug(
                "stream received and verified",
                metadata: [
                    "bytes": "\(state.streamBytes)", "receiveTail": "\(received - streamed)", "verify": "\(ContinuousClock.now - received)",
                    "chunksRead": "\(outcome.chunksRead)", "chunksReused": "\(outcome.chunksReused)",
                    "chunksFromStream": "\(outcome.chunksFromStream)", "spoolBytes": "\(writer?.fileLength ?? 0)",
                ])
            // The spool stays until the caller has reported the version present (discardSpool).
            return state
        } catch {
            logger.debug("transfer attempt failed", metadata: ["error": "\(error)", "receiving": "\(receive != nil)"])
            let failure = bodyFailure ?? Self.classify(error)
            // A cut mid-stream keeps what `btrfs receive` wrote, for the spool's references: its
            // input is closed, so it applies every whole command it was given, then stops.
            let resumable = failure.keepsSpool && receive != nil && (writer?.length ?? 0) > 0
            if let receive {
                if resumable { receive.closeInput() } else { receive.terminate() }
                _ = await receive.wait()
            }
            writer = nil
            if !resumable {
                do {
                    try removePartial()
                } catch {
                    logger.error("cannot remove a partly received version", metadata: ["error": "\(error)"])
                }
                spool.discard()
            }
            throw failure
        }
    }

    /// A scan of the stream that marks what the spool needs and, for a full stream, hashes the
    /// files as their writes pass (an incremental one stops this at its first command).
    private func freshScan() -> SendStreamScan {
        var scan = SendStreamScan()
        scan.landmarks = SendStreamScan.Landmarks()
        scan.writes = StreamWriteManifests(
            files: target.files.map { ($0.path, $0.chunkSize > 0 ? $0.chunkSize : ChunkManifest.defaultChunkSize) })
        return scan
    }

    /// Removes the spool of a version that arrived. Called after its placement is reported and
    /// the version committed: a spool left at start marks a version that may not be durable.
    func discardSpool() {
        let started = ContinuousClock.now
        spool.discard()
        logger.debug("spool removed", metadata: ["took": "\(ContinuousClock.now - started)"])
    }

    private func incrementalParent(_ parent: Int64, scan: SendStreamScan) -> ReceivedVersionCheck.Parent? {
        guard parent > 0, let parentManifests else { return nil }
        return ReceivedVersionCheck.Parent(version: parent, scan: scan, manifests: parentManifests)
    }

    /// The catalog's bounds for the version's stream, and a validator with them.
    private func freshValidation() -> ValidatedStream {
        ValidatedStream(limits: .init(files: target.files.map { ($0.path, $0.size) }))
    }

    /// Spools a verified segment's record and writes its validated commands to `btrfs receive`.
    private func sink(_ ready: [ByteBuffer], record: SpoolRecord, spool: SpoolWriter?, receive: BtrfsCommand) async throws {
        try spool?.append(record)
        try await feed(receive, ready)
    }

    /// Writes validated stream bytes to `btrfs receive`; when it stopped reading, its own error
    /// says why.
    private func feed(_ receive: BtrfsCommand, _ ready: [ByteBuffer]) async throws {
        do {
            for bytes in ready { try await receive.write(bytes) }
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
    ) async throws(ReplicationError) -> BtrfsCommand {
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
            // Confined to the image's directory (`--chroot`), ending at the stream's end command
            // (`-e`), in its own mount namespace, without new privileges (see BtrfsCommand).
            return try await BtrfsCommand.start(["receive", "--chroot", "-e", directory], readOutput: false, writeInput: true, confined: true)
        } catch let error as ReplicationError {
            throw error
        } catch {
            throw ReplicationError(.internal, "cannot start btrfs receive: \(error)")
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
