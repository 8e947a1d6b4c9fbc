import Glibc

/// One of a child process's standard streams: both ends of a Unix socket pair, created
/// close-on-exec. The child gets its end as 0, 1 or 2 by dup2 (which clears the flag on the
/// copy), so a concurrently started child never inherits another one's pipe, whose open end
/// would keep a reader from ever seeing the end of the output. A socket pair rather than a
/// pipe, because Glibc's module does not export pipe2 and pipe + fcntl races.
struct ChildPipe {
    /// The end this process reads or writes.
    let ours: Int32
    /// The end the child is given.
    let child: Int32

    /// Creates the pair; throws the system's reason (`strerror`) when it cannot. `buffer`: the
    /// bytes either end may have in flight (0: the system's default, about 200 KiB). A stream of
    /// hundreds of MiB goes through fewer, larger hand-overs between the two processes with a
    /// few MiB: each one a wake-up and a context switch on both sides.
    init(buffer: Int = 0) throws(ChildPipeError) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw ChildPipeError(reason: String(cString: strerror(errno)))
        }
        ours = ends[0]
        child = ends[1]
        if buffer > 0 {
            for end in ends {
                // As root the system's ceiling (net.core.wmem_max) does not apply; else it caps the size.
                Self.setBuffer(end, SO_SNDBUFFORCE, SO_SNDBUF, buffer)
                Self.setBuffer(end, SO_RCVBUFFORCE, SO_RCVBUF, buffer)
            }
        }
    }

    private static func setBuffer(_ fd: Int32, _ forced: Int32, _ plain: Int32, _ bytes: Int) {
        var size = Int32(clamping: bytes)
        let length = socklen_t(MemoryLayout<Int32>.size)
        if setsockopt(fd, SOL_SOCKET, forced, &size, length) != 0 { _ = setsockopt(fd, SOL_SOCKET, plain, &size, length) }
    }

    func closeBoth() {
        close(ours)
        close(child)
    }
}

/// Why a ``ChildPipe`` could not be created.
struct ChildPipeError: Error {
    let reason: String
}
