import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import NIOPosix
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Pulls, for one replicator, the versions its site should hold and it lacks (see
/// ``ReplicationPlan``): scans the catalog whenever its Watch shows a change that matters
/// (``CatalogChangeFollower``), a transfer ends or a retry falls due, and at least every
/// ``ReplicationConfiguration/scanInterval`` as a safety net; runs at most ``ReplicationConfiguration/maximumConcurrentTransfers`` images at once (each
/// image's versions one after another, oldest first, so each can go incrementally), and retries
/// a failed version with exponential backoff and jitter, a bounded number of times. A
/// `Service`: it starts once start-up recovery ran and stops at graceful shutdown (transfers in
/// flight are cut; a later start resumes them from their spools).
final class ReplicationScheduler: Service, Sendable {
    private struct Retry {
        var failures = 0
        var notBefore = ContinuousClock.now
    }

    private struct State {
        var running: Set<Name> = []
        var retries: [String: Retry] = [:]
    }

    let repository: ImageRepository
    let catalog: RPCClient
    let configuration: ReplicationConfiguration
    let site: String
    let node: String
    let tls: TLSIdentity
    let metrics: ReplicationMetrics
    /// Receiving before recovery ran would race it (its new subvolume looks like a leftover).
    let recovery: RecoveryGate
    let logger: Logger
    /// Called after a version arrived (retention may now delete an older one).
    let arrived: @Sendable () async -> Void
    private let state = Mutex(State())
    private let estimate: StreamEstimate
    private let wakeup = ReplicationWakeup()
    private let suspects: SuspectSources

    init(
        repository: ImageRepository, catalog: RPCClient, configuration: ReplicationConfiguration, site: String, node: String,
        tls: TLSIdentity, metrics: ReplicationMetrics, recovery: RecoveryGate, logger: Logger,
        arrived: @escaping @Sendable () async -> Void
    ) {
        self.repository = repository
        self.catalog = catalog
        self.configuration = configuration
        self.site = site
        self.node = node
        self.tls = tls
        self.metrics = metrics
        self.recovery = recovery
        self.logger = logger
        self.arrived = arrived
        self.estimate = StreamEstimate(manifests: ManifestCache(catalog: catalog, capacityBytes: 8 << 20))
        self.suspects = SuspectSources(period: configuration.suspectSourcePeriod)
    }

    /// Waits for recovery, then scans and pulls until graceful shutdown.
    func run() async {
        await cancelWhenGracefulShutdown {
            await self.recovery.waitUntilDone()
            await self.scanAndPull()
        }
    }

    private func scanAndPull() async {
        if let held = try? repository.versions() {
            ReceiveSpool.dropUndurable(root: repository.root, held: held, versionPath: repository.versionPath, logger: logger)
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                await CatalogChangeFollower(
                    catalog: self.catalog, node: self.node, wakeup: self.wakeup, retryDelay: self.configuration.watchRetryDelay,
                    logger: self.logger
                ).follower.run()
            }
            while !Task.isCancelled {
                do {
                    for (image, pulls) in try await scan() {
                        let start = state.withLock { state -> Bool in
                            guard !state.running.contains(image), state.running.count < configuration.maximumConcurrentTransfers else { return false }
                            state.running.insert(image)
                            return true
                        }
                        guard start else { continue }
                        group.addTask {
                            let transferred = await self.pull(image: image, pulls)
                            _ = self.state.withLock { $0.running.remove(image) }
                            // A newer version may have come meanwhile, or a slot is free.
                            if transferred { self.wakeup.signal() }
                        }
                    }
                } catch {
                    logger.warning("replication scan failed", metadata: ["error": "\(error)"])
                }
                await wakeup.wait(upTo: nextScanDelay())
            }
            group.cancelAll()
        }
    }

    /// Until the next retry falls due, at most the safety-net interval.
    private func nextScanDelay() -> Duration {
        let now = ContinuousClock.now
        return state.withLock { state in
            state.retries.values.filter { $0.failures < configuration.maximumAttempts }
                .map { max(.milliseconds(1), $0.notBefore - now) }
                .reduce(configuration.scanInterval, min)
        }
    }

    /// What to pull, per image; reports versions held but not reported.
    private func scan() async throws -> [(Name, [ReplicationPlan.Pull])] {
        let nodes = try await catalog.allPages(CatalogMethods.listNodes, .init()).nodes
        guard nodes.contains(where: { $0.name == node }) else { return [] }  // placements need a registered node
        var images: [String] = []
        var token = ""
        repeat {
            let page = try await catalog.unary(CatalogMethods.listImages, .with { $0.pageToken = token; $0.pageSize = 1000 })
            images += page.images.map(\.image.name)
            token = page.nextPageToken
        } while !token.isEmpty
        let local = try repository.versions()
        var work: [(Name, [ReplicationPlan.Pull])] = []
        for name in images {
            guard let image = try? Name(name) else { continue }
            let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = name })
            let plan = ReplicationPlan(
                site: site, node: node, image: answer, local: local[image] ?? [:], nodes: nodes, defaultKeep: configuration.defaultKeep)
            if !plan.unreported.isEmpty && !state.withLock({ $0.running.contains(image) }) {
                // Checked again now: a transfer may have reported it since the listing.
                let current = try await catalog.allPages(
                    CatalogMethods.listPlacements, .with { $0.image = name; $0.node = node }
                ).placements
                for number in plan.unreported where !current.contains(where: { $0.version == number && $0.state == .present }) {
                    await report(image: image, version: number, .present, "verified copy on this repository")
                }
            }
            if !plan.pulls.isEmpty { work.append((image, plan.pulls)) }
        }
        metrics.scanned(missingCreatedMs: work.flatMap(\.1).map(\.version.createdMs))
        return work
    }

    /// Pulls the versions of one image, oldest first; stops at the first that fails. Returns
    /// whether it tried any.
    private func pull(image: Name, _ pulls: [ReplicationPlan.Pull]) async -> Bool {
        var tried = false
        for pull in pulls {
            let key = "\(image)/v\(pull.version.number)"
            let due = state.withLock { state -> Bool in
                guard let retry = state.retries[key] else { return true }
                return retry.failures < configuration.maximumAttempts && retry.notBefore <= .now
            }
            guard due, !Task.isCancelled else { return tried }
            // No holder yet (the publisher reports its placement just after the version is
            // ready), or none is up: not a failed attempt; the next scan looks again.
            guard !pull.sources.isEmpty else {
                logger.debug("no repository holds the version yet", metadata: ["image": "\(image)", "version": "\(pull.version.number)"])
                return tried
            }
            tried = true
            do {
                try await transfer(image: image, pull)
                _ = state.withLock { $0.retries.removeValue(forKey: key) }
                metrics.transferSucceeded()
                await arrived()
            } catch {
                metrics.transferFailed()
                let (failures, delay) = state.withLock { state -> (Int, Duration) in
                    var retry = state.retries[key] ?? Retry()
                    retry.failures += 1
                    let delay = configuration.backoff(afterFailures: retry.failures)
                    retry.notBefore = .now + delay
                    state.retries[key] = retry
                    return (retry.failures, delay)
                }
                let final = failures >= configuration.maximumAttempts
                let reason = "\(error)"
                logger.error(
                    "replication of a version failed",
                    metadata: ["image": "\(image)", "version": "\(pull.version.number)", "attempt": "\(failures)", "error": "\(reason)"])
                await report(
                    image: image, version: pull.version.number, .failed,
                    final
                        ? "gave up after \(failures) attempts: \(reason)"
                        : "attempt \(failures) of \(configuration.maximumAttempts) failed: \(reason); retrying in \(delay.formattedSeconds)")
                return tried
            }
        }
        return tried
    }

    /// One attempt: each source in turn until one succeeds.
    private func transfer(image: Name, _ pull: ReplicationPlan.Pull) async throws {
        let version = pull.version
        guard !pull.sources.isEmpty else {
            throw ReplicationError(.unavailable, "no repository that is up holds version \(version.number) of image '\(image)'")
        }
        guard let identity = UUID(uuidString: version.btrfsUuid) else {
            throw ReplicationError(.failedPrecondition, "the catalog gives version \(version.number) no snapshot UUID")
        }
        let answer = try await catalog.allPages(CatalogMethods.getImage, .with { $0.name = image.rawValue })
        let parents = ReplicationPlan.parents(image: answer, local: try repository.versions()[image] ?? [:])
        let sites = try await catalog.allPages(CatalogMethods.listSites, .init()).sites
        var logger = self.logger
        logger[metadataKey: "image"] = "\(image)"
        logger[metadataKey: "version"] = "\(version.number)"
        let puller = VersionPull(
            repository: repository, tls: tls, metrics: metrics, logger: logger,
            target: .init(image: image, version: version.number, identity: identity, files: version.files),
            parentManifests: estimate.manifests)
        let expected = await estimate.bytes(image: image, version: version.number, files: version.files, parent: parents.first?.version)
        var lastError: (any Error)?
        for source in suspects.ordered(pull.sources, name: \.name) {
            guard let address = try? HostPort(parsing: source.rpcAddress) else { continue }
            let link = LinkSettings(from: source.site, to: site, sites: sites, configuration: configuration)
            var options = VersionPull.Options()
            options.lz4 = link.lz4
            options.rateBytesPerSecond = link.rateBytesPerSecond
            options.segmentSize = configuration.segmentSize
            options.sourceName = source.name
            options.inactivityTimeout = configuration.inactivityTimeout
            let tracker = TransferTracker(source: source.name, expectedBytes: expected)
            await report(image: image, version: version.number, .receiving, "starting from \(source.name)")
            do {
                let done = try await withThrowingTaskGroup(of: VersionPull.Progress?.self) { group in
                    group.addTask { [options] in
                        try await puller.run(from: address, parents: parents, options: options) { tracker.update($0) }
                    }
                    group.addTask {
                        while !Task.isCancelled {
                            try await Task.sleep(for: self.configuration.progressInterval)
                            await self.report(image: image, version: version.number, .receiving, tracker.detail())
                        }
                        return nil
                    }
                    defer { group.cancelAll() }
                    while let result = try await group.next() {
                        if let result { return result }
                    }
                    throw ReplicationError(.internal, "the transfer ended without a result")
                }
                logger.info(
                    "received a version",
                    metadata: [
                        "source": "\(source.name)", "parent": "\(done.parent)", "stream": "\(done.streamBytes)",
                        "wire": "\(done.wireBytesThisAttempt)", "resumedAt": "\(done.resumedAt)",
                    ])
                let how = (done.parent > 0 ? "incremental from v\(done.parent)" : "full") + (done.resumedAt > 0 ? ", resumed at \(done.resumedAt)" : "")
                await report(
                    image: image, version: version.number, .present,
                    "received from \(source.name) (\(how), \(done.streamBytes) stream bytes, \(done.wireBytesThisAttempt) on the wire), verified ("
                        + "\(done.chunksRead) chunks read"
                        + (done.chunksFromStream > 0 ? ", \(done.chunksFromStream) hashed from the stream's writes" : "")
                        + (done.chunksReused > 0 ? ", \(done.chunksReused) untouched ones taken from v\(done.parent))" : ")"))
                // The spool goes only once the version is on disk: a spool left at start marks a
                // version that may not be (ReceiveSpool.dropUndurable).
                if await commitReceived(image: image, version: version.number, logger: logger) { puller.discardSpool() }
                return
            } catch {
                lastError = error
                logger.warning("transfer from a source failed", metadata: ["source": "\(source.name)", "error": "\(error)"])
                if (error as? ReplicationError)?.code == .dataLoss {
                    suspects.suspect(source.name)
                    logger.warning(
                        "a source sent a stream that was refused: other sources go first",
                        metadata: ["source": "\(source.name)", "for": "\(configuration.suspectSourcePeriod)"])
                }
            }
        }
        throw lastError ?? ReplicationError(.unavailable, "no source could be reached")
    }

    /// Writes a version that arrived to disk now, while this image has nothing else to do:
    /// `btrfs receive` leaves its data in the page cache, and the next incremental receive
    /// would otherwise flush it on its own clock (snapshotting the parent flushes the parent's
    /// dirty data: 0.9 s for 700 MiB here). It also makes the version durable soon after it is
    /// reported present. Returns whether it did; on a failure (logged) the version's spool is
    /// kept, so that the next start receives the version again. (Off the cooperative threads:
    /// the flush takes seconds.)
    private func commitReceived(image: Name, version: Int64, logger: Logger) async -> Bool {
        let started = ContinuousClock.now
        let path = repository.versionPath(of: image, version)
        do {
            try await NIOThreadPool.singleton.runIfActive { try Filesystem.commit(at: path) }
            logger.debug("received version committed to disk", metadata: ["took": "\(ContinuousClock.now - started)"])
            return true
        } catch {
            logger.warning("cannot commit the filesystem after a receive", metadata: ["error": "\(error)"])
            return false
        }
    }

    /// Sets this repository's placement of a version; a catalog that is down is logged.
    private func report(image: Name, version: Int64, _ state: Icbd_Catalog_V1_PlacementState, _ detail: String) async {
        do {
            _ = try await catalog.unary(
                CatalogMethods.setPlacement,
                .with {
                    $0.image = image.rawValue
                    $0.version = version
                    $0.node = node
                    $0.state = state
                    $0.detail = String(detail.prefix(1000))
                }, options: RPCCallOptions(timeout: .seconds(5)))
        } catch {
            logger.warning("placement not reported", metadata: ["image": "\(image)", "version": "\(version)", "error": "\(error)"])
        }
    }
}

/// Progress of one running transfer, for the placement's detail: bytes, rate, ETA when known.
final class TransferTracker: Sendable {
    private struct State {
        var progress = VersionPull.Progress()
        let started = ContinuousClock.now
    }

    let source: String
    /// About how long the stream is, when the manifests tell.
    let expectedBytes: Int64?
    private let state = Mutex(State())

    init(source: String, expectedBytes: Int64?) {
        self.source = source
        self.expectedBytes = expectedBytes
    }

    func update(_ progress: VersionPull.Progress) {
        state.withLock { $0.progress = progress }
    }

    func detail() -> String {
        state.withLock { state in
            let elapsed = (ContinuousClock.now - state.started).seconds
            let rate = elapsed > 0 ? Double(state.progress.rawBytesThisAttempt) / elapsed : 0
            let resumed = state.progress.resumedAt > 0 ? ", resumed at \(state.progress.resumedAt)" : ""
            var of = ""
            var eta = ""
            if let expectedBytes, expectedBytes > 0 {
                of = " of ~\(expectedBytes)"
                let left = max(0, expectedBytes - state.progress.streamBytes)
                eta = rate > 0 ? ", ETA \(Int64((Double(left) / rate).rounded(.up)))s" : ""
            }
            return "receiving from \(source): \(state.progress.streamBytes)\(of) bytes at \(Int64(rate)) B/s\(eta)\(resumed)"
        }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
    var formattedSeconds: String { String(format: "%.1fs", seconds) }
}
