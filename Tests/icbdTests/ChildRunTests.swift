import Foundation
import ICBDCore
import ICBDProcess
import Testing

@Suite("Child processes run and awaited through ChildRun")
struct ChildRunTests {
    @Test func aChildThatEndsInTimeIsNotKilledAndItsOutputIsKept() async throws {
        let run = try await ChildRun.run("/bin/sh", ["-c", "echo out; echo err >&2; exit 3"], killAfter: .seconds(30))
        #expect(run.exit == .init(code: 3, bySignal: false))
        #expect(run.stdout == "out\n" && run.stderr == "err\n")
    }

    @Test func aChildStillRunningAtItsLimitIsKilled() async throws {
        let run = try await ChildRun.run("/bin/sleep", ["600"], killAfter: .milliseconds(300))
        #expect(run.exit == .init(code: SIGKILL, bySignal: true))
    }
}
