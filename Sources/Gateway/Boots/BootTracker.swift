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
///
/// A read's figures (bytes, counts, latency) go to its boot's ``BootReadFigures`` without the
/// tracker: ``Read/record(_:latency:now:)`` needs no lock, so the many reads of a boot never
/// wait for each other; only a read that may complete the boot's loading comes back
/// (``readLoaded(_:now:)``).
struct BootTracker: Sendable {
    enum Action: Sendable, Equatable {
        /// A workstation began to wait (the gauge of boots waiting at its site goes up)…
        case waitingBegan(BootRecord)
        /// …and stopped waiting (it boots now, went away, or was forgotten).
        case waitingEnded(BootRecord)
        /// A boot ended: its phases, outcome and figures are final.
        case finished(BootRecord)
    }

    /// A read attributed to an open boot: its end is recorded with ``record(_:latency:now:)``,
    /// and handed to ``readLoaded(_:now:)`` when that says so.
    struct Read: Sendable {
        fileprivate let mac: MACAddress
        fileprivate let serial: UInt64
        fileprivate let path: String
        fileprivate let figures: BootReadFigures
        /// The kernel or initrd of the boot's script.
        fileprivate let isLoad: Bool
        /// The boot loads nothing before its disk (`sanboot`): its first disk read loads it.
        fileprivate let loadsNothing: Bool

        /// Records the read's end in its boot's figures; true when the tracker must hear of it
        /// (a kernel or initrd sent whole, or the first disk read of a boot that loads nothing).
        func record(_ result: ReadResult, latency: Duration, now: ContinuousClock.Instant) -> Bool {
            let diskReadsBefore = figures.readEnded(result, isLoad: isLoad, latency: latency, now: now)
            if case .sent = result, isLoad { return true }
            return loadsNothing && diskReadsBefore == 0
        }
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
        let figures: BootReadFigures
        /// The loads (kernel, initrd) sent whole so far.
        var loaded: Set<String> = []
        /// The last script served: quiet is measured from here or the last read's end.
        var lastScript: ContinuousClock.Instant
    }

    private struct Workstation: Sendable {
        var open: OpenBoot?
        /// Finished boots, oldest first.
        var history: [BootRecord] = []
        /// Its last script or signal (its reads are in its open boot's figures).
        var lastHeard: ContinuousClock.Instant

        /// When it was last heard from, reads included.
        var heard: ContinuousClock.Instant {
            max(lastHeard, open?.figures.lastReadEnd ?? lastHeard)
        }
    }

    /// A boot in progress as the reads at its client address see it: what
    /// ``read(of:image:reference:path:)`` needs to attribute a read, without the tracker.
    struct BootInProgress: Sendable {
        fileprivate let mac: MACAddress
        fileprivate let serial: UInt64
        fileprivate let figures: BootReadFigures
        fileprivate let target: BootRecord.Target
    }

    let configuration: BootTrackingConfiguration
    /// Goes up whenever the boots in progress or their client addresses change: a
    /// ``BootInProgress`` looked up at one revision holds until the next.
    private(set) var revision: UInt64 = 0
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
        revision &+= 1
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
                    open.lastScript = now
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
        workstations[mac]?.open = OpenBoot(record: record, serial: nextSerial, figures: BootReadFigures(origin: now), lastScript: now)
        return actions
    }

    /// The boot in progress whose script went to `client`, if any.
    func bootInProgress(at client: IPAddress) -> BootInProgress? {
        guard let mac = clients[client], let open = workstations[mac]?.open, let target = open.record.target,
            open.record.outcome == .inProgress
        else { return nil }
        return BootInProgress(mac: mac, serial: open.serial, figures: open.figures, target: target)
    }

    /// A GET of `path` of `image` at `reference` by the client of `boot`: the read, if it is of
    /// the version the boot's script named (by number); nil otherwise (nothing to record).
    static func read(of boot: BootInProgress, image: String, reference: String, path: String) -> Read? {
        guard boot.target.image == image, Int64(reference) == boot.target.version else { return nil }
        boot.figures.readStarted()
        return Read(
            mac: boot.mac, serial: boot.serial, path: path, figures: boot.figures, isLoad: boot.target.loads.contains(path),
            loadsNothing: boot.target.loads.isEmpty)
    }

    /// A read whose ``Read/record(_:latency:now:)`` returned true: its boot is loaded once each
    /// of its loads was sent whole (a boot that loads nothing: at its first disk read).
    mutating func readLoaded(_ read: Read, now: ContinuousClock.Instant) {
        guard var open = workstations[read.mac]?.open, open.serial == read.serial, open.record.loadedAt == nil,
            let target = open.record.target
        else { return }  // that boot has ended, or loaded already
        if read.isLoad { open.loaded.insert(read.path) }
        if target.loads.isEmpty || open.loaded.isSuperset(of: target.loads) { open.record.loadedAt = now }
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
                } else if open.figures.readsInFlight == 0 {
                    let quietSince = max(open.lastScript, open.figures.lastReadEnd ?? open.lastScript)
                    if now - quietSince >= configuration.settleQuietTime {
                        actions += finish(mac, outcome: loaded ? .settled : .failed(.notLoaded), at: quietSince)
                    }
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

    /// The record of an open boot with its reads' figures so far.
    private static func current(_ open: OpenBoot) -> BootRecord {
        var record = open.record
        open.figures.fill(&record)
        return record
    }

    private mutating func finish(_ mac: MACAddress, outcome: BootRecord.Outcome, at end: ContinuousClock.Instant) -> [Action] {
        guard let open = workstations[mac]?.open else { return [] }
        revision &+= 1
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
            let (mac, oldest) = workstations.min(by: { $0.value.heard < $1.value.heard })
        else { return [] }
        revision &+= 1
        workstations[mac] = nil
        guard let open = oldest.open else { return [] }
        if clients[open.record.client] == mac { clients[open.record.client] = nil }
        if case .waiting = open.record.outcome { return [.waitingEnded(open.record)] }
        return []
    }
}
