import Testing

@testable import CacheNode

@Suite("Boot profile recording as a pure state machine")
struct BootProfileRecorderTests {
    let key = BootProfileRecorder.Key(image: "win11", version: 3)

    func position(_ index: UInt32) -> BootProfile.Position { .init(path: "disk.raw", index: index) }

    @Test func recordsFirstReadsInOrderWithinTheWindow() {
        var recorder = BootProfileRecorder(window: .seconds(60))
        let start = ContinuousClock.now
        for (offset, index) in [7, 3, 7, 9, 3].enumerated() {
            #expect(recorder.read(key, position(UInt32(index)), at: start + .seconds(offset)) == nil)
        }
        #expect(recorder.tick(at: start + .seconds(30)).isEmpty)
        let profiles = recorder.tick(at: start + .seconds(61))
        #expect(profiles.map(\.positions) == [[position(7), position(3), position(9)]])
        // Each with when it was first read, counted from the version's first read.
        #expect(profiles.first?.entries.map(\.offsetMilliseconds) == [0, 1000, 3000])
        // Recorded once: later reads of the version start nothing.
        #expect(recorder.read(key, position(1), at: start + .seconds(100)) == nil)
        #expect(recorder.tick(at: start + .seconds(1000)).isEmpty)
    }

    @Test func aFullProfileEndsAtItsLimitAndKnownVersionsAreSkipped() {
        var recorder = BootProfileRecorder(window: .seconds(60), limit: 2)
        let now = ContinuousClock.now
        #expect(recorder.read(key, position(1), at: now) == nil)
        #expect(recorder.read(key, position(2), at: now)?.positions == [position(1), position(2)])
        let other = BootProfileRecorder.Key(image: "win11", version: 4)
        recorder.skip(other)
        #expect(recorder.read(other, position(1), at: now) == nil)
        #expect(recorder.tick(at: now + .seconds(120)).isEmpty)
    }
}
