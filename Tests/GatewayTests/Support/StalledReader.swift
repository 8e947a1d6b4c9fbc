#if canImport(Glibc)
    import Glibc
#endif

/// A real HTTP client over a real TCP socket that sends one request and then never reads: its
/// receive buffer is made small before it connects, so the server's writes stall at once.
final class StalledReader {
    private let socket: Int32

    init(port: Int, request: String) throws {
        socket = try loopbackSocket(port: port) { socket in
            var small: Int32 = 4096
            setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        }
        let bytes = Array(request.utf8)
        guard send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            close(socket)
            throw DeploymentError("send: errno \(errno)")
        }
    }

    /// Reads what is left until the server closes the connection (nil if it is still open
    /// after `seconds`): the bytes the server had sent before it gave up on this reader.
    func drainUntilClosed(seconds: Int) -> Int? {
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count == 0 { return total }
            if count < 0 { return errno == ECONNRESET ? total : nil }
            total += count
        }
    }

    deinit { close(socket) }
}
