import Foundation
import ICBDCore
import Testing

@testable import Gateway

/// The boot state machine as a plain value: every event is given its time, so phases and
/// settling are exact, with no clock in the test.
@Suite("Boot tracking, as a state machine")
struct BootTrackerTests {
    let mac = try! MACAddress(parsing: "52:54:00:00:00:01")
    let client = try! IPAddress(parsing: "10.1.0.7")
    let target = BootRecord.Target(image: "linux", version: 3, loads: ["vmlinuz", "initrd.img"])
    let t0 = ContinuousClock.now
    let date = Date(timeIntervalSince1970: 1_800_000_000)

    func at(_ milliseconds: Int) -> ContinuousClock.Instant { t0 + .milliseconds(milliseconds) }

    func tracker(_ change: (inout BootTrackingConfiguration) -> Void = { _ in }) -> BootTracker {
        var configuration = BootTrackingConfiguration()
        change(&configuration)
        return BootTracker(configuration: configuration)
    }

    /// One read of `path` by `client`, from `start` to `end` ms, sent whole (`bytes`), refused or cut.
    func read(
        _ tracker: inout BootTracker, _ path: String, from start: Int, to end: Int, result: BootTracker.ReadResult = .sent(bytes: 1000),
        client: IPAddress? = nil, reference: String = "3"
    ) -> Bool {
        guard let read = started(tracker, client: client ?? self.client, reference: reference, path: path) else { return false }
        ended(&tracker, read, result: result, latency: at(end) - at(start), now: at(end))
        return true
    }

    /// A read's start as the gateway's read path makes it (BootObserver): the boot at the
    /// client's address, then the read of it.
    func started(_ tracker: BootTracker, client: IPAddress, reference: String, path: String) -> BootTracker.Read? {
        tracker.bootInProgress(at: client).flatMap { BootTracker.read(of: $0, image: "linux", reference: reference, path: path) }
    }

    /// A read's end as the gateway's read path records it: its boot's figures, and the tracker
    /// when the read may complete the loading.
    func ended(_ tracker: inout BootTracker, _ read: BootTracker.Read, result: BootTracker.ReadResult, latency: Duration, now: ContinuousClock.Instant) {
        if read.record(result, latency: latency, now: now) { tracker.readLoaded(read, now: now) }
    }

    func finished(_ actions: [BootTracker.Action]) -> [BootRecord] {
        actions.compactMap { if case .finished(let record) = $0 { record } else { nil } }
    }

    @Test func aBootThatSignalsIsRecordedWithEveryPhase() throws {
        var tracker = tracker()
        #expect(tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(0), date: date).isEmpty)
        #expect(read(&tracker, "vmlinuz", from: 100, to: 900, result: .sent(bytes: 8 << 20)))
        #expect(read(&tracker, "initrd.img", from: 1000, to: 2000, result: .sent(bytes: 30 << 20)))
        for index in 0..<100 { #expect(read(&tracker, "disk.raw", from: 3000 + index * 10, to: 3000 + index * 10 + (index == 99 ? 500 : 2))) }
        #expect(read(&tracker, "disk.raw", from: 4000, to: 4001, result: .refused(status: 503)))
        #expect(read(&tracker, "disk.raw", from: 4100, to: 4200, result: .cut))
        let ended = finished(tracker.bootedSignal(mac: mac, client: client, now: at(20_000)))
        let record = try #require(ended.first)
        #expect(ended.count == 1)
        #expect(record.outcome == .booted)
        #expect(record.phases == [.script: .zero, .loaded: .milliseconds(2000), .booted: .milliseconds(20_000)])
        #expect(record.bytesRead == (38 << 20) + 100 * 1000)
        #expect(record.diskReads == 100)
        // 2 ms in the bucket up to 2.38 ms; the one slow read is the 99th percentile's.
        #expect(record.readLatencyP50.map { $0 >= .milliseconds(2) && $0 < .microseconds(2400) } == true, "\(String(describing: record.readLatencyP50))")
        #expect(record.readLatencyP99.map { $0 >= .milliseconds(2) && $0 < .microseconds(2400) } == true)
        #expect(record.unavailable == 1 && record.errors == 1)
        // Done: later reads from the address belong to nobody.
        #expect(!read(&tracker, "disk.raw", from: 21_000, to: 21_001))
    }

    /// The read path keeps each thread's last look-up of a client's boot while the revision
    /// holds (BootObserver): it must move whenever the boot at an address starts or ends, and
    /// only then.
    @Test func theRevisionMovesWhenABootStartsOrEndsNotWhenItReads() throws {
        var tracker = tracker()
        let before = tracker.revision
        #expect(tracker.bootInProgress(at: client) == nil)
        _ = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(0), date: date)
        let started = tracker.revision
        #expect(started != before)
        let boot = try #require(tracker.bootInProgress(at: client))
        #expect(BootTracker.read(of: boot, image: "linux", reference: "4", path: "disk.raw") == nil, "another version's read is not the boot's")
        #expect(read(&tracker, "vmlinuz", from: 100, to: 900))
        #expect(read(&tracker, "disk.raw", from: 1000, to: 1100))
        #expect(tracker.sweep(now: at(2000)).isEmpty)
        #expect(tracker.revision == started, "reads and a quiet sweep change nothing a look-up holds")
        _ = tracker.bootedSignal(mac: mac, client: client, now: at(3000))
        #expect(tracker.revision != started)
        #expect(tracker.bootInProgress(at: client) == nil)
    }

    @Test func aBootWithoutTheSignalSettlesAtItsLastReadOnceQuiet() throws {
        var tracker = tracker { $0.settleQuietTime = .seconds(30) }
        _ = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(0), date: date)
        #expect(read(&tracker, "vmlinuz", from: 0, to: 500))
        #expect(read(&tracker, "initrd.img", from: 500, to: 1500))
        #expect(read(&tracker, "disk.raw", from: 2000, to: 7000))
        #expect(tracker.sweep(now: at(36_999)).isEmpty, "29.999 s of quiet")
        // A read in flight is not quiet, however long it takes.
        let started = started(tracker, client: client, reference: "3", path: "disk.raw")
        let slow = try #require(started)
        #expect(tracker.sweep(now: at(90_000)).isEmpty)
        ended(&tracker, slow, result: .sent(bytes: 10), latency: .seconds(60), now: at(96_000))
        let record = try #require(finished(tracker.sweep(now: at(126_000))).first)
        #expect(record.outcome == .settled)
        #expect(record.phases == [.script: .zero, .loaded: .milliseconds(1500), .settled: .milliseconds(96_000)])
        #expect(record.readLatencyP99 ?? .zero >= .seconds(60))
        // Settled is not booted: the signal after it changes nothing.
        #expect(tracker.bootedSignal(mac: mac, client: client, now: at(127_000)).isEmpty)
    }

    @Test func aBootThatNeverLoadsOrRestartsFails() throws {
        var tracker = tracker()
        _ = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(0), date: date)
        #expect(read(&tracker, "vmlinuz", from: 0, to: 500, result: .cut))  // a truncated kernel: iPXE gives up
        let failed = try #require(finished(tracker.sweep(now: at(30_500))).first)
        #expect(failed.outcome == .failed(.notLoaded))
        #expect(failed.phases == [.script: .zero])
        #expect(failed.errors == 1)

        _ = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(40_000), date: date)
        #expect(read(&tracker, "vmlinuz", from: 40_000, to: 40_500))
        #expect(read(&tracker, "initrd.img", from: 40_500, to: 41_000))
        let restarted = try #require(
            finished(tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(45_000), date: date)).first)
        #expect(restarted.outcome == .failed(.restarted))
        #expect(tracker.records.count == 3, "two ended, one in progress")

        // Loaded, but reading without pause to the maximum boot time: unsettled, neither success nor failure.
        for second in 46..<(45 + 600) { #expect(read(&tracker, second == 46 ? "vmlinuz" : "disk.raw", from: second * 1000, to: second * 1000 + 1)) }
        #expect(read(&tracker, "initrd.img", from: 46_500, to: 46_600))
        let unsettled = try #require(finished(tracker.sweep(now: at(45_000 + 600_000))).first)
        #expect(unsettled.outcome == .unsettled)
    }

    @Test func onlyReadsOfTheScriptsVersionFromItsAddressAreAttributed() throws {
        var tracker = tracker()
        #expect(!tracker.isFollowingReads)
        _ = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(0), date: date)
        #expect(tracker.isFollowingReads)
        let elsewhere = try IPAddress(parsing: "10.1.0.8")
        #expect(!read(&tracker, "vmlinuz", from: 0, to: 1, client: elsewhere))
        #expect(!read(&tracker, "vmlinuz", from: 0, to: 1, reference: "2"))
        #expect(!read(&tracker, "vmlinuz", from: 0, to: 1, reference: "stable"))
        // A booted signal from another address is ignored.
        #expect(tracker.bootedSignal(mac: mac, client: elsewhere, now: at(5000)).isEmpty)
        #expect(tracker.records.first?.outcome == .inProgress)
        #expect(tracker.records.first?.bytesRead == 0)
    }

    @Test func aWaitingWorkstationIsOneBootUntilItBootsOrGoesAway() throws {
        var tracker = tracker { $0.waitingRetry = .seconds(10) }
        let began = tracker.scriptServed(mac: mac, client: client, site: "hq", target: nil, waitingReason: "no image", now: at(0), date: date)
        #expect(began.count == 1)
        guard case .waitingBegan(let waiting) = began.first else { Issue.record("\(began)"); return }
        #expect(waiting.outcome == .waiting(reason: "no image"))
        #expect(!tracker.isFollowingReads, "a waiting workstation reads nothing")
        #expect(tracker.scriptServed(mac: mac, client: client, site: "hq", target: nil, waitingReason: "no image", now: at(10_000), date: date).isEmpty)
        #expect(tracker.sweep(now: at(39_999)).isEmpty)
        let booting = tracker.scriptServed(mac: mac, client: client, site: "hq", target: target, waitingReason: "", now: at(20_000), date: date)
        guard case .waitingEnded = booting.first, booting.count == 1 else { Issue.record("\(booting)"); return }
        #expect(read(&tracker, "vmlinuz", from: 20_000, to: 21_000))
        #expect(read(&tracker, "initrd.img", from: 21_000, to: 22_000))
        let record = try #require(finished(tracker.bootedSignal(mac: mac, client: client, now: at(30_000))).first)
        #expect(record.scripts == 3)
        #expect(record.phases == [.script: .seconds(20), .loaded: .seconds(2), .booted: .seconds(10)])

        // One that stops asking is let go after three retry intervals.
        let other = try MACAddress(parsing: "52:54:00:00:00:02")
        _ = tracker.scriptServed(mac: other, client: client, site: "hq", target: nil, waitingReason: "no image", now: at(40_000), date: date)
        #expect(tracker.sweep(now: at(70_000)).isEmpty)
        let gone = tracker.sweep(now: at(70_001))
        #expect(gone.count == 2)
        #expect(finished(gone).first?.outcome == .abandoned)
    }

    @Test func boundsHoldAndTheLeastRecentlyHeardIsForgottenFirst() throws {
        var tracker = tracker {
            $0.maximumWorkstations = 3
            $0.bootsPerWorkstation = 2
        }
        let macs = try (1...5).map { try MACAddress(parsing: "52:54:00:00:01:0\($0)") }
        var waitingBegan = 0
        var waitingEnded = 0
        for (index, mac) in macs.enumerated() {
            for action in tracker.scriptServed(mac: mac, client: client, site: "hq", target: nil, waitingReason: "no image", now: at(index), date: date) {
                switch action {
                case .waitingBegan: waitingBegan += 1
                case .waitingEnded: waitingEnded += 1
                case .finished: Issue.record("nothing ended")
                }
            }
        }
        #expect(tracker.workstationCount == 3)
        #expect(waitingBegan - waitingEnded == 3, "the gauge follows the forgotten ones down")
        #expect(Set(tracker.records.map(\.mac)) == Set(macs.suffix(3)))
        // Heard from again, the oldest of the three stays; the next one is forgotten.
        _ = tracker.scriptServed(mac: macs[2], client: client, site: "hq", target: nil, waitingReason: "no image", now: at(10), date: date)
        _ = tracker.scriptServed(mac: macs[0], client: client, site: "hq", target: nil, waitingReason: "no image", now: at(11), date: date)
        #expect(Set(tracker.records.map(\.mac)) == [macs[0], macs[2], macs[4]])

        // At most two finished boots a workstation, the oldest dropped.
        for boot in 0..<5 {
            _ = tracker.scriptServed(mac: macs[4], client: client, site: "hq", target: target, waitingReason: "", now: at(100 + boot), date: date)
        }
        let kept = tracker.records.filter { $0.mac == macs[4] }
        #expect(kept.count == 3, "two finished and the one in progress")
        #expect(kept.map(\.startedAt) == [at(104), at(103), at(102)])
    }
}
