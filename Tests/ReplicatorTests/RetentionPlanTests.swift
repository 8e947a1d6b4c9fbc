import Replicator
import Testing

@Suite("Retention")
struct RetentionPlanTests {
    let ready: [Int64: RetentionPlan.State] = [1: .ready, 2: .ready, 3: .ready, 4: .ready, 5: .ready]

    @Test func keepsTheNewestN() {
        #expect(RetentionPlan(present: [1, 2, 3, 4, 5], states: ready, tagged: [], keep: 2, neededByOtherSites: []).delete == [1, 2, 3])
    }

    @Test func neverDeletesATaggedVersionOrAnotherSitesNextParent() {
        let plan = RetentionPlan(present: [1, 2, 3, 4, 5], states: ready, tagged: [1], keep: 2, neededByOtherSites: [3])
        #expect(plan.delete == [2])
    }

    @Test func neverDeletesAVersionOfARunningRollout() {
        // A tag rolls out from 1 to 2: the rollout alone keeps both (keep 2 would delete 1, 2, 3).
        let plan = RetentionPlan(present: [1, 2, 3, 4, 5], states: ready, tagged: [], keep: 2, neededByOtherSites: [], inRunningRollouts: [1, 2])
        #expect(plan.delete == [3])
        #expect(plan.keptForRollouts == [1, 2])
    }

    @Test func retiredVersionsGoWhateverTheCount() {
        var states = ready
        states[5] = .retired
        #expect(RetentionPlan(present: [4, 5], states: states, tagged: [], keep: 3, neededByOtherSites: []).delete == [5])
    }

    @Test func publishingAndUnknownVersionsAreLeftToRecovery() {
        let states: [Int64: RetentionPlan.State] = [1: .ready, 2: .publishing]
        #expect(RetentionPlan(present: [1, 2, 3], states: states, tagged: [], keep: 1, neededByOtherSites: []).delete == [])
    }

    @Test func keepsAtLeastOne() {
        #expect(RetentionPlan(present: [1, 2], states: ready, tagged: [], keep: 0, neededByOtherSites: []).delete == [1])
    }
}
