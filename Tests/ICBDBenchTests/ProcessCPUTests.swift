import Foundation
import ICBDProcess
import Testing

@testable import ICBDBench

@Suite("The CPU time of a server's processes, per GiB served")
struct ProcessCPUTests {
    @Test func aStatLineIsReadAfterItsCommandNameWhateverTheNameHolds() throws {
        // utime 250 and stime 50 ticks at 100 ticks/s; the name holds spaces and parentheses.
        let line = "4242 (nginx: (worker) 2) S 4241 4241 4241 0 -1 4194624 100 0 0 0 250 50 7 3 20 0 1 0 100 1000 10"
        #expect(ProcessCPU.parse(line, ticksPerSecond: 100) == ProcessCPU.Times(pid: 4242, parent: 4241, seconds: 3))
        #expect(ProcessCPU.parse("4242 (cut short) S 1", ticksPerSecond: 100) == nil)
    }

    @Test func aTreeCountsEveryDescendantAndNothingElse() {
        let processes = [
            ProcessCPU.Times(pid: 1, parent: 0, seconds: 100),  // init: not ours
            ProcessCPU.Times(pid: 10, parent: 1, seconds: 1),  // nginx master
            ProcessCPU.Times(pid: 11, parent: 10, seconds: 2),  // a worker
            ProcessCPU.Times(pid: 12, parent: 10, seconds: 3),  // a worker
            ProcessCPU.Times(pid: 13, parent: 12, seconds: 0.5),  // a worker's child
            ProcessCPU.Times(pid: 20, parent: 1, seconds: 40),  // another server
        ]
        #expect(ProcessCPU.seconds(ofTree: 10, among: processes) == 6.5)
        #expect(ProcessCPU.seconds(ofTree: 12, among: processes) == 3.5)
        #expect(ProcessCPU.seconds(ofTree: 99, among: processes) == nil)
    }

    @Test func aRunningProcessIsReadFromProcAndAnExitedOneIsNot() async throws {
        let child = try await SpawnedChild("/bin/sleep", ["30"])
        #expect(ProcessCPU.seconds(ofTree: child.pid) != nil)
        // This test process's tree holds the child.
        let ours = try #require(ProcessCPU.seconds(ofTree: getpid()))
        #expect(ours > 0)
        let pid = child.pid
        child.send(SIGKILL)
        _ = try await child.exit()
        #expect(ProcessCPU.seconds(ofTree: pid) == nil)
    }

    @Test func cpuPerGiBDividesByTheBytesServed() {
        #expect(cpuSecondsPerGiB(cpuSeconds: 2, bytes: 4 << 30) == 0.5)
        #expect(cpuSecondsPerGiB(cpuSeconds: 3, bytes: 512 << 20) == 6)
        #expect(cpuSecondsPerGiB(cpuSeconds: 1, bytes: 0) == 0)
    }
}
