import Foundation
import Glibc
import ICBDRPC
import NIOCore
import NIOPosix
import Synchronization

/// A `btrfs send` or `btrfs receive` child process, started with an argument array (never a
/// shell line), its standard error captured for the error a user sees.
///
/// swift-subprocess is not in this build's package set, so this is Foundation's `Process` with
/// the blocking reads and writes done on a small thread pool of the command's own (so two
/// transfers never starve the shared blocking-I/O pool). Standard input is one end of a Unix
/// socket pair rather than a pipe: writes use `MSG_NOSIGNAL`, so a `btrfs receive` that dies
/// mid-stream gives an error (EPIPE), never a SIGPIPE that would kill the replicator.
final class BtrfsCommand: @unchecked Sendable {
    /// How a command ended.
    struct Exit: Sendable {
        let status: Int32
        /// The last bytes of standard error, for people.
        let errors: String
        var succeeded: Bool { status == 0 }
    }

    /// The most standard-error bytes kept.
    static let maximumErrorBytes = 16 << 10

    let arguments: [String]
    private let process = Process()
    private let pool = NIOThreadPool(numberOfThreads: 3)
    /// Our ends of standard output and standard error (-1: none).
    private let outputFD: Int32
    private let errorFD: Int32
    private let inputFD: Mutex<Int32>
    /// What the termination handler and the standard-error drain share with the command.
    private final class Shared: Sendable {
        let errorText = Mutex("")
        let exited: Mutex<(Exit?, [CheckedContinuation<Exit, Never>])> = Mutex((nil, []))
    }
    private let shared = Shared()
    /// Reads standard error until the child closes it.
    private var drain: Task<Void, Never>?

    /// Starts `btrfs` with `arguments`; `readOutput`: its standard output is read with
    /// ``read(upTo:)``; `writeInput`: ``write(_:)`` feeds its standard input.
    init(_ arguments: [String], readOutput: Bool, writeInput: Bool) throws {
        self.arguments = arguments
        guard let executable = Self.btrfsExecutable else {
            throw ReplicationError(.internal, "the btrfs command is not installed (Debian package btrfs-progs); run scripts/bootstrap")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        // Every descriptor is created close-on-exec (the child gets its copies as 0, 1 and 2),
        // so a concurrently started child never inherits another one's pipe: an inherited
        // write end would keep a reader from ever seeing the end of the output.
        var childEnds: [Int32] = []
        func pipeEnds() throws(ReplicationError) -> (read: Int32, write: Int32) {
            // A socket pair, because Glibc's module does not export pipe2 and pipe + fcntl races.
            var ends: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
                throw ReplicationError(.internal, "cannot create a pipe for btrfs: \(String(cString: strerror(errno)))")
            }
            return (ends[0], ends[1])
        }
        let errorPipe = try pipeEnds()
        errorFD = errorPipe.read
        childEnds.append(errorPipe.write)
        process.standardError = FileHandle(fileDescriptor: errorPipe.write, closeOnDealloc: false)
        if readOutput {
            let outputPipe = try pipeEnds()
            outputFD = outputPipe.read
            childEnds.append(outputPipe.write)
            process.standardOutput = FileHandle(fileDescriptor: outputPipe.write, closeOnDealloc: false)
        } else {
            outputFD = -1
            process.standardOutput = FileHandle.nullDevice
        }
        if writeInput {
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw ReplicationError(.internal, "cannot create the input of btrfs: \(String(cString: strerror(errno)))")
            }
            inputFD = Mutex(pair[0])
            childEnds.append(pair[1])
            process.standardInput = FileHandle(fileDescriptor: pair[1], closeOnDealloc: false)
        } else {
            inputFD = Mutex(-1)
            process.standardInput = FileHandle.nullDevice
        }
        process.terminationHandler = { [shared] process in
            let exit = Exit(status: process.terminationStatus, errors: shared.errorText.withLock { $0 })
            let waiters = shared.exited.withLock { state in
                state.0 = exit
                defer { state.1 = [] }
                return state.1
            }
            for waiter in waiters { waiter.resume(returning: exit) }
        }
        pool.start()
        do {
            try process.run()
        } catch {
            for fd in childEnds + [errorFD, outputFD] where fd >= 0 { close(fd) }
            closeInput()
            pool.shutdownGracefully { _ in }
            throw ReplicationError(.internal, "cannot start btrfs \(arguments.joined(separator: " ")): \(error)")
        }
        for fd in childEnds { close(fd) }
        // Drain standard error as it comes, keeping the tail, so a chatty child never blocks.
        let fd = errorFD
        drain = Task { [pool, shared] in
            _ = try? await pool.runIfActive { Self.drainErrors(fd, into: shared) }
        }
    }

    private static func drainErrors(_ fd: Int32, into shared: Shared) {
        var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = Glibc.read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                shared.errorText.withLock { text in
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
        let pid = process.processIdentifier
        let exited = shared.exited.withLock { $0.0 != nil }
        if pid > 0 && !exited { kill(pid, SIGKILL) }
    }

    /// Waits for the child to exit; after that, its standard error has been read.
    func wait() async -> Exit {
        let exit = await withCheckedContinuation { continuation in
            let done = shared.exited.withLock { state -> Exit? in
                if let exit = state.0 { return exit }
                state.1.append(continuation)
                return nil
            }
            if let done { continuation.resume(returning: done) }
        }
        await drain?.value  // the error pipe may still hold the last lines
        return Exit(status: exit.status, errors: shared.errorText.withLock { $0 }.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    static let btrfsExecutable: String? = ["/usr/bin/btrfs", "/bin/btrfs", "/usr/sbin/btrfs", "/sbin/btrfs"]
        .first { access($0, X_OK) == 0 }
}
