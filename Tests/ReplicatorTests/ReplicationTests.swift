import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
@testable import Replicator
import ServiceLifecycle
import SwiftProtobuf
import Testing

/// The stream and wire bytes and whether it was incremental, from a `present` placement's detail.
func transferFacts(_ detail: String) -> (incremental: Bool, streamBytes: Int64, wireBytes: Int64)? {
    guard let stream = detail.range(of: #"\d+ stream bytes"#, options: .regularExpression),
        let wire = detail.range(of: #"\d+ on the wire"#, options: .regularExpression)
    else { return nil }
    return (
        detail.contains("incremental from"), Int64(detail[stream].filter(\.isNumber)) ?? 0,
        Int64(detail[wire].filter(\.isNumber)) ?? 0
    )
}

@Suite("Replication between two real repositories on loop-mounted BTRFS, with a real catalog", .serialized, .requiresLoopBtrfs)
struct ReplicationTests {
    @Test func versionsArriveVerifiedAndTheSecondGoesIncrementally() async throws {
        try await ReplicationDeployment.with { deployment in
            let image = try Name("win11")
            let v1Disk = vmLikeDisk(mebibytes: 48, seed: 1)
            let kernel = Array("vmlinuz bytes".utf8)
            let v1 = try await publish(deployment.hq, image: "win11", files: [("disk.raw", v1Disk), ("boot/vmlinuz", kernel)])
            let first = try await deployment.settledPlacement(image: "win11", version: 1)
            #expect(first.state == .present, "\(first.detail)")
            let full = try #require(transferFacts(first.detail))
            #expect(!full.incremental)
            // Full: every chunk (48 of the disk, 1 of the kernel) hashed from the stream's writes
            // as they passed, none read back.
            let hashed = try #require(first.detail.firstMatch(of: /(\d+) chunks read, (\d+) hashed from the stream/), "\(first.detail)")
            #expect(Int(hashed.1) == 0 && Int(hashed.2) == 49, "\(first.detail)")

            let received = try Subvolume.info(at: deployment.branchRepository.versionPath(of: image, 1))
            #expect(received.isReadOnly)
            #expect(received.receivedUUID == UUID(uuidString: v1.btrfsUuid))
            let copy = try Data(contentsOf: URL(fileURLWithPath: deployment.branchRepository.versionPath(of: image, 1) + "/disk.raw"))
            #expect(copy == Data(v1Disk))

            // v2 changes 10 MiB: it goes against v1, so only about that much crosses.
            let v2Disk = changed(v1Disk, mebibytes: 10, seed: 2)
            let v2 = try await publish(deployment.hq, image: "win11", files: [("disk.raw", v2Disk), ("boot/vmlinuz", kernel)])
            let second = try await deployment.settledPlacement(image: "win11", version: 2)
            #expect(second.state == .present, "\(second.detail)")
            let incremental = try #require(transferFacts(second.detail))
            #expect(incremental.incremental)
            #expect(incremental.streamBytes > 10 << 20)
            #expect(incremental.streamBytes < full.streamBytes / 2)
            let v2Info = try Subvolume.info(at: deployment.branchRepository.versionPath(of: image, 2))
            #expect(v2Info.receivedUUID == UUID(uuidString: v2.btrfsUuid))
            let copy2 = try Data(contentsOf: URL(fileURLWithPath: deployment.branchRepository.versionPath(of: image, 2) + "/disk.raw"))
            #expect(copy2 == Data(v2Disk))
            // A fast (unconfigured) link: no compression.
            #expect(incremental.wireBytes == incremental.streamBytes)
            // Verified by reading only the chunks the stream touched (each changed MiB, and the
            // rest of its extent, which btrfs send re-clones from v1); the other chunks of the
            // 48 MiB disk and of the kernel came from v1's manifest.
            let verified = try #require(second.detail.firstMatch(of: /(\d+) chunks read, (\d+) untouched/), "\(second.detail)")
            let (read, reused) = (Int(verified.1) ?? 0, Int(verified.2) ?? 0)
            #expect(read + reused == 49 && read >= 10 && reused >= 10, "\(second.detail)")
            // Nothing is left in the spool (removed just after the version is reported present).
            let spool = ReceiveSpool.directory(root: deployment.branchRepository.root)
            for _ in 0..<300 where !((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).isEmpty {
                try await Task.sleep(for: .milliseconds(100))
            }
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).isEmpty)
        }
    }
}

@Suite("Links, faults and retries of replication on real BTRFS", .serialized)
struct ReplicationLinkTests {
    @Test(.requiresLoopBtrfs) func theSchedulerFollowsTheCatalogWatchRatherThanPolling() async throws {
        // The periodic re-list is an hour away: only the Watch can tell repo-branch of a version.
        try await ReplicationDeployment.with(configure: { $0.scanInterval = .seconds(3600) }) { deployment in
            let disk = vmLikeDisk(mebibytes: 4, seed: 5)
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", disk)])
            #expect(try await deployment.settledPlacement(image: "win11", version: 1).state == .present)
            // By now repo-branch has scanned after that transfer and waits; v2 reaches it by the watch.
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", changed(disk, mebibytes: 1, seed: 6))])
            let second = try await deployment.settledPlacement(image: "win11", version: 2)
            #expect(second.state == .present, "\(second.detail)")
        }
    }

    @Test(.requiresLoopBtrfs) func aSlowLinkGetsCompressionAndTheVersionStillArrivesIntact() async throws {
        try await ReplicationDeployment.with { deployment in
            // A 40 MB/s WAN link between the sites: lz4 on, paced by the sender.
            let revision = try await deployment.siteRevision("branch")
            _ = try await deployment.catalog.unary(
                CatalogMethods.putSite,
                .with {
                    $0.site.name = "branch"
                    $0.site.links = [.with { $0.site = "hq"; $0.rateBytesPerSecond = 40_000_000 }]
                    $0.expectedRevision = revision
                })
            let disk = vmLikeDisk(mebibytes: 16, seed: 5)
            let v1 = try await publish(deployment.hq, image: "win11", files: [("disk.raw", disk)])
            let placement = try await deployment.settledPlacement(image: "win11", version: 1)
            #expect(placement.state == .present, "\(placement.detail)")
            let facts = try #require(transferFacts(placement.detail))
            #expect(facts.wireBytes < facts.streamBytes * 9 / 10)
            let path = deployment.branchRepository.versionPath(of: try Name("win11"), 1)
            #expect(try Subvolume.info(at: path).receivedUUID == UUID(uuidString: v1.btrfsUuid))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/disk.raw")) == Data(disk))
        }
    }

    @Test(.requiresLoopBtrfs) func aFullReceiverFailsClearlyRemovesThePartialAndKeepsServingTheRest() async throws {
        try await ReplicationDeployment.with(branchSize: "256M", configure: { $0.maximumAttempts = 2 }) { deployment in
            let small = vmLikeDisk(mebibytes: 2, seed: 1)
            _ = try await publish(deployment.hq, image: "tiny", files: [("disk.raw", small)])
            #expect(try await deployment.settledPlacement(image: "tiny", version: 1).state == .present)
            // 200 MiB of random data cannot arrive on a 256 MiB filesystem (spool and snapshot).
            var big = [UInt8](repeating: 0, count: 200 << 20)
            var generator = SeededGenerator(seed: 11)
            fillRandom(&big, 0..<big.count, &generator)
            _ = try await publish(deployment.hq, image: "big", files: [("disk.raw", big)])
            big = []
            let failed = try await deployment.settledPlacement(image: "big", version: 1)
            #expect(failed.state == .failed)
            #expect(failed.detail.contains("full"), "\(failed.detail)")
            #expect(!Subvolume.exists(at: deployment.branchRepository.versionPath(of: try Name("big"), 1)))
            let spool = ReceiveSpool.directory(root: deployment.branchRepository.root)
            #expect(((try? FileManager.default.contentsOfDirectory(atPath: spool)) ?? []).filter { $0.hasPrefix("big.") }.isEmpty)
            // The other image is still there and intact.
            let tiny = deployment.branchRepository.versionPath(of: try Name("tiny"), 1)
            #expect(try Data(contentsOf: URL(fileURLWithPath: tiny + "/disk.raw")) == Data(small))
        }
    }

    @Test(.requiresLoopBtrfs) func aReceivingReplicatorKilledMidTransferResumesAfterItsRestart() async throws {
        try await ReplicationDeployment.with(startBranch: false) { deployment in
            // A slow link (8 MB/s), so the transfer is surely under way when the replicator stops.
            let revision = try await deployment.siteRevision("branch")
            _ = try await deployment.catalog.unary(
                CatalogMethods.putSite,
                .with {
                    $0.site.name = "branch"
                    $0.site.links = [.with { $0.site = "hq"; $0.rateBytesPerSecond = 8_000_000 }]
                    $0.expectedRevision = revision
                })
            let disk = vmLikeDisk(mebibytes: 48, seed: 21)
            let v1 = try await publish(deployment.hq, image: "win11", files: [("disk.raw", disk)])
            let first = try deployment.makeBranch()
            let firstGroup = ServiceGroup(services: first.services, logger: deployment.logger)
            let running = Task { try await firstGroup.run() }
            // Wait until some megabytes arrived, then stop the replicator (its transfer is cut).
            var receiving = false
            for _ in 0..<2000 where !receiving {
                let placements = try await deployment.catalog.unary(
                    CatalogMethods.listPlacements, .with { $0.image = "win11"; $0.node = "repo-branch" }).placements
                receiving = placements.contains { $0.state == .receiving && $0.detail.range(of: #": [1-9]\d{6,} "#, options: .regularExpression) != nil }
                if !receiving { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(receiving)
            await firstGroup.triggerGracefulShutdown()
            _ = await running.result
            let path = deployment.branchRepository.versionPath(of: try Name("win11"), 1)
            // Never a half-received snapshot that counts as present.
            let placements = try await deployment.catalog.unary(
                CatalogMethods.listPlacements, .with { $0.image = "win11"; $0.node = "repo-branch" }).placements
            #expect(!placements.contains { $0.state == .present })

            let second = try deployment.makeBranch()
            try await withRunningServices(second.services, logger: deployment.logger) {
                let placement = try await deployment.settledPlacement(image: "win11", version: 1)
                #expect(placement.state == .present, "\(placement.detail)")
                #expect(placement.detail.contains("resumed at"), "\(placement.detail)")
                #expect(try Subvolume.info(at: path).receivedUUID == UUID(uuidString: v1.btrfsUuid))
                #expect(try Data(contentsOf: URL(fileURLWithPath: path + "/disk.raw")) == Data(disk))
            }
        }
    }

    @Test func linkSettingsFollowTheConfiguredRate() {
        func sites(_ rate: Int64) -> [Icbd_Catalog_V1_Site] {
            [.with { $0.name = "branch"; $0.links = [.with { $0.site = "hq"; $0.rateBytesPerSecond = rate }] }, .with { $0.name = "hq" }]
        }
        var configuration = ReplicationConfiguration()
        let slow = LinkSettings(from: "hq", to: "branch", sites: sites(12_500_000), configuration: configuration)
        #expect(slow.rateBytesPerSecond == 12_500_000 && slow.lz4)
        #expect(LinkSettings(from: "branch", to: "hq", sites: sites(12_500_000), configuration: configuration).lz4)
        #expect(!LinkSettings(from: "hq", to: "branch", sites: sites(1_250_000_000), configuration: configuration).lz4)
        let unlimited = LinkSettings(from: "hq", to: "branch", sites: sites(0), configuration: configuration)
        #expect(unlimited.rateBytesPerSecond == 0 && !unlimited.lz4)
        configuration.forceCompression = true
        #expect(LinkSettings(from: "hq", to: "branch", sites: sites(0), configuration: configuration).lz4)
        configuration.forceCompression = false
        #expect(!LinkSettings(from: "hq", to: "branch", sites: sites(12_500_000), configuration: configuration).lz4)
    }

    @Test func aSiteLinkForcesCompressionEitherWay() {
        func sites(_ rate: Int64, _ compression: Icbd_Catalog_V1_LinkCompression) -> [Icbd_Catalog_V1_Site] {
            [
                .with { $0.name = "branch"; $0.links = [.with { $0.site = "hq"; $0.rateBytesPerSecond = rate; $0.compression = compression }] },
                .with { $0.name = "hq" },
            ]
        }
        var configuration = ReplicationConfiguration()
        // A slow link that says off stays uncompressed; an unlimited one that says on compresses.
        #expect(!LinkSettings(from: "hq", to: "branch", sites: sites(12_500_000, .off), configuration: configuration).lz4)
        #expect(LinkSettings(from: "hq", to: "branch", sites: sites(0, .on), configuration: configuration).lz4)
        #expect(LinkSettings(from: "hq", to: "branch", sites: sites(12_500_000, .auto), configuration: configuration).lz4)
        // The link's setting wins over the replicator's own override.
        configuration.forceCompression = true
        #expect(!LinkSettings(from: "branch", to: "hq", sites: sites(0, .off), configuration: configuration).lz4)
        configuration.forceCompression = false
        #expect(LinkSettings(from: "branch", to: "hq", sites: sites(0, .on), configuration: configuration).lz4)
    }

    @Test func theTokenBucketPacesToItsRateAndBackoffGrowsWithJitterUpToItsCap() {
        var bucket = TokenBucket(bytesPerSecond: 1_000_000, burst: 100_000)
        let start = ContinuousClock.now
        #expect(bucket.take(100_000, at: start) == .zero)
        // The burst is spent: another 500 kB must wait half a second.
        let wait = bucket.take(500_000, at: start)
        #expect(wait >= .milliseconds(499) && wait <= .milliseconds(501))
        var unlimited = TokenBucket(bytesPerSecond: 0, burst: 1)
        #expect(unlimited.take(1 << 30, at: start) == .zero)

        var configuration = ReplicationConfiguration()
        configuration.initialBackoff = .seconds(2)
        configuration.maximumBackoff = .seconds(60)
        for failures in 1...12 {
            let delay = configuration.backoff(afterFailures: failures)
            let base = min(Duration.seconds(2) * (1 << (failures - 1)), .seconds(60))
            #expect(delay >= base / 2 && delay <= base)
        }
    }
}

/// Counts what a pull reported, across attempts.
final class ProgressLog: @unchecked Sendable {
    private let lock = NSLock()
    private var last = VersionPull.Progress()
    func record(_ progress: VersionPull.Progress) { lock.withLock { last = progress } }
    func reset() { lock.withLock { last = VersionPull.Progress() } }
    var latest: VersionPull.Progress { lock.withLock { last } }
}

@Suite("Resumable, verified transfers of one version", .serialized, .requiresLoopBtrfs)
struct VersionPullTests {
    func target(_ deployment: ReplicationDeployment, image: String, version: Int64, identityOf other: String? = nil) async throws
        -> VersionPull.Target
    {
        let answer = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = image })
        let described = try #require(answer.versions.first { $0.number == version })
        var identity = try #require(UUID(uuidString: described.btrfsUuid))
        if let other {
            let otherAnswer = try await deployment.catalog.unary(CatalogMethods.getImage, .with { $0.name = other })
            let otherVersion = try #require(otherAnswer.versions.first)
            identity = try #require(UUID(uuidString: otherVersion.btrfsUuid))
        }
        return VersionPull.Target(image: try Name(image), version: version, identity: identity, files: described.files)
    }

    @Test func aTransferCutAtRandomPointsResumesFromTheSpoolAndEndsVerified() async throws {
        try await ReplicationDeployment.with(branchReplicates: false) { deployment in
            let disk = vmLikeDisk(mebibytes: 48, seed: 7)
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", disk)])
            let pull = VersionPull(
                repository: deployment.branchRepository, tls: try deployment.mint(.replicator, "repo-branch"), metrics: ReplicationMetrics(),
                logger: deployment.logger, target: try await target(deployment, image: "win11", version: 1))
            let versionPath = deployment.branchRepository.versionPath(of: try Name("win11"), 1)
            // What an interrupted receive leaves: a writable v1 without received_uuid.
            try FileManager.default.createDirectory(atPath: deployment.branchRepository.directory(of: try Name("win11")), withIntermediateDirectories: true)
            try Subvolume.create(at: versionPath)

            var options = VersionPull.Options()
            options.lz4 = true
            options.segmentSize = 256 << 10
            var generator = SeededGenerator(seed: 99)
            let log = ProgressLog()
            var receivedOverAttempts: Int64 = 0
            var droppedFromSpool: Int64 = 0
            var cuts = 0
            for _ in 0..<10 {
                let cutAt = Int64.random(in: 1..<(30 << 20), using: &generator)
                log.reset()
                // The receiver is cut off (its task cancelled) once it holds `cutAt` more bytes.
                let attempt = Task { [options, address = deployment.hqAddress] in
                    _ = try await pull.run(from: address, parents: [], options: options) { progress in
                        log.record(progress)
                        if progress.streamBytes >= cutAt + progress.resumedAt { withUnsafeCurrentTask { $0?.cancel() } }
                    }
                }
                if case .failure = await attempt.result { cuts += 1 }
                receivedOverAttempts += log.latest.rawBytesThisAttempt
                // Nothing half-received counts as a version: what the cut receive wrote stays,
                // writable and without a received UUID, for the spool's references.
                if Subvolume.exists(at: versionPath) {
                    let partial = try Subvolume.info(at: versionPath)
                    #expect(!partial.isReadOnly && partial.receivedUUID == nil)
                }
                // The cut may fall anywhere, not only between segments (a crash mid-append):
                // tear the spool file at a random byte.
                if let held = pull.spool.held() {
                    let size = try #require(FileManager.default.attributesOfItem(atPath: pull.spool.path)[.size] as? NSNumber).int64Value
                    #expect(truncate(pull.spool.path, off_t(Int64.random(in: 0...size, using: &generator))) == 0)
                    droppedFromSpool += held.length - (pull.spool.held()?.length ?? 0)
                }
            }
            #expect(cuts >= 5)
            log.reset()
            let done = try await pull.run(from: deployment.hqAddress, parents: [], options: options) { log.record($0) }
            receivedOverAttempts += done.rawBytesThisAttempt
            // Present and verified.
            let info = try Subvolume.info(at: versionPath)
            #expect(info.isReadOnly && info.receivedUUID == pull.target.identity)
            #expect(try Data(contentsOf: URL(fileURLWithPath: versionPath + "/disk.raw")) == Data(disk))
            // The spool stays until the caller, having reported the version, discards it. It
            // holds the stream's commands, not its data (read back from the partial on a resume),
            // but for the data of each segment's last command if it runs on into the next
            // segment: at most one write (btrfs send writes 48 KiB at a time) per segment.
            #expect(pull.spool.held()?.length == done.streamBytes)
            let spoolSize = try #require(FileManager.default.attributesOfItem(atPath: pull.spool.path)[.size] as? NSNumber).int64Value
            let segments = (done.streamBytes + Int64(options.segmentSize) - 1) / Int64(options.segmentSize)
            #expect(spoolSize < segments * (52 << 10), "a spool of \(spoolSize) bytes for \(segments) segments")
            #expect(spoolSize < done.streamBytes / 5, "a spool of \(spoolSize) bytes for a stream of \(done.streamBytes)")
            #expect(!Subvolume.exists(at: pull.spool.partialPath))
            pull.discardSpool()
            #expect(pull.spool.held() == nil)
            // Bytes sent again: only what was dropped from the spool, plus at most a segment per cut.
            let resent = receivedOverAttempts - done.streamBytes
            #expect(resent <= droppedFromSpool + Int64(cuts) * Int64(options.segmentSize))
        }
    }

    @Test func aStreamOfAnotherSnapshotIsRejectedAndNothingIsKept() async throws {
        try await ReplicationDeployment.with(branchReplicates: false) { deployment in
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", vmLikeDisk(mebibytes: 4, seed: 1))])
            _ = try await publish(deployment.hq, image: "other", files: [("disk.raw", vmLikeDisk(mebibytes: 4, seed: 2))])
            // The receiver expects other's snapshot; the sender holds win11's v1 under that name.
            let pull = VersionPull(
                repository: deployment.branchRepository, tls: try deployment.mint(.replicator, "repo-branch"), metrics: ReplicationMetrics(),
                logger: deployment.logger, target: try await target(deployment, image: "win11", version: 1, identityOf: "other"))
            let error = await #expect(throws: ReplicationError.self) {
                _ = try await pull.run(from: deployment.hqAddress, parents: [], options: .init()) { _ in }
            }
            #expect(error?.code == .dataLoss)
            #expect(!Subvolume.exists(at: deployment.branchRepository.versionPath(of: try Name("win11"), 1)))
            #expect(pull.spool.held() == nil)
        }
    }

    @Test func onlyReplicatorsMaySendVersions() async throws {
        try await ReplicationDeployment.with(branchReplicates: false) { deployment in
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", vmLikeDisk(mebibytes: 2, seed: 1))])
            let pull = VersionPull(
                repository: deployment.branchRepository, tls: try deployment.mint(.cache, "cache-1"), metrics: ReplicationMetrics(),
                logger: deployment.logger, target: try await target(deployment, image: "win11", version: 1))
            await #expect(throws: ReplicationError.self) {
                _ = try await pull.run(from: deployment.hqAddress, parents: [], options: .init()) { _ in }
            }
            #expect(!Subvolume.exists(at: deployment.branchRepository.versionPath(of: try Name("win11"), 1)))
        }
    }
}

@Suite("Segments and stream heads")
struct SegmentCodecTests {
    @Test(arguments: [SegmentCompression.none, .fast, .high(level: 3), .high(level: 9)])
    func segmentsRoundTripAndAFlippedByteFailsItsHash(compression: SegmentCompression) throws {
        var bytes = [UInt8](repeating: 7, count: 300_000)
        bytes[12345] = 1
        let encoded = SegmentCodec.encode(ByteBuffer(bytes: bytes), compression: compression)
        #expect(encoded.lz4 == (compression != .none))
        let decoded = try SegmentCodec.decode(encoded.data, lz4: encoded.lz4, rawLength: bytes.count, sha256: encoded.sha256)
        #expect(Array(decoded.readableBytesView) == bytes)
        var corrupt = Array(encoded.data.readableBytesView)
        corrupt[corrupt.count / 2] ^= 0x40
        #expect(throws: ReplicationError.self) {
            _ = try SegmentCodec.decode(ByteBuffer(bytes: corrupt), lz4: encoded.lz4, rawLength: bytes.count, sha256: encoded.sha256)
        }
    }

    @Test func randomBytesTravelUncompressed() {
        var generator = SeededGenerator(seed: 3)
        var bytes = [UInt8](repeating: 0, count: 1 << 16)
        fillRandom(&bytes, 0..<bytes.count, &generator)
        #expect(!SegmentCodec.encode(ByteBuffer(bytes: bytes), compression: .fast).lz4)
        #expect(!SegmentCodec.encode(ByteBuffer(bytes: bytes), compression: .high(level: 9)).lz4)
    }

    @Test func lz4HCShrinksRepetitiveTextMoreThanTheFastMode() throws {
        var generator = SeededGenerator(seed: 5)
        let words = (0..<300).map { _ in (0..<(3 + Int(generator.next() % 9))).map { _ in UInt8(97 + generator.next() % 26) } }
        var bytes: [UInt8] = []
        while bytes.count < 1 << 20 { bytes += words[Int(generator.next() % UInt64(words.count))] + [32] }
        let fast = SegmentCodec.encode(ByteBuffer(bytes: bytes), compression: .fast)
        let high = SegmentCodec.encode(ByteBuffer(bytes: bytes), compression: .high(level: 9))
        #expect(fast.lz4 && high.lz4)
        #expect(high.data.readableBytes < fast.data.readableBytes)
        // Same block format: the one decoder reads it.
        let decoded = try SegmentCodec.decode(high.data, lz4: true, rawLength: bytes.count, sha256: high.sha256)
        #expect(Array(decoded.readableBytesView) == bytes)
    }

    /// 100 Mbit/s (12.5 MB/s) needs 50 MB/s: level 3; 64 Mbit/s (8 MB/s) needs 32 MB/s: level 9;
    /// from 200 Mbit/s on, and with no configured rate, the fast mode.
    @Test(arguments: [
        (Int64(0), SegmentCompression.fast), (1_000_000, .high(level: 9)), (8_000_000, .high(level: 9)),
        (10_000_001, .high(level: 3)), (12_500_000, .high(level: 3)), (25_000_000, .high(level: 3)),
        (25_000_001, .fast), (100_000_000, .fast),
    ])
    func theCompressionLevelFollowsTheLinksRate(rate: Int64, expected: SegmentCompression) {
        #expect(SegmentCompression.forLink(bytesPerSecond: rate) == expected)
    }
}
