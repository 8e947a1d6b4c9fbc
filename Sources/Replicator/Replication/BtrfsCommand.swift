import Foundation
import Glibc
import ICBDProcess
import SystemPackage
import ICBDRPC
import NIOCore
import NIOPosix
import Synchronization

/// A `btrfs send` or `btrfs receive` child process, started as a ``SpawnedChild`` (ICBDProcess:
/// swift-subprocess, an argument array, never a shell line), its standard error captured for
/// the error a user sees.
///
/// The child is awaited by pidfd (no SIGCHLD handler, so other children of this process are
/// never reaped by mistake). The stream itself does not go through swift-subprocess's async
/// sequences: standard input and output are our ends of Unix socket pairs, read and
/// written in large blocking calls on a small thread pool of the command's own (so two transfers
/// never starve the shared blocking-I/O pool, and a 1 GiB stream costs one system call per
/// segment). Writes use `MSG_NOSIGNAL`, so a `btrfs receive` that dies mid-stream gives an error
/// (EPIPE), never a SIGPIPE that would kill the replicator.
final class BtrfsCommand: @unchecked Sendable {
    /// How a command ended.
    struct Exit: Sendable {
        let status: Int32
        /// The last bytes of standard error, for people.
        let errors: String
        var succeeded: Bool { status == 0 }
    }

    /// The bytes a stream's socket pair holds in flight (see ``ChildPipe``).
    static let streamBuffer = 4 << 20

    /// The most standard-error bytes kept.
    static let maximumErrorBytes = 16 << 10

    let arguments: [String]
    private let pool = NIOThreadPool(numberOfThreads: 3)
    /// Our ends of standard output and standard error (-1: none).
    private let outputFD: Int32
    private let errorFD: Int32
    private let inputFD: Mutex<Int32>
    /// The tail of standard error, shared with the drain.
    private final class ErrorText: Sendable {
        let text = Mutex("")
    }
    private let errorText = ErrorText()
    private let child: SpawnedChild
    /// Reads standard error until the child closes it.
    private let drain: Task<Void, Never>

    /// Starts `btrfs` with `arguments`; `readOutput`: its standard output is read with
    /// ``read(upTo:)``; `writeInput`: ``write(_:)`` feeds its standard input. Returns once the
    /// child is running; throws if it could not be started.
    ///
    /// `confined`: for a `btrfs receive` of a peer's stream (which also passes `--chroot`): it
    /// runs in a mount namespace of its own (util-linux `unshare`), with no new privileges and a
    /// capability bounding set of only what receiving needs (util-linux `setpriv`): creating
    /// subvolumes and setting their received UUID (sys_admin), chroot, owners, modes and times
    /// of files whatever their owner (chown, fowner, fsetid, dac_override, dac_read_search).
    static func start(_ arguments: [String], readOutput: Bool, writeInput: Bool, confined: Bool = false) async throws -> BtrfsCommand {
        guard let btrfs = btrfsExecutable else {
            throw ReplicationError(.internal, "the btrfs command is not installed (Debian package btrfs-progs); run scripts/bootstrap")
        }
        var executable = btrfs
        var childArguments = arguments
        if confined {
            guard let unshare = utilLinuxExecutable("unshare"), let setpriv = utilLinuxExecutable("setpriv") else {
                throw ReplicationError(.internal, "unshare and setpriv are not installed (Debian package util-linux); run scripts/bootstrap")
            }
            executable = unshare
            childArguments =
                ["--mount", "--propagation", "private", "--", setpriv, "--no-new-privs", "--bounding-set=\(receiveCapabilities)", "--", btrfs]
                + arguments
        }
        // All three or none: a pair made before a failing one is closed again.
        var made: [ChildPipe] = []
        func pair(buffer: Int = 0) throws(ReplicationError) -> ChildPipe {
            do {
                let pair = try ChildPipe(buffer: buffer)
                made.append(pair)
                return pair
            } catch {
                for pair in made { pair.closeBoth() }
                throw ReplicationError(.internal, "cannot create a pipe for btrfs: \(error.reason)")
            }
        }
        let error = try pair()
        let output = readOutput ? try pair(buffer: streamBuffer) : nil
        let input = writeInput ? try pair(buffer: streamBuffer) : nil
        let child: SpawnedChild
        do {
            // The child's ends are handed over (closed once it has them, or when it could not start).
            child = try await SpawnedChild(
                executable, childArguments, input: input.map { FileDescriptor(rawValue: $0.child) },
                output: output.map { FileDescriptor(rawValue: $0.child) }, error: FileDescriptor(rawValue: error.child))
        } catch {
            for pair in made { close(pair.ours) }
            throw ReplicationError(.internal, "cannot start btrfs \(arguments.joined(separator: " ")): \(error)")
        }
        return BtrfsCommand(arguments, child: child, error: error, output: output, input: input)
    }

    private init(_ arguments: [String], child: SpawnedChild, error: ChildPipe, output: ChildPipe?, input: ChildPipe?) {
        self.arguments = arguments
        self.child = child
        errorFD = error.ours
        outputFD = output?.ours ?? -1
        inputFD = Mutex(input?.ours ?? -1)
        pool.start()
        // Drain standard error as it comes, keeping the tail, so a chatty child never blocks.
        let fd = errorFD
        drain = Task { [pool, errorText] in
            _ = try? await pool.runIfActive { Self.drainErrors(fd, into: errorText) }
        }
    }

    private static func drainErrors(_ fd: Int32, into errorText: ErrorText) {
        var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = Glibc.read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                errorText.text.withLock { text in
                    text += String(decoding: buffer[0..<count], as: UTF8.self)
                    if text.utf8.count > Self.maximumErrorBytes { text = String(text.suffix(Self.maximumErrorBytes / 2)) }
                }
            }
    }

    deinit {
        closeInput()
        if outputFD >= 0 { close(outputFD) }
        // Never block here (this may run on a cooperative thread): the pool's threads end once
        // the child has exited and its standard error is drained; that closes errorFD.
        pool.shutdownGracefully { [errorFD] _ in close(errorFD) }
    }

    /// Reads up to `count` bytes of standard output; nil at its end.
    func read(upTo count: Int) async throws -> ByteBuffer? {
        guard outputFD >= 0 else { return nil }
        let fd = outputFD
        return try await pool.runIfActive {
            var buffer = ByteBufferAllocator().buffer(capacity: count)
            while buffer.readableBytes < count {
                var failure: Int32 = 0
                let want = count - buffer.readableBytes
                let done = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: want) { pointer in
                    let result = Glibc.read(fd, pointer.baseAddress, want)
                    if result < 0 { failure = errno }
                    return max(0, result)
                }
                if failure == EINTR { continue }
                if failure != 0 { throw ReplicationError(.internal, "cannot read from btrfs: \(String(cString: strerror(failure)))") }
                if done == 0 { break }
            }
            return buffer.readableBytes > 0 ? buffer : nil
        }
    }

    /// Writes all of `buffer` to standard input.
    func write(_ buffer: ByteBuffer) async throws {
        let fd = inputFD.withLock { $0 }
        guard fd >= 0 else { throw ReplicationError(.internal, "the input of btrfs is closed") }
        try await pool.runIfActive {
            try buffer.withUnsafeReadableBytes { bytes in
                var done = 0
                while done < bytes.count {
                    let result = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
                    if result < 0 && errno == EINTR { continue }
                    guard result > 0 else {
                        throw ReplicationError(.internal, "btrfs stopped reading its input: \(String(cString: strerror(errno)))")
                    }
                    done += result
                }
            }
        }
    }

    /// Ends standard input: the child sees the end of the stream.
    func closeInput() {
        inputFD.withLock { fd in
            if fd >= 0 { close(fd) }
            fd = -1
        }
    }

    /// Kills the child if it still runs (a cut transfer: what it did is discarded anyway).
    func terminate() {
        child.send(SIGKILL)
    }

    /// Waits for the child to exit; after that, its standard error has been read.
    func wait() async -> Exit {
        let status = (try? await child.exit())?.status ?? -1
        await drain.value  // the error pipe may still hold the last lines
        return Exit(status: status, errors: errorText.text.withLock { $0 }.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static let btrfsExecutable: String? = ["/usr/bin/btrfs", "/bin/btrfs", "/usr/sbin/btrfs", "/sbin/btrfs"]
        .first { access($0, X_OK) == 0 }

    private static func utilLinuxExecutable(_ name: String) -> String? {
        ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"].map { $0 + name }.first { access($0, X_OK) == 0 }
    }

    /// The capabilities a confined `btrfs receive` keeps (see ``start(_:readOutput:writeInput:confined:)``).
    static let receiveCapabilities = "-all,+sys_admin,+sys_chroot,+chown,+fowner,+fsetid,+dac_override,+dac_read_search"
}
