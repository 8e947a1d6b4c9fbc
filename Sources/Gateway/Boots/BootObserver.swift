import Foundation
import ICBDCore
import Logging
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The gateway's live ``BootTracker``: requests report to it, it applies the tracker's actions
/// (metrics, logs), and, as a `Service`, sweeps every `sweepInterval` for boots that settled,
/// failed or stopped waiting.
final class BootObserver: Service, Sendable {
    let configuration: BootTrackingConfiguration
    private let tracker: Mutex<BootTracker>
    /// Whether some boot in progress may own a read: when none does, a file request skips the
    /// client-address lookup altogether.
    private let following = Atomic<Bool>(false)
    /// The tracker's ``BootTracker/revision``, for the look-ups of ``readStarted(client:image:reference:path:)``.
    private let revision = Atomic<UInt64>(0)
    /// Each thread's last look-up, of whichever observer (one thread-specific key per process).
    private static let lookups = ThreadSpecificVariable<ThreadLookup>()
    private let metrics: BootMetrics
    /// Where boots that ended go: the catalog.
    private let reporter: BootReporter
    private let logger: Logger

    init(configuration: BootTrackingConfiguration, metrics: BootMetrics, reporter: BootReporter, logger: Logger) {
        self.configuration = configuration
        self.tracker = Mutex(BootTracker(configuration: configuration))
        self.metrics = metrics
        self.reporter = reporter
        self.logger = logger
    }

    func scriptServed(mac: MACAddress, client: IPAddress, site: String, target: BootRecord.Target?, waitingReason: String = "") {
        let now = ContinuousClock.now
        apply(update { $0.scriptServed(mac: mac, client: client, site: site, target: target, waitingReason: waitingReason, now: now, date: Date()) })
    }

    var isFollowingReads: Bool { following.load(ordering: .relaxed) }

    /// A read that belongs to a boot in progress: ``ended(_:)`` is called once, when it ends.
    struct Read: Sendable {
        fileprivate let observer: BootObserver
        fileprivate let read: BootTracker.Read
        fileprivate let started: ContinuousClock.Instant

        /// Records the end in the boot's figures; takes the tracker's lock only for a read that
        /// may complete the boot's loading.
        func ended(_ result: BootTracker.ReadResult) {
            let now = ContinuousClock.now
            if read.record(result, latency: now - started, now: now) {
                observer.tracker.withLock { $0.readLoaded(read, now: now) }
            }
        }
    }

    /// The read of `path` from `client`, if it belongs to a boot in progress. The boot at the
    /// client's address is looked up under the tracker's lock only when this thread's last
    /// look-up (``ThreadLookup``) is of another client or older than the tracker's last change,
    /// so that the reads of a boot, many at once, do not queue for the lock.
    func readStarted(client: IPAddress, image: String, reference: String, path: String) -> Read? {
        let now = ContinuousClock.now
        let lookup: ThreadLookup
        if let current = Self.lookups.currentValue {
            lookup = current
        } else {
            lookup = ThreadLookup()
            Self.lookups.currentValue = lookup
        }
        if lookup.revision != revision.load(ordering: .acquiring) || lookup.client != client || lookup.observer !== self {
            (lookup.boot, lookup.revision) = tracker.withLock { ($0.bootInProgress(at: client), $0.revision) }
            lookup.client = client
            lookup.observer = self
        }
        return lookup.boot.flatMap { BootTracker.read(of: $0, image: image, reference: reference, path: path) }
            .map { Read(observer: self, read: $0, started: now) }
    }

    func bootedSignal(mac: MACAddress, client: IPAddress) {
        let now = ContinuousClock.now
        apply(update { $0.bootedSignal(mac: mac, client: client, now: now) })
    }

    /// Every boot held, newest first.
    var records: [BootRecord] { tracker.withLock { $0.records } }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: self.configuration.sweepInterval)
                let now = ContinuousClock.now
                self.apply(self.update { $0.sweep(now: now) })
            }
        }
    }

    /// Runs `change` on the tracker and notes whether boots in progress remain.
    private func update(_ change: (inout BootTracker) -> [BootTracker.Action]) -> [BootTracker.Action] {
        tracker.withLock { tracker in
            let actions = change(&tracker)
            following.store(tracker.isFollowingReads, ordering: .relaxed)
            revision.store(tracker.revision, ordering: .releasing)
            return actions
        }
    }

    private func apply(_ actions: [BootTracker.Action]) {
        for action in actions {
            metrics.apply(action)
            switch action {
            case .waitingBegan(let record):
                logger.info("a workstation cannot boot and waits", metadata: ["mac": "\(record.mac)", "client": "\(record.client)", "reason": "\(Self.reason(record))"])
            case .waitingEnded: break
            case .finished(let record):
                reporter.finished(record)
                var metadata: Logger.Metadata = [
                    "mac": "\(record.mac)", "client": "\(record.client)", "site": "\(record.site)", "outcome": "\(record.outcomeText)",
                    "bytes_read": "\(record.bytesRead)", "disk_reads": "\(record.diskReads)", "errors": "\(record.errors)", "unavailable": "\(record.unavailable)",
                ]
                if let target = record.target { metadata["version"] = "\(target.image):\(target.version)" }
                for (phase, duration) in record.phases { metadata["\(phase.rawValue)_seconds"] = "\(duration)" }
                if case .failed = record.outcome {
                    logger.warning("a boot failed", metadata: metadata)
                } else {
                    logger.info("a boot ended", metadata: metadata)
                }
            }
        }
    }

    private static func reason(_ record: BootRecord) -> String {
        if case .waiting(let reason) = record.outcome { return reason }
        return ""
    }
}

/// One thread's last look-up of a boot in progress by client address (``BootObserver``): its
/// answer holds while the tracker's revision is the same. Touched only by its own thread.
final class ThreadLookup: @unchecked Sendable {
    weak var observer: BootObserver?
    var client: IPAddress?
    var revision: UInt64 = .max
    var boot: BootTracker.BootInProgress?
}
