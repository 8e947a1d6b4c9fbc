import Catalog
import Foundation
import ICBDCore
import Testing

/// The rollout state machine and slices as plain functions (docs/catalog.md "Rollouts").
@Suite("Catalog: rollout rules")
struct RolloutRulesTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func rollout(step: Int = 0, state: RolloutState = .active, progress: BootTally = BootTally()) throws -> RolloutRecord {
        RolloutRecord(
            image: try Name("linux"), tag: try Name("stable"), id: 42, fromVersion: 1, toVersion: 2, site: nil, steps: [500, 2500, 10_000],
            step: step, state: state, criteria: RolloutCriteria(minimumBoots: 4, maximumFailureRate: 0.1, maximumSlowdown: 1.5),
            detail: "", started: now, updated: now, progress: progress, revision: 42)
    }

    static let healthyOld = BootTally(boots: 10, failed: 1, up: 9, upMilliseconds: 90_000)

    @Test func aStepWaitsForItsMinimumBootsThenAdvancesCompletesOrRollsBack() throws {
        // Below min-boots nothing happens, however bad.
        #expect(RolloutRules.decide(try Self.rollout(progress: BootTally(boots: 3, failed: 3, up: 0, upMilliseconds: 0)), baseline: Self.healthyOld) == .wait)
        // Healthy: the next step; after the last, completion.
        let healthy = BootTally(boots: 4, failed: 0, up: 4, upMilliseconds: 48_000)
        guard case .advance(to: 1, let detail) = RolloutRules.decide(try Self.rollout(progress: healthy), baseline: Self.healthyOld) else {
            Issue.record("a healthy first step advances")
            return
        }
        #expect(detail.contains("step 2 (25 %)"))
        guard case .complete = RolloutRules.decide(try Self.rollout(step: 2, progress: healthy), baseline: Self.healthyOld) else {
            Issue.record("a healthy last step completes")
            return
        }
        // A failure rate 10 points above the old one's is allowed, more is not (old: 10 %).
        #expect(RolloutRules.decide(try Self.rollout(progress: BootTally(boots: 5, failed: 1, up: 4, upMilliseconds: 40_000)), baseline: Self.healthyOld) != .wait)
        guard case .rollBack(let failures) = RolloutRules.decide(try Self.rollout(progress: BootTally(boots: 4, failed: 2, up: 2, upMilliseconds: 20_000)), baseline: Self.healthyOld) else {
            Issue.record("a failing slice rolls back")
            return
        }
        #expect(failures.contains("2 of 4 boots of version 2 failed (50.0 %), version 1 10.0 % of 10"), "\(failures)")
        // Slower than 1.5× the old mean time to up (10 s): rolled back.
        guard case .rollBack(let slow) = RolloutRules.decide(try Self.rollout(progress: BootTally(boots: 4, failed: 0, up: 4, upMilliseconds: 64_000)), baseline: Self.healthyOld) else {
            Issue.record("a slow slice rolls back")
            return
        }
        #expect(slow.contains("1.60×"), "\(slow)")
        // No old boots: the failure rate is judged against 0, time is not judged.
        #expect(RolloutRules.decide(try Self.rollout(progress: BootTally(boots: 4, failed: 0, up: 4, upMilliseconds: 400_000)), baseline: BootTally()) != .wait)
        // A paused rollout is never judged.
        #expect(RolloutRules.decide(try Self.rollout(state: .paused, progress: BootTally(boots: 9, failed: 9, up: 0, upMilliseconds: 0)), baseline: Self.healthyOld) == .wait)
    }

    @Test func applyingADecisionResetsTheStepsProgress() throws {
        let rollout = try Self.rollout(progress: BootTally(boots: 4, failed: 0, up: 4, upMilliseconds: 4000))
        let advanced = RolloutRules.applying(.advance(to: 1, detail: "next"), to: rollout, at: Self.now)
        #expect(advanced.step == 1 && advanced.progress == BootTally() && advanced.state == .active && advanced.detail == "next")
        #expect(RolloutRules.applying(.rollBack(detail: "bad"), to: rollout, at: Self.now).state == .rolledBack)
        #expect(RolloutRules.applying(.complete(detail: "done"), to: rollout, at: Self.now).state == .completed)
        #expect(RolloutRules.applying(.wait, to: rollout, at: Self.now) == rollout)
    }

    @Test func operatorsPauseResumeAndAbortOnlyRunningRollouts() throws {
        let paused = try RolloutRules.apply(.pause, to: try Self.rollout(), at: Self.now)
        #expect(paused.state == .paused)
        #expect(try RolloutRules.apply(.resume, to: paused, at: Self.now).state == .active)
        #expect(try RolloutRules.apply(.abort, to: paused, at: Self.now).state == .aborted)
        #expect(try RolloutRules.apply(.pause, to: paused, at: Self.now) == paused, "pausing twice changes nothing")
        for state in [RolloutState.rolledBack, .aborted, .completed] {
            #expect(throws: CatalogStoreError.self) { try RolloutRules.apply(.resume, to: try Self.rollout(state: state), at: Self.now) }
        }
    }

    @Test func slicesAreDeterministicAndOnlyGrow() throws {
        let macs = try (0..<4000).map { try MACAddress(parsing: String(format: "52:54:00:%02x:%02x:%02x", $0 >> 16, ($0 >> 8) & 0xff, $0 & 0xff)) }
        var rollout = try Self.rollout()
        var previous: Set<MACAddress> = []
        for (step, basisPoints) in rollout.steps.enumerated() {
            rollout.step = step
            let slice = Set(macs.filter { rollout.version(for: $0, at: nil) == 2 })
            #expect(previous.isSubset(of: slice), "a workstation in a slice stays in it")
            // About the step's share (a 4000-workstation sample of a uniform hash).
            let share = Double(slice.count) / Double(macs.count)
            #expect(abs(share - Double(basisPoints) / 10_000) < 0.03, "step \(step): \(share)")
            previous = slice
        }
        #expect(previous.count == macs.count, "100 %: everyone")
        // Another rollout draws other slices; a site rollout leaves other sites on the old version.
        rollout.step = 0
        var other = rollout
        other.id = 43
        #expect(macs.filter { rollout.version(for: $0, at: nil) == 2 } != macs.filter { other.version(for: $0, at: nil) == 2 })
        rollout.site = try Name("hq")
        rollout.step = 2
        #expect(macs.allSatisfy { rollout.version(for: $0, at: try? Name("branch")) == 1 })
        #expect(macs.allSatisfy { rollout.version(for: $0, at: try? Name("hq")) == 2 })
        // Not running: the tag's own version.
        rollout.state = .rolledBack
        #expect(macs.allSatisfy { rollout.version(for: $0, at: try? Name("hq")) == nil })
    }
}
