import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import ServiceLifecycle
import SwiftProtobuf
import Synchronization

/// Sends the boots that ended to the catalog (`ReportBoots`, docs/gateway.md "Boots"), which
/// keeps them and judges rollouts by them. Boots wait in a bounded queue (the oldest dropped
/// first while the catalog is unreachable) and go in batches of at most
/// ``BootReport/maximumPerReport`` every `interval`, and once more at graceful shutdown.
final class BootReporter: Sendable {
    private struct Queue {
        var boots: [Icbd_Catalog_V1_Boot] = []
        var dropped = 0
    }

    private let catalog: RPCClient
    private let interval: Duration
    private let capacity: Int
    private let queue = Mutex(Queue())
    private let logger: Logger

    init(catalog: RPCClient, interval: Duration, capacity: Int, logger: Logger) {
        self.catalog = catalog
        self.interval = interval
        self.capacity = capacity
        self.logger = logger
    }

    /// Queues a boot that ended with a version (booted, settled, unsettled or failed).
    func finished(_ record: BootRecord) {
        guard let boot = Self.wire(record) else { return }
        queue.withLock { queue in
            if queue.boots.count >= capacity {
                queue.boots.removeFirst()
                queue.dropped += 1
            }
            queue.boots.append(boot)
        }
    }

    /// Sends the queue every `interval` until graceful shutdown, then once more.
    var service: some Service {
        ClosureService { [self] in
            await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.interval)
                    await self.send()
                }
            }
            await send()
        }
    }

    /// Sends what is queued, a batch at a time; a batch the catalog could not take goes back
    /// to the front of the queue (a refused one, which retrying cannot fix, is dropped).
    func send() async {
        let dropped = queue.withLock { queue in
            defer { queue.dropped = 0 }
            return queue.dropped
        }
        if dropped > 0 {
            logger.warning("boots not reported: more boots ended than the queue holds while the catalog was unreachable", metadata: ["dropped": "\(dropped)"])
        }
        while true {
            let batch = queue.withLock { queue -> [Icbd_Catalog_V1_Boot] in
                let batch = Array(queue.boots.prefix(BootReport.maximumPerReport))
                queue.boots.removeFirst(batch.count)
                return batch
            }
            guard !batch.isEmpty else { return }
            do {
                _ = try await catalog.unary(CatalogMethods.reportBoots, .with { $0.boots = batch }, options: RPCCallOptions(timeout: .seconds(10)))
            } catch let error as RPCError where error.code == .invalidArgument || error.code == .permissionDenied {
                logger.error("the catalog refused a report of boots; they are dropped", metadata: ["boots": "\(batch.count)", "error": "\(error)"])
            } catch {
                queue.withLock { queue in
                    // Boots that ended meanwhile stay; the oldest of the batch go if both do not fit.
                    let room = max(0, capacity - queue.boots.count)
                    queue.boots.insert(contentsOf: batch.suffix(room), at: 0)
                    queue.dropped += batch.count - min(room, batch.count)
                }
                logger.debug("boots not reported yet", metadata: ["boots": "\(batch.count)", "error": "\(error)"])
                return
            }
        }
    }

    /// The catalog's message for `record`; nil for a boot without a version or that did not end.
    static func wire(_ record: BootRecord) -> Icbd_Catalog_V1_Boot? {
        guard let target = record.target else { return nil }
        var boot = Icbd_Catalog_V1_Boot()
        switch record.outcome {
        case .booted: boot.outcome = .booted
        case .settled: boot.outcome = .settled
        case .unsettled: boot.outcome = .unsettled
        case .failed(let failure):
            boot.outcome = .failed
            boot.failure = failure.rawValue
        case .waiting, .inProgress, .abandoned: return nil
        }
        boot.mac = record.mac.description
        boot.image = target.image
        boot.version = target.version
        boot.startedMs = record.started.milliseconds
        let phases = record.phases
        if let loaded = phases[.loaded] { boot.loadedMs = Self.milliseconds(loaded) }
        if let up = phases[.booted] ?? phases[.settled] { boot.upMs = Self.milliseconds(up) }
        boot.bytesRead = record.bytesRead
        boot.diskReads = Int64(record.diskReads)
        boot.errors = Int64(record.errors)
        boot.unavailable = Int64(record.unavailable)
        return boot
    }

    private static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }
}
