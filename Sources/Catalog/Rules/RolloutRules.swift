import Foundation
import ICBDCore

/// The rules of staged rollouts (docs/catalog.md "Rollouts") as plain functions: what a start
/// needs, what pause, resume and abort do, and the state machine that judges a step by its
/// boots and decides what happens next. The store loads, asks and writes what they decide.
public enum RolloutRules {
    /// What the boots of a step decide.
    public enum Decision: Sendable, Equatable {
        /// Not enough boots yet, or the rollout is not active: nothing changes.
        case wait
        /// The step met the criteria: the slice grows to step `to`.
        case advance(to: Int, detail: String)
        /// The last step met the criteria: the tag moves to the new version.
        case complete(detail: String)
        /// The step failed the criteria: everyone goes back to the old version.
        case rollBack(detail: String)
    }

    /// An operator's word.
    public enum Control: String, Sendable, CaseIterable {
        case pause, resume, abort
    }

    /// Checks an operator's rollout: the steps and criteria, the tag (not `latest`, on a ready
    /// version, without a rollout running), the new version (ready, not the tag's).
    public static func checkStart(
        _ spec: RolloutSpec, tag: TagRecord?, version: VersionRecord?, running: RolloutRecord?
    ) throws(CatalogStoreError) -> (from: Int64, to: Int64) {
        try checkSteps(spec.steps)
        try checkCriteria(spec.criteria)
        guard spec.tag != Name.latestTag else {
            throw .invalid("'latest' follows every publish and cannot be rolled out; roll out a tag such as 'stable'")
        }
        guard let tag else {
            throw .notFound("image '\(spec.image)' has no tag '\(spec.tag)'; create it with: icbd image tag \(spec.image) \(spec.tag) VERSION")
        }
        if let running, running.state.isRunning {
            throw .precondition(
                "tag '\(spec.tag)' of image '\(spec.image)' is in a rollout to version \(running.toVersion) (\(running.state.rawValue)); abort it first: icbd rollout abort \(spec.image) \(spec.tag)")
        }
        guard let version else { throw .notFound("image '\(spec.image)' has no version \(spec.version)") }
        guard version.state == .ready else {
            throw .precondition("version \(spec.version) of image '\(spec.image)' is \(version.state.rawValue); only a ready version can be rolled out")
        }
        guard version.number != tag.version else {
            throw .precondition("tag '\(spec.tag)' of image '\(spec.image)' points at version \(spec.version) already")
        }
        return (tag.version, version.number)
    }

    /// Steps: 1 to ``RolloutSpec/maximumSteps`` of them, each 1–10000 basis points, growing,
    /// the last 10000 (everyone).
    public static func checkSteps(_ steps: [Int]) throws(CatalogStoreError) {
        guard (1...RolloutSpec.maximumSteps).contains(steps.count) else {
            throw .invalid("steps: give 1 to \(RolloutSpec.maximumSteps) steps, not \(steps.count)")
        }
        for (index, step) in steps.enumerated() {
            guard (1...10_000).contains(step) else { throw .invalid("steps[\(index)]: \(step) basis points is not within 1 to 10000") }
            guard index == 0 || step > steps[index - 1] else {
                throw .invalid("steps[\(index)]: each step must be larger than the one before (\(steps[index - 1]), not \(step))")
            }
        }
        guard steps.last == 10_000 else { throw .invalid("steps: the last step must be 100 % (10000 basis points)") }
    }

    public static func checkCriteria(_ criteria: RolloutCriteria) throws(CatalogStoreError) {
        guard (1...1_000_000).contains(criteria.minimumBoots) else {
            throw .invalid("min_boots: \(criteria.minimumBoots) is not within 1 to 1000000")
        }
        guard criteria.maximumFailureRate.isFinite, (0...1).contains(criteria.maximumFailureRate) else {
            throw .invalid("max_failure_rate: \(criteria.maximumFailureRate) is not within 0 to 1")
        }
        guard criteria.maximumSlowdown.isFinite, criteria.maximumSlowdown >= 1, criteria.maximumSlowdown <= 1000 else {
            throw .invalid("max_slowdown: \(criteria.maximumSlowdown) is not within 1 to 1000")
        }
    }

    /// The rollout after an operator's `control`, or why it cannot.
    public static func apply(_ control: Control, to rollout: RolloutRecord, at now: Date) throws(CatalogStoreError) -> RolloutRecord {
        let what = "the rollout of '\(rollout.image):\(rollout.tag)' to version \(rollout.toVersion)"
        var next = rollout
        next.updated = now
        switch (control, rollout.state) {
        case (.pause, .active):
            next.state = .paused
            next.detail = "paused by an operator at step \(rollout.step + 1) (\(RolloutRecord.percent(rollout.slice)))"
        case (.resume, .paused):
            next.state = .active
            next.detail = "resumed by an operator at step \(rollout.step + 1) (\(RolloutRecord.percent(rollout.slice)))"
        case (.abort, .active), (.abort, .paused):
            next.state = .aborted
            next.detail = "aborted by an operator at step \(rollout.step + 1): every workstation boots version \(rollout.fromVersion)"
        case (.pause, .paused), (.resume, .active):
            return rollout
        default:
            throw .precondition("\(what) is \(rollout.state.rawValue); only a running rollout can be paused, resumed or aborted")
        }
        return next
    }

    /// Judges the current step of an active rollout by its slice's boots (`rollout.progress`)
    /// against the old version's (`baseline`): nothing before `minimumBoots`; then a roll-back
    /// when the failure rate exceeds the old one's by more than `maximumFailureRate`, or the mean
    /// time to up is more than `maximumSlowdown` times the old one's (when both have one); else
    /// the next step, or completion after the last.
    public static func decide(_ rollout: RolloutRecord, baseline: BootTally) -> Decision {
        let progress = rollout.progress
        guard rollout.state == .active, progress.boots >= rollout.criteria.minimumBoots else { return .wait }
        let new = "version \(rollout.toVersion)"
        let old = "version \(rollout.fromVersion)"
        let failureRate = progress.failureRate ?? 0
        let baselineRate = baseline.failureRate ?? 0
        if failureRate > baselineRate + rollout.criteria.maximumFailureRate {
            return .rollBack(
                detail: "rolled back at step \(rollout.step + 1) (\(RolloutRecord.percent(rollout.slice))): \(progress.failed) of \(progress.boots) boots of \(new) failed (\(percent(failureRate))), \(old) \(percent(baselineRate)) of \(baseline.boots); at most \(percent(rollout.criteria.maximumFailureRate)) more is allowed")
        }
        if let newUp = progress.meanUpMilliseconds, let oldUp = baseline.meanUpMilliseconds, oldUp > 0,
            newUp / oldUp > rollout.criteria.maximumSlowdown
        {
            return .rollBack(
                detail: "rolled back at step \(rollout.step + 1) (\(RolloutRecord.percent(rollout.slice))): boots of \(new) took \(seconds(newUp)) to come up on average, \(String(format: "%.2f", newUp / oldUp))× the \(seconds(oldUp)) of \(old); at most \(String(format: "%.2f", rollout.criteria.maximumSlowdown))× is allowed")
        }
        let judged = "\(progress.boots) boots of \(new), \(progress.failed) failed"
        guard rollout.step + 1 < rollout.steps.count else {
            return .complete(detail: "completed after step \(rollout.step + 1) (\(judged)): tag '\(rollout.tag)' points at \(new)")
        }
        let next = rollout.step + 1
        return .advance(
            to: next, detail: "step \(next + 1) (\(RolloutRecord.percent(rollout.steps[next]))) after step \(rollout.step + 1) met the criteria (\(judged))")
    }

    /// The rollout after `decision` at `now` (unchanged for `.wait`).
    public static func applying(_ decision: Decision, to rollout: RolloutRecord, at now: Date) -> RolloutRecord {
        var next = rollout
        switch decision {
        case .wait: return rollout
        case .advance(let step, let detail):
            next.step = step
            next.progress = BootTally()
            next.detail = detail
        case .complete(let detail):
            next.state = .completed
            next.detail = detail
        case .rollBack(let detail):
            next.state = .rolledBack
            next.detail = detail
        }
        next.updated = now
        return next
    }

    /// Whether a running rollout keeps `number` of `image` from being retired.
    public static func holds(_ rollouts: [RolloutRecord], version number: Int64) -> RolloutRecord? {
        rollouts.first { $0.state.isRunning && ($0.fromVersion == number || $0.toVersion == number) }
    }

    private static func percent(_ rate: Double) -> String { String(format: "%.1f %%", rate * 100) }
    private static func seconds(_ milliseconds: Double) -> String { String(format: "%.1f s", milliseconds / 1000) }
}
