#if canImport(Glibc)
    import Glibc
#endif

/// A TCP socket connected to `127.0.0.1:port`; `prepare` runs on it before it connects (to set
/// options such as its receive buffer). The caller closes it.
func loopbackSocket(port: Int, prepare: (Int32) -> Void = { _ in }) throws -> Int32 {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw DeploymentError("socket: errno \(errno)") }
    prepare(socket)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else {
        let failure = errno
        close(socket)
        throw DeploymentError("connect: errno \(failure)")
    }
    return socket
}
