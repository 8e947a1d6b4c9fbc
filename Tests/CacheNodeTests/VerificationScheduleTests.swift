import Testing

@testable import CacheNode

@Suite("When held chunks are verified")
struct VerificationScheduleTests {
    let start = ContinuousClock.now
    let a = chunk(1).0
    let b = chunk(2).0
    let c = chunk(3).0

    @Test func entriesFoundAtStartAreDueAndScrubbedFirst() {
        var schedule = VerificationSchedule(interval: .seconds(60))
        schedule.loaded(a)
        schedule.verified(b, at: start)
        #expect(schedule.isDue(a, at: start))
        #expect(!schedule.isDue(b, at: start + .seconds(59)))
        #expect(schedule.isDue(b, at: start + .seconds(60)))
        #expect(schedule.nextDue(at: start) { _ in true } == a)
        #expect(schedule.nextDue(at: start) { _ in true } == nil)
    }

    @Test func theScrubberTakesTheOldestVerificationOnceItIsDue() {
        var schedule = VerificationSchedule(interval: .seconds(60))
        schedule.verified(a, at: start)
        schedule.verified(b, at: start + .seconds(10))
        schedule.verified(c, at: start + .seconds(20))
        schedule.verified(a, at: start + .seconds(30))  // read and verified again: b is now oldest
        #expect(schedule.nextDue(at: start + .seconds(69)) { _ in true } == nil)
        #expect(schedule.nextDue(at: start + .seconds(70)) { _ in true } == b)
        #expect(schedule.nextDue(at: start + .seconds(100)) { _ in true } == c)
        #expect(schedule.nextDue(at: start + .seconds(100)) { _ in true } == a)
    }

    @Test func forgottenAndEvictedEntriesAreNotScrubbed() {
        var schedule = VerificationSchedule(interval: .seconds(60))
        schedule.loaded(a)
        schedule.loaded(b)
        schedule.verified(c, at: start)
        schedule.forget(c)
        #expect(schedule.isDue(c, at: start))
        #expect(schedule.nextDue(at: start + .seconds(600)) { $0 != b } == a)
        #expect(schedule.nextDue(at: start + .seconds(600)) { $0 != b } == nil)
    }

    @Test func reverifyingWithoutAScrubberKeepsTheOrderAndTheQueueSmall() {
        var schedule = VerificationSchedule(interval: .seconds(60))
        schedule.verified(a, at: start)
        schedule.verified(b, at: start + .seconds(1))
        for second in 2..<5000 { schedule.verified(c, at: start + .seconds(second)) }
        #expect(schedule.pendingMarks <= 2 * 3 + 1024)
        let due = start + .seconds(10_000)
        #expect([schedule.nextDue(at: due) { _ in true }, schedule.nextDue(at: due) { _ in true }, schedule.nextDue(at: due) { _ in true }] == [a, b, c])
    }

    @Test func aZeroIntervalMakesEveryReadDue() {
        var schedule = VerificationSchedule(interval: .zero)
        schedule.verified(a, at: start)
        #expect(schedule.isDue(a, at: start))
    }
}
