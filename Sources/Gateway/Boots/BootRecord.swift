import Foundation
import ICBDCore

/// What one boot of one workstation did, as the gateway saw it (docs/gateway.md "Boots"): from
/// its first script request, through the kernel and initrd, to the booted signal or the disk
/// reads settling. Times are offsets on the gateway's monotonic clock; `started` is for people.
struct BootRecord: Sendable, Equatable {
    /// How a boot went (so far).
    enum Outcome: Sendable, Equatable {
        /// The workstation cannot boot (the reason is on its console); its script asks again.
        case waiting(reason: String)
        /// Booting: a script named a version; neither booted nor settled yet.
        case inProgress
        /// The boot layer sent `GET /boot/{mac}/up`.
        case booted
        /// Kernel and initrd loaded, then no disk read for the quiet time (no booted signal).
        case settled
        /// Kernel and initrd loaded, but still reading at the maximum boot time.
        case unsettled
        case failed(Failure)
        /// The workstation stopped asking while it waited (switched off, or booted elsewhere).
        case abandoned
    }

    /// Why a boot failed; the `reason` label of `icbd_boot_failures_total`.
    enum Failure: String, Sendable {
        /// Its kernel and initrd (or, for `sanboot`, its first disk read) were never sent whole.
        case notLoaded = "not_loaded"
        /// The workstation asked for its script again before the boot booted or settled.
        case restarted
    }

    /// The durations a boot is measured by (the `phase` label of `icbd_boot_seconds`).
    enum Phase: String, Sendable {
        /// First script request → the script that boots (longer than a request only after waiting).
        case script
        /// That script → kernel and initrd sent whole (`sanboot`: the first disk read sent).
        case loaded
        /// That script → the booted signal.
        case booted
        /// That script → the last disk read of a settled boot.
        case settled
    }

    /// The version a script named and the files it told the workstation to load first.
    struct Target: Sendable, Equatable {
        let image: String
        let version: Int64
        /// The kernel and initrd paths (empty for a `sanboot`).
        let loads: Set<String>
    }

    let mac: MACAddress
    /// The client address of the script request (attribution: its later reads).
    var client: IPAddress
    var site: String
    let started: Date
    let startedAt: ContinuousClock.Instant
    var target: Target?
    var outcome: Outcome
    var scriptServedAt: ContinuousClock.Instant?
    var loadedAt: ContinuousClock.Instant?
    var lastReadAt: ContinuousClock.Instant?
    var endedAt: ContinuousClock.Instant?
    /// Scripts served to this boot (more than one: it waited).
    var scripts = 1
    /// File bytes sent to it (kernel, initrd and disk).
    var bytesRead: Int64 = 0
    /// Disk reads sent whole, and their latency percentiles (request to last byte written).
    var diskReads = 0
    var readLatencyP50: Duration?
    var readLatencyP99: Duration?
    /// Reads refused with 503 (admission) and reads that failed otherwise (error status, cut body).
    var unavailable = 0
    var errors = 0

    /// How long each phase took, for the phases this boot reached.
    var phases: [Phase: Duration] {
        var phases: [Phase: Duration] = [:]
        guard let scriptServedAt else { return phases }
        phases[.script] = scriptServedAt - startedAt
        if let loadedAt { phases[.loaded] = loadedAt - scriptServedAt }
        switch outcome {
        case .booted: if let endedAt { phases[.booted] = endedAt - scriptServedAt }
        case .settled: if let lastReadAt { phases[.settled] = lastReadAt - scriptServedAt }
        default: break
        }
        return phases
    }

    var isOpen: Bool {
        switch outcome {
        case .waiting, .inProgress: true
        default: false
        }
    }

    /// Booted or settled.
    var succeeded: Bool { outcome == .booted || outcome == .settled }

    /// A word for the outcome (status page, logs).
    var outcomeText: String {
        switch outcome {
        case .waiting: "waiting"
        case .inProgress: "booting"
        case .booted: "booted"
        case .settled: "settled"
        case .unsettled: "unsettled"
        case .failed(let failure): "failed (\(failure == .notLoaded ? "kernel/initrd not loaded" : "restarted"))"
        case .abandoned: "stopped waiting"
        }
    }
}
