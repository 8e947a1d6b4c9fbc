import Foundation
import ICBDCore
import ICBDProto

// Rollouts and boots, to and from the wire (docs/catalog.md "Rollouts").

extension Icbd_Catalog_V1_RolloutState {
    package init(_ state: RolloutState) {
        self =
            switch state {
            case .active: .active
            case .paused: .paused
            case .rolledBack: .rolledBack
            case .aborted: .aborted
            case .completed: .completed
            }
    }
}

extension RolloutState {
    public init(wire: Icbd_Catalog_V1_RolloutState) throws {
        switch wire {
        case .active: self = .active
        case .paused: self = .paused
        case .rolledBack: self = .rolledBack
        case .aborted: self = .aborted
        case .completed: self = .completed
        case .unspecified, .UNRECOGNIZED: throw WireDecoding.failure("rollout state", "\(wire)")
        }
    }
}

extension Icbd_Catalog_V1_BootTally {
    package init(_ tally: BootTally) {
        self.init()
        boots = tally.boots
        failed = tally.failed
        up = tally.up
        upMs = tally.upMilliseconds
    }
}

extension BootTally {
    public init(wire: Icbd_Catalog_V1_BootTally) {
        self.init(boots: wire.boots, failed: wire.failed, up: wire.up, upMilliseconds: wire.upMs)
    }
}

extension Icbd_Catalog_V1_Rollout {
    package init(_ rollout: RolloutRecord) {
        self.init()
        image = rollout.image.rawValue
        tag = rollout.tag.rawValue
        id = rollout.id
        fromVersion = rollout.fromVersion
        toVersion = rollout.toVersion
        site = rollout.site?.rawValue ?? ""
        steps = rollout.steps.map { Int32($0) }
        step = Int32(rollout.step)
        state = .init(rollout.state)
        minBoots = rollout.criteria.minimumBoots
        maxFailureRate = rollout.criteria.maximumFailureRate
        maxSlowdown = rollout.criteria.maximumSlowdown
        detail = rollout.detail
        startedMs = rollout.started.milliseconds
        updatedMs = rollout.updated.milliseconds
        progress = .init(rollout.progress)
        revision = rollout.revision.rawValue
    }
}

extension RolloutRecord {
    public init(wire: Icbd_Catalog_V1_Rollout) throws {
        guard !wire.steps.isEmpty, wire.steps.indices.contains(Int(wire.step)) else {
            throw WireDecoding.failure("rollout", "step \(wire.step) of \(wire.steps.count) steps")
        }
        self.init(
            image: try WireDecoding.name(wire.image, "rollout image"), tag: try WireDecoding.name(wire.tag, "rollout tag"), id: wire.id,
            fromVersion: wire.fromVersion, toVersion: wire.toVersion,
            site: wire.site.isEmpty ? nil : try WireDecoding.name(wire.site, "rollout site"), steps: wire.steps.map { Int($0) },
            step: Int(wire.step), state: try RolloutState(wire: wire.state),
            criteria: RolloutCriteria(minimumBoots: wire.minBoots, maximumFailureRate: wire.maxFailureRate, maximumSlowdown: wire.maxSlowdown),
            detail: wire.detail, started: WireDecoding.date(wire.startedMs), updated: WireDecoding.date(wire.updatedMs),
            progress: BootTally(wire: wire.progress), revision: Revision(wire.revision))
    }
}

extension Icbd_Catalog_V1_BootOutcome {
    package init(_ outcome: BootReport.Outcome) {
        self =
            switch outcome {
            case .booted: .booted
            case .settled: .settled
            case .unsettled: .unsettled
            case .failed: .failed
            }
    }
}

extension BootReport.Outcome {
    /// nil for a value that names no outcome.
    package init?(wire: Icbd_Catalog_V1_BootOutcome) {
        switch wire {
        case .booted: self = .booted
        case .settled: self = .settled
        case .unsettled: self = .unsettled
        case .failed: self = .failed
        case .unspecified, .UNRECOGNIZED: return nil
        }
    }
}

extension Icbd_Catalog_V1_Boot {
    package init(_ boot: BootReport) {
        self.init()
        mac = boot.mac.description
        site = boot.site.rawValue
        gateway = boot.gateway.rawValue
        image = boot.image.rawValue
        version = boot.version
        outcome = .init(boot.outcome)
        failure = boot.failure ?? ""
        startedMs = boot.started.milliseconds
        if let loaded = boot.loadedMilliseconds { loadedMs = loaded }
        if let up = boot.upMilliseconds { upMs = up }
        bytesRead = boot.bytesRead
        diskReads = boot.diskReads
        errors = boot.errors
        unavailable = boot.unavailable
    }
}

extension BootReport {
    /// A boot the catalog lists.
    public init(wire: Icbd_Catalog_V1_Boot) throws {
        guard let outcome = BootReport.Outcome(wire: wire.outcome) else { throw WireDecoding.failure("boot outcome", "\(wire.outcome)") }
        let mac: MACAddress
        do { mac = try MACAddress(parsing: wire.mac) } catch { throw WireDecoding.failure("boot", "\(error)") }
        self.init(
            mac: mac, site: try WireDecoding.name(wire.site, "boot site"), gateway: try WireDecoding.name(wire.gateway, "boot gateway"),
            image: try WireDecoding.name(wire.image, "boot image"), version: wire.version, outcome: outcome,
            failure: wire.failure.isEmpty ? nil : wire.failure, started: WireDecoding.date(wire.startedMs),
            loadedMilliseconds: wire.hasLoadedMs ? wire.loadedMs : nil, upMilliseconds: wire.hasUpMs ? wire.upMs : nil,
            bytesRead: wire.bytesRead, diskReads: wire.diskReads, errors: wire.errors, unavailable: wire.unavailable)
    }
}
