import Crypto
import Foundation

/// Where a staged rollout stands (docs/catalog.md "Rollouts").
public enum RolloutState: String, Sendable, Hashable, Codable, CaseIterable {
    /// Its slice boots the new version and grows when the slice's boots meet the criteria.
    case active
    /// Its slice keeps booting the new version, but does not grow.
    case paused
    /// The slice's boots failed the criteria: the tag resolves to the old version for everyone.
    case rolledBack = "rolled_back"
    /// An operator stopped it: the tag resolves to the old version for everyone.
    case aborted
    /// The last step succeeded: the tag points at the new version.
    case completed

    /// Active or paused: the tag resolves per workstation.
    public var isRunning: Bool { self == .active || self == .paused }
}

/// What the boots of a rollout's slice must meet, against the old version's boots, for the
/// slice to grow.
public struct RolloutCriteria: Sendable, Hashable, Codable {
    /// Boots of the new version a step waits for before it is judged.
    public var minimumBoots: Int64
    /// How much higher (0–1, absolute) the slice's failure rate may be than the old version's.
    public var maximumFailureRate: Double
    /// How many times the old version's mean time to up the slice's may take.
    public var maximumSlowdown: Double

    public static let `default` = RolloutCriteria(minimumBoots: 5, maximumFailureRate: 0.1, maximumSlowdown: 1.5)

    public init(minimumBoots: Int64, maximumFailureRate: Double, maximumSlowdown: Double) {
        self.minimumBoots = minimumBoots
        self.maximumFailureRate = maximumFailureRate
        self.maximumSlowdown = maximumSlowdown
    }
}

/// Boots added up: how many ended, how many failed, how many came up and how long they took.
public struct BootTally: Sendable, Hashable, Codable {
    /// Boots that ended (booted, settled, unsettled or failed).
    public var boots: Int64 = 0
    public var failed: Int64 = 0
    /// Boots that came up (booted or settled) and the sum of their times to up.
    public var up: Int64 = 0
    public var upMilliseconds: Int64 = 0

    public init() {}

    public init(boots: Int64, failed: Int64, up: Int64, upMilliseconds: Int64) {
        self.boots = boots
        self.failed = failed
        self.up = up
        self.upMilliseconds = upMilliseconds
    }

    /// Failed ÷ ended; nil before the first boot.
    public var failureRate: Double? { boots == 0 ? nil : Double(failed) / Double(boots) }
    /// Mean time to up in milliseconds; nil before the first boot that came up.
    public var meanUpMilliseconds: Double? { up == 0 ? nil : Double(upMilliseconds) / Double(up) }

    public mutating func add(_ boot: BootReport) {
        var one = BootTally(boots: 1, failed: boot.outcome == .failed ? 1 : 0, up: 0, upMilliseconds: 0)
        if let milliseconds = boot.upMilliseconds, boot.outcome.cameUp {
            one.up = 1
            one.upMilliseconds = milliseconds
        }
        add(one)
    }

    /// Adds `other`; every figure stops at `Int64.max` rather than overflow (a damaged row).
    public mutating func add(_ other: BootTally) {
        func sum(_ a: Int64, _ b: Int64) -> Int64 {
            let (value, overflow) = a.addingReportingOverflow(b)
            return overflow ? (b > 0 ? .max : .min) : value
        }
        boots = sum(boots, other.boots)
        failed = sum(failed, other.failed)
        up = sum(up, other.up)
        upMilliseconds = sum(upMilliseconds, other.upMilliseconds)
    }
}

/// What an operator asks for: move `tag` of `image` to `version` a slice of workstations at a
/// time.
public struct RolloutSpec: Sendable, Hashable {
    public var image: Name
    public var tag: Name
    public var version: Int64
    /// The slices, in basis points of the workstations (1–10000), growing, the last 10000.
    public var steps: [Int]
    /// Only this site's workstations are in the slices; nil: every site.
    public var site: Name?
    public var criteria: RolloutCriteria

    public init(image: Name, tag: Name, version: Int64, steps: [Int], site: Name?, criteria: RolloutCriteria) {
        self.image = image
        self.tag = tag
        self.version = version
        self.steps = steps
        self.site = site
        self.criteria = criteria
    }

    /// At most this many steps.
    public static let maximumSteps = 20
}

/// A staged rollout of one tag of one image (docs/catalog.md "Rollouts"). While it runs the tag
/// still points at `fromVersion`; a workstation in the current step's slice resolves it to
/// `toVersion` instead. One per tag: a new rollout of the tag replaces a finished one.
public struct RolloutRecord: Sendable, Hashable, Codable {
    public var image: Name
    public var tag: Name
    /// The revision it started at: unique, and the seed of its slices.
    public var id: Int64
    public var fromVersion: Int64
    public var toVersion: Int64
    public var site: Name?
    /// Basis points of the workstations per step (1–10000, growing, the last 10000).
    public var steps: [Int]
    /// The current step, an index into `steps`.
    public var step: Int
    public var state: RolloutState
    public var criteria: RolloutCriteria
    /// Why it is where it is (the last decision or control), for people.
    public var detail: String
    public var started: Date
    public var updated: Date
    /// The current step's boots of the new version. Updated by boot reports without a
    /// revision (like a heartbeat's time); a Watch event carries it as of its change.
    public var progress: BootTally
    public var revision: Revision

    public init(
        image: Name, tag: Name, id: Int64, fromVersion: Int64, toVersion: Int64, site: Name?, steps: [Int], step: Int,
        state: RolloutState, criteria: RolloutCriteria, detail: String, started: Date, updated: Date, progress: BootTally,
        revision: Revision
    ) {
        self.image = image
        self.tag = tag
        self.id = id
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.site = site
        self.steps = steps
        self.step = step
        self.state = state
        self.criteria = criteria
        self.detail = detail
        self.started = started
        self.updated = updated
        self.progress = progress
        self.revision = revision
    }

    /// The current step's slice in basis points.
    public var slice: Int { steps.indices.contains(step) ? steps[step] : 0 }

    /// The version the tag resolves to for workstation `mac` at `site`; nil when the rollout
    /// does not run (the tag's own version then). A workstation is in the slice when its
    /// position is below the step's basis points: the slice only grows, so a workstation once
    /// in it stays in it.
    public func version(for mac: MACAddress, at site: Name?) -> Int64? {
        guard state.isRunning else { return nil }
        if let only = self.site, only != site { return fromVersion }
        return Self.position(of: mac, in: id) < slice ? toVersion : fromVersion
    }

    /// Where `mac` falls in rollout `id`, 0..<10000: the first eight bytes of
    /// SHA-256("icbd.rollout.v1" | id: i64 BE | MAC's six bytes), modulo 10000. The same on
    /// every gateway and after every restart; independent between rollouts.
    public static func position(of mac: MACAddress, in id: Int64) -> Int {
        var hash = SHA256()
        hash.update(data: Array("icbd.rollout.v1".utf8))
        withUnsafeBytes(of: id.bigEndian) { hash.update(bufferPointer: $0) }
        hash.update(data: mac.bytes)
        let value = hash.finalize().prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(value % 10_000)
    }

    /// Basis points as a percentage for people: `5 %`, `2.5 %`.
    public static func percent(_ basisPoints: Int) -> String {
        basisPoints % 100 == 0 ? "\(basisPoints / 100) %" : String(format: "%.2f %%", Double(basisPoints) / 100)
    }
}

/// One finished boot, as a gateway reports it to the catalog (docs/gateway.md "Boots").
public struct BootReport: Sendable, Hashable, Codable {
    public enum Outcome: String, Sendable, Hashable, Codable, CaseIterable {
        case booted, settled, unsettled, failed

        /// Booted or settled.
        public var cameUp: Bool { self == .booted || self == .settled }
    }

    public var mac: MACAddress
    /// The site the boot counts at: the registered site of the gateway that served it.
    public var site: Name
    public var gateway: Name
    public var image: Name
    public var version: Int64
    public var outcome: Outcome
    /// For a failed boot: `not_loaded` or `restarted`.
    public var failure: String?
    public var started: Date
    /// Script → kernel and initrd loaded.
    public var loadedMilliseconds: Int64?
    /// Script → booted signal, or → last disk read of a settled boot.
    public var upMilliseconds: Int64?
    public var bytesRead: Int64
    public var diskReads: Int64
    public var errors: Int64
    public var unavailable: Int64

    /// Finished boots the catalog keeps per workstation, and in all (the oldest go first).
    public static let keptPerWorkstation = 10
    public static let keptInAll = 100_000
    /// Boots one report may carry.
    public static let maximumPerReport = 256
    /// Phase times are clamped to this (an hour): longer is a gateway's mistake.
    public static let maximumMilliseconds: Int64 = 3_600_000

    public init(
        mac: MACAddress, site: Name, gateway: Name, image: Name, version: Int64, outcome: Outcome, failure: String?, started: Date,
        loadedMilliseconds: Int64?, upMilliseconds: Int64?, bytesRead: Int64, diskReads: Int64, errors: Int64, unavailable: Int64
    ) {
        self.mac = mac
        self.site = site
        self.gateway = gateway
        self.image = image
        self.version = version
        self.outcome = outcome
        self.failure = failure
        self.started = started
        self.loadedMilliseconds = loadedMilliseconds
        self.upMilliseconds = upMilliseconds
        self.bytesRead = bytesRead
        self.diskReads = diskReads
        self.errors = errors
        self.unavailable = unavailable
    }
}
