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

    /// Creates the pair; throws the system's reason (`strerror`) when it cannot.
    init() throws(ChildPipeError) {
        var ends: [Int32] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else {
            throw ChildPipeError(reason: String(cString: strerror(errno)))
        }
        ours = ends[0]
        child = ends[1]
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
