import ICBDCore

/// How an RPC server listens and what it tolerates.
public struct RPCServerConfiguration: Sendable {
    /// Where to listen; port 0 picks a free port (read it back with ``RPCServer/localAddress()``).
    public var listen: HostPort
    /// The server's certificate, key and the deployment CA.
    public var tls: TLSIdentity
    /// A connection with no frame for this long is closed (docs/wire.md "5. Keepalive").
    public var idleTimeout: Duration = .seconds(60)
    /// A connection that has not finished its TLS handshake this long after it was accepted is
    /// closed.
    public var handshakeTimeout: Duration = .seconds(10)
    /// Calls one connection may have open at once; more are refused with RESOURCE_EXHAUSTED.
    public var maximumConcurrentStreams = 1024
    /// Connections open at once, counted from accept (a connection still in its handshake
    /// counts); more are closed as they arrive.
    public var maximumConnections = 4096
    /// Request message bytes one connection may hold that no handler has taken yet, across all
    /// its calls. A message that would go past it ends its call with RESOURCE_EXHAUSTED
    /// (docs/wire.md "4. Flow control").
    public var maximumBufferedRequestBytes = 64 * 1024 * 1024
    /// On shutdown, calls in flight get this long to finish before they are cancelled.
    public var shutdownGracePeriod: Duration = .seconds(5)

    public init(listen: HostPort, tls: TLSIdentity) {
        self.listen = listen
        self.tls = tls
    }
}
