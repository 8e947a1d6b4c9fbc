import Foundation
import ICBDCore

/// The boots of every workstation the gateway hears from, as a state machine without I/O or
/// clock: each event (a script served, a read starting or ending, a booted signal, a sweep) is
/// given the time and returns what the caller must do (``Action``: metrics, logs).
///
/// Attribution (docs/gateway.md "Boots"): a script request opens a boot for its MAC at the
/// request's client address; a later file read from that address, of the very version the
/// script named (by number), belongs to that boot. A booted signal counts only from that
/// address too. Bounded: `maximumWorkstations` workstations (the one least recently heard from
/// is forgotten first), `bootsPerWorkstation` finished boots each, one open boot each.
struct BootTracker: Sendable {
    enum Action: Sendable, Equatable {
        /// A workstation began to wait (the gauge of boots waiting at its site goes up)…
        case waitingBegan(BootRecord)
        /// …and stopped waiting (it boots now, went away, or was forgotten).
        case waitingEnded(BootRecord)
        /// A boot ended: its phases, outcome and figures are final.
        case finished(BootRecord)
    }

    /// A read attributed to an open boot, to be handed back to ``readEnded(_:result:latency:now:)``.
    struct Read: Sendable {
        fileprivate let mac: MACAddress
        fileprivate let serial: UInt64
        fileprivate let path: String
    }

    enum ReadResult: Sendable {
        /// The body was written whole (`bytes` of it).
        case sent(bytes: Int)
        /// Refused with this status (503: admission) before any body.
        case refused(status: Int)
        /// The body broke off.
        case cut
    }

    private struct OpenBoot: Sendable {
        var record: BootRecord
        let serial: UInt64
        var latency = LatencySketch()
        var loaded: Set<String> = []
        var readsInFlight = 0
        /// The script or the last read's end: quiet is measured from here.
        var lastActivity: ContinuousClock.Instant
    }

    private struct Workstation: Sendable {
        var open: OpenBoot?
        /// Finished boots, oldest first.
        var history: [BootRecord] = []
        var lastHeard: ContinuousClock.Instant
    }

    let configuration: BootTrackingConfiguration
    private var workstations: [MACAddress: Workstation] = [:]
    /// Client address → the MAC whose boot in progress asked for its script from there.
    private var clients: [IPAddress: MACAddress] = [:]
    private var nextSerial: UInt64 = 0

    init(configuration: BootTrackingConfiguration) {
        self.configuration = configuration
    }

    // MARK: Events

    /// A script was served to `mac` at `client`: one that boots `target`, or (target nil) a
    /// waiting script saying `waitingReason`.
    mutating func scriptServed(
        mac: MACAddress, client: IPAddress, site: String, target: BootRecord.Target?, waitingReason: String,
        now: ContinuousClock.Instant, date: Date
    ) -> [Action] {
        var actions: [Action] = []
        if workstations[mac] == nil {
            actions += makeRoom()
            workstations[mac] = Workstation(lastHeard: now)
        }
        workstations[mac]?.lastHeard = now
        if var open = workstations[mac]?.open {
            switch open.record.outcome {
            case .waiting:
                open.record.scripts += 1
                if let target {
                    // It may boot now: the same boot goes on, its waiting time in the script phase.
                    actions.append(.waitingEnded(open.record))
                    open.record.client = client
                    open.record.target = target
                    open.record.outcome = .inProgress
                    open.record.scriptServedAt = now
                    open.lastActivity = now
                    clients[client] = mac
                } else {
                    open.record.outcome = .waiting(reason: waitingReason)
                }
                workstations[mac]?.open = open
                return actions
            default:
                actions += finish(mac, outcome: .failed(.restarted), at: now)
            }
        }
        nextSerial += 1
        var record = BootRecord(
            mac: mac, client: client, site: site, started: date, startedAt: now, target: target,
            outcome: target == nil ? .waiting(reason: waitingReason) : .inProgress)
        if target != nil {
            record.scriptServedAt = now
            clients[client] = mac
        } else {
            actions.append(.waitingBegan(record))
        }
        workstations[mac]?.open = OpenBoot(record: record, serial: nextSerial, lastActivity: now)
        return actions
    }

    /// A GET of a file from `client`: the read, if it belongs to a boot in progress (the version
    /// its script named, by number); nil otherwise (nothing to record).
    mutating func readStarted(client: IPAddress, image: String, reference: String, path: String, now: ContinuousClock.Instant) -> Read? {
        guard let mac = clients[client], var open = workstations[mac]?.open, let target = open.record.target,
            open.record.outcome == .inProgress, target.image == image, reference == String(target.version)
        else { return nil }
        open.readsInFlight += 1
        workstations[mac]?.open = open
        workstations[mac]?.lastHeard = now
        return Read(mac: mac, serial: open.serial, path: path)
    }

    /// The end of a read ``readStarted(client:image:reference:path:now:)`` attributed.
    mutating func readEnded(_ read: Read, result: ReadResult, latency: Duration, now: ContinuousClock.Instant) {
        guard var open = workstations[read.mac]?.open, open.serial == read.serial else { return }  // that boot has ended
        open.readsInFlight -= 1
        open.lastActivity = now
        let isLoad = open.record.target?.loads.contains(read.path) ?? false
        switch result {
        case .sent(let bytes):
            open.record.bytesRead += Int64(bytes)
            open.record.lastReadAt = now
            if isLoad {
                open.loaded.insert(read.path)
            } else {
                open.record.diskReads += 1
                open.latency.record(latency)
            }
            if open.record.loadedAt == nil, let target = open.record.target,
                target.loads.isEmpty ? open.record.diskReads > 0 : open.loaded.isSuperset(of: target.loads)
            {
                open.record.loadedAt = now
            }
        case .refused(status: 503): open.record.unavailable += 1
        case .refused, .cut: open.record.errors += 1
        }
        workstations[read.mac]?.open = open
    }

    /// `GET /boot/{mac}/up` from `client`: the boot in progress of `mac` booted, if that boot's
    /// script went to the same address (a signal from elsewhere is ignored).
    mutating func bootedSignal(mac: MACAddress, client: IPAddress, now: ContinuousClock.Instant) -> [Action] {
        guard let open = workstations[mac]?.open, open.record.outcome == .inProgress, open.record.client == client else { return [] }
        workstations[mac]?.lastHeard = now
        return finish(mac, outcome: .booted, at: now)
    }

    /// Ends the boots that settled, failed to load, ran past the maximum boot time, or stopped
    /// asking while they waited.
    mutating func sweep(now: ContinuousClock.Instant) -> [Action] {
        var actions: [Action] = []
        for (mac, workstation) in workstations {
            guard let open = workstation.open else { continue }
            switch open.record.outcome {
            case .waiting:
                if now - workstation.lastHeard > configuration.waitingRetry * 3 { actions += finish(mac, outcome: .abandoned, at: now) }
            case .inProgress:
                let loaded = open.record.loadedAt != nil
                if let served = open.record.scriptServedAt, now - served >= configuration.maximumBootTime {
                    actions += finish(mac, outcome: loaded ? .unsettled : .failed(.notLoaded), at: now)
                } else if open.readsInFlight == 0, now - open.lastActivity >= configuration.settleQuietTime {
                    actions += finish(mac, outcome: loaded ? .settled : .failed(.notLoaded), at: open.lastActivity)
                }
            default: break
            }
        }
        return actions
    }

    // MARK: Reads

    /// Every boot held, open and finished, newest first.
    var records: [BootRecord] {
        var records: [BootRecord] = []
        for workstation in workstations.values {
            records += workstation.history
            if let open = workstation.open { records.append(Self.current(open)) }
        }
        return records.sorted { $0.startedAt > $1.startedAt }
    }

    var workstationCount: Int { workstations.count }

    /// Whether some boot in progress may own a read.
    var isFollowingReads: Bool { !clients.isEmpty }

    // MARK: Helpers

    /// The record of an open boot with its read latency so far.
    private static func current(_ open: OpenBoot) -> BootRecord {
        var record = open.record
        record.readLatencyP50 = open.latency.percentile(0.5)
        record.readLatencyP99 = open.latency.percentile(0.99)
        return record
    }

    private mutating func finish(_ mac: MACAddress, outcome: BootRecord.Outcome, at end: ContinuousClock.Instant) -> [Action] {
        guard let open = workstations[mac]?.open else { return [] }
        var actions: [Action] = []
        if case .waiting = open.record.outcome { actions.append(.waitingEnded(open.record)) }
        var record = Self.current(open)
        record.outcome = outcome
        record.endedAt = end
        if clients[record.client] == mac { clients[record.client] = nil }
        workstations[mac]?.open = nil
        workstations[mac]?.history.append(record)
        if let count = workstations[mac]?.history.count, count > configuration.bootsPerWorkstation {
            workstations[mac]?.history.removeFirst(count - configuration.bootsPerWorkstation)
        }
        actions.append(.finished(record))
        return actions
    }

    /// Forgets the workstation least recently heard from when the bound is reached (its boot in
    /// progress, if any, is dropped unrecorded; a waiting one stops counting as waiting).
    private mutating func makeRoom() -> [Action] {
        guard workstations.count >= configuration.maximumWorkstations,
            let (mac, oldest) = workstations.min(by: { $0.value.lastHeard < $1.value.lastHeard })
        else { return [] }
        workstations[mac] = nil
        guard let open = oldest.open else { return [] }
        if clients[open.record.client] == mac { clients[open.record.client] = nil }
        if case .waiting = open.record.outcome { return [.waitingEnded(open.record)] }
        return []
    }
}
