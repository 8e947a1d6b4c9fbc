import ICBDProcess
import Testing

@Suite("System tools run with an argument array")
struct SystemCommandTests {
    @Test func returnsWhatTheToolPrintsAndNeverBlocksOnAFullPipe() async throws {
        #expect(try await SystemCommand.run("/bin/echo", ["a b", "c"]) == "a b c\n")
        // Far more than a pipe holds, on both outputs at once.
        let both = "head -c 300000 /dev/zero | tr '\\0' x; head -c 300000 /dev/zero | tr '\\0' y >&2"
        #expect(try await SystemCommand.run("/bin/sh", ["-c", both]).count == 300_000)
    }

    @Test func aFailingToolSaysHowItEndedAndWhatItPrintedOnStandardError() async {
        let failure = await #expect(throws: SystemCommandError.self) {
            try await SystemCommand.run("/bin/sh", ["-c", "echo 'no such device' >&2; exit 3"])
        }
        #expect(failure?.description.contains("exited 3: no such device") == true, "\(String(describing: failure))")
        let killed = await #expect(throws: SystemCommandError.self) { try await SystemCommand.run("/bin/sh", ["-c", "kill -9 $$"]) }
        #expect(killed?.description.contains("killed by signal 9") == true, "\(String(describing: killed))")
        let missing = await #expect(throws: SystemCommandError.self) { try await SystemCommand.run("/nonexistent/tool", []) }
        #expect(missing?.description.contains("cannot start /nonexistent/tool") == true, "\(String(describing: missing))")
    }
}
