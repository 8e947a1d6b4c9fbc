import Foundation
import Glibc

/// Runs a system tool (mount, mkfs.btrfs, btrfs) with an argument array, never a shell.
///
/// The child is started with `posix_spawn` and reaped with `waitpid` on its own pid: no
/// Foundation `Process` (whose exit notification was seen to miss children that exit at once),
/// and no SIGCHLD handler that could reap another component's children. Callers are
/// synchronous (a mount is made and removed in initialisers and cleanup paths), so this blocks
/// its thread for the tool's run.
public enum SystemCommand {
    /// The most bytes of standard output or standard error kept: these tools print a few lines.
    static let maximumOutputBytes = 4 << 20

    /// Runs `executable ARGUMENTS` to completion; returns its stdout, or throws with its stderr.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String]) throws -> String {
        let line = ([executable] + arguments).joined(separator: " ")
        let output: ChildPipe
        let errors: ChildPipe
        do throws(ChildPipeError) {
            output = try ChildPipe()
            do { errors = try ChildPipe() } catch {
                output.closeBoth()
                throw error
            }
        } catch {
            throw SystemCommandError("cannot create a pipe for \(line): \(error.reason)")
        }
        defer {
            close(output.ours)
            close(errors.ours)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, output.child, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.child, 2)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, environ)
        close(output.child)
        close(errors.child)
        guard spawned == 0 else {
            throw SystemCommandError("cannot start \(line): \(String(cString: strerror(spawned)))")
        }
        let (stdout, stderr) = drain(output.ours, errors.ours)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { throw SystemCommandError("cannot wait for \(line): \(String(cString: strerror(errno)))") }
        }
        let signal = status & 0x7f
        let code = (status >> 8) & 0xff
        guard signal == 0, code == 0 else {
            let how = signal == 0 ? "exited \(code)" : "was killed by signal \(signal)"
            throw SystemCommandError(
                "\(line) \(how): " + String(decoding: stderr, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return String(decoding: stdout, as: UTF8.self)
    }

    /// Reads both descriptors to their ends, whichever has data, so that a tool filling one
    /// pipe while we wait on the other never blocks; keeps at most ``maximumOutputBytes`` of each.
    private static func drain(_ first: Int32, _ second: Int32) -> ([UInt8], [UInt8]) {
        var kept: [[UInt8]] = [[], []]
        var open = [true, true]
        let descriptors = [first, second]
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while open.contains(true) {
            var polled = descriptors.indices.map { pollfd(fd: open[$0] ? descriptors[$0] : -1, events: Int16(POLLIN), revents: 0) }
            guard poll(&polled, nfds_t(polled.count), -1) >= 0 else {
                if errno == EINTR { continue }
                break
            }
            for index in descriptors.indices where open[index] && polled[index].revents != 0 {
                let count = read(descriptors[index], &buffer, buffer.count)
                if count > 0 {
                    if kept[index].count < maximumOutputBytes { kept[index] += buffer[0..<min(count, maximumOutputBytes - kept[index].count)] }
                } else if count == 0 || errno != EINTR {
                    open[index] = false
                }
            }
        }
        return (kept[0], kept[1])
    }
}

/// A system tool that failed; the message carries what it printed on stderr.
public struct SystemCommandError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
