import Foundation
import ICBDCore
import ICBDProcess
import Testing

@Suite("Child processes spawned and awaited through ICBDProcess")
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

    @Test func aChildStillRunningWhenItsOwnerLetsGoIsKilled() async throws {
        var child: SpawnedChild? = try await SpawnedChild("/bin/sleep", ["600"])
        let pid = try #require(child?.pid)
        #expect(kill(pid, 0) == 0)
        child = nil
        // Killed at once, then reaped by ICBDProcess: the pid is gone.
        for _ in 0..<500 where kill(pid, 0) == 0 { try await Task.sleep(for: .milliseconds(10)) }
        #expect(kill(pid, 0) == -1 && errno == ESRCH, "sleep \(pid) outlived its owner")
    }

    @Test func aProgramThatCannotBeStartedSaysWhich() async throws {
        let error = await #expect(throws: SpawnError.self) { _ = try await SpawnedChild("/nonexistent/tool", []) }
        #expect(error?.description.contains("cannot start /nonexistent/tool") == true, "\(String(describing: error))")
    }
}
