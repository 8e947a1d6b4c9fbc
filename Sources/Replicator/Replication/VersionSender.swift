import Crypto
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOCore
import SwiftProtobuf
import Synchronization

/// The source side of a transfer (`SendVersion`): runs `btrfs send` of a version this
/// repository holds, against the newest parent the receiver holds too, and streams it in
/// hashed, optionally lz4-compressed segments, paced by the receiver's link rate.
///
/// A resume (`offset` > 0) re-runs the same send (a read-only snapshot sent against the same
/// parent gives the same stream) and skips the prefix, telling the prefix's SHA-256 so the
/// receiver can check that its spool holds the same stream.
///
/// At most ``ReplicationConfiguration/maximumConcurrentSends`` calls run at once (more are
/// answered RESOURCE_EXHAUSTED), and a receiver that reads nothing for
/// ``ReplicationConfiguration/inactivityTimeout`` has its call ended, which frees its slot.
struct VersionSender: Sendable {
    let repository: ImageRepository
    let metrics: ReplicationMetrics
    let logger: Logger
    let inactivityTimeout: Duration
    /// Calls running at once.
    private let slots: BoundedCount

    static let maximumParents = 64

    init(repository: ImageRepository, metrics: ReplicationMetrics, logger: Logger, configuration: ReplicationConfiguration = .init()) {
        self.repository = repository
        self.metrics = metrics
        self.logger = logger
        inactivityTimeout = configuration.inactivityTimeout
        slots = BoundedCount(limit: configuration.maximumConcurrentSends)
    }

    func serve(_ request: Icbd_Replicator_V1_SendVersionRequest, to writer: RPCResponseWriter<Icbd_Replicator_V1_SendVersionSegment>, peer: PeerIdentity)
        async throws
    {
        let image: Name
        do { image = try Name(request.image) } catch { throw RPCError(code: .invalidArgument, message: "\(error)") }
        guard request.version > 0 else { throw RPCError(code: .invalidArgument, message: "version must be 1 or more, not \(request.version)") }
        guard request.parents.count <= Self.maximumParents else {
            throw RPCError(code: .invalidArgument, message: "at most \(Self.maximumParents) parent candidates, \(request.parents.count) given")
        }
        guard request.offset >= 0 else { throw RPCError(code: .invalidArgument, message: "offset must not be negative") }
        guard slots.take() else {
            throw RPCError(
                code: .resourceExhausted, message: "this repository already sends \(slots.limit) versions: try another source, or later")
        }
        defer { slots.giveBack() }
        let segmentSize = request.segmentSize == 0 ? SegmentCodec.defaultSegmentSize : Int(request.segmentSize)
        guard (SegmentCodec.minimumSegmentSize...SegmentCodec.maximumSegmentSize).contains(segmentSize) else {
            throw RPCError(
                code: .invalidArgument,
                message: "segment_size must be \(SegmentCodec.minimumSegmentSize) to \(SegmentCodec.maximumSegmentSize) bytes, not \(segmentSize)")
        }
        var logger = logger
        logger[metadataKey: "image"] = "\(image)"
        logger[metadataKey: "version"] = "\(request.version)"
        logger[metadataKey: "receiver"] = "\(peer.name)"

        let path = repository.versionPath(of: image, request.version)
        guard Subvolume.exists(at: path), let info = try? Subvolume.info(at: path), info.isReadOnly else {
            throw RPCError(code: .notFound, message: "version \(request.version) of image '\(image)' is not on this repository")
        }
        let parent = try chooseParent(request, image: image)
        var arguments = ["-q", "send"]
        if let parent { arguments += ["-p", repository.versionPath(of: image, parent.number)] }
        arguments.append(path)
        // The receiver asks for lz4 and tells its link's rate; the level is the sender's choice
        // (its CPU), and every level decodes alike.
        let compression = request.lz4 ? SegmentCompression.forLink(bytesPerSecond: request.rateBytesPerSecond) : .none
        logger.info(
            "sending a version",
            metadata: ["parent": "\(parent?.number ?? 0)", "offset": "\(request.offset)", "compression": "\(compression)"])

        let started = ContinuousClock.now
        let command = try await BtrfsCommand.start(arguments, readOutput: true, writeInput: false)
        defer { command.terminate() }
        try await withTaskCancellationHandler {
            var digest = StreamDigest(list: request.digestList)
            var position: Int64 = 0
            while position < request.offset {
                guard let bytes = try await command.read(upTo: Int(min(Int64(segmentSize), request.offset - position))) else {
                    throw RPCError(
                        code: .failedPrecondition,
                        message: "the send stream is \(position) bytes long, shorter than the resume offset \(request.offset): start over")
                }
                bytes.withUnsafeReadableBytes { digest.add($0, digest: digest.isList ? Array(SHA256.hash(data: $0)) : []) }
                position += Int64(bytes.readableBytes)
            }
            let prefix = digest.finalize()
            try await writer.write(
                .with {
                    $0.header.btrfsUuid = (info.receivedUUID ?? info.uuid).uuidString.lowercased()
                    $0.header.parent = parent?.number ?? 0
                    $0.header.parentUuid = parent.map { ($0.info.receivedUUID ?? $0.info.uuid).uuidString.lowercased() } ?? ""
                    $0.header.offset = request.offset
                    $0.header.prefixSha256 = Data(prefix)
                    $0.header.lz4 = request.lz4
                    $0.header.digestList = request.digestList
                })
            var bucket = TokenBucket(bytesPerSecond: request.rateBytesPerSecond, burst: segmentSize)
            // One segment read ahead: `btrfs send` fills the next while this one is hashed,
            // compressed and sent.
            var next = try await command.read(upTo: segmentSize)
            logger.debug("btrfs send began its stream", metadata: ["after": "\(ContinuousClock.now - started)"])
            while let raw = next {
                async let following = command.read(upTo: segmentSize)
                let encoded = SegmentCodec.encode(raw, compression: compression)
                raw.withUnsafeReadableBytes { digest.add($0, digest: encoded.sha256) }
                let wait = bucket.take(encoded.data.readableBytes, at: .now)
                if wait > .zero { try await Task.sleep(for: wait) }
                let segment = Icbd_Replicator_V1_SendVersionSegment.with {
                    $0.offset = position
                    $0.rawLength = UInt32(raw.readableBytes)
                    $0.lz4 = encoded.lz4
                    $0.sha256 = Data(encoded.sha256)
                }
                try await whileTheReceiverReads { try await writer.write(segment, payload: encoded.data) }
                metrics.sent(raw: raw.readableBytes, wire: encoded.data.readableBytes)
                position += Int64(raw.readableBytes)
                next = try await following
            }
            let exit = await command.wait()
            guard exit.succeeded else {
                throw RPCError(code: .internal, message: "btrfs send failed (exit \(exit.status)): \(exit.errors)")
            }
            try await writer.write(.with { $0.trailer.length = position; $0.trailer.sha256 = Data(digest.finalize()) })
            logger.info("sent a version", metadata: ["bytes": "\(position - request.offset)", "stream": "\(position)"])
        } onCancel: {
            command.terminate()
        }
    }

    /// Runs `write`, ending the call when the receiver does not take it within
    /// ``inactivityTimeout`` (it stopped reading: its window stays full).
    private func whileTheReceiverReads(_ write: @escaping @Sendable () async throws -> Void) async throws {
        let timeout = inactivityTimeout
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await write()
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else {
                logger.warning("the receiver stopped reading: the call ends", metadata: ["after": "\(timeout)"])
                throw RPCError(code: .deadlineExceeded, message: "the receiver read nothing for \(timeout): the transfer ends")
            }
        }
    }

    private struct Parent {
        let number: Int64
        let info: Subvolume.Info
    }

    /// With a resume, the parent of the interrupted stream; else the newest candidate this
    /// repository holds with the same identity.
    private func chooseParent(_ request: Icbd_Replicator_V1_SendVersionRequest, image: Name) throws -> Parent? {
        func local(_ number: Int64) -> Subvolume.Info? {
            let path = repository.versionPath(of: image, number)
            guard Subvolume.exists(at: path), let info = try? Subvolume.info(at: path), info.isReadOnly else { return nil }
            return info
        }
        if request.offset > 0 {
            guard request.resumeParent > 0 else { return nil }
            guard let info = local(request.resumeParent) else {
                throw RPCError(
                    code: .failedPrecondition,
                    message: "the resumed stream's parent, version \(request.resumeParent), is not on this repository: start over")
            }
            return Parent(number: request.resumeParent, info: info)
        }
        for candidate in request.parents.sorted(by: { $0.version > $1.version }) where candidate.version != request.version {
            guard let info = local(candidate.version), let wanted = UUID(uuidString: candidate.btrfsUuid),
                (info.receivedUUID ?? info.uuid) == wanted
            else { continue }
            return Parent(number: candidate.version, info: info)
        }
        return nil
    }
}
