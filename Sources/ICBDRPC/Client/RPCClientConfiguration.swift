import ICBDCore

/// How a client reaches one peer.
public struct RPCClientConfiguration: Sendable {
    /// The peer's address.
    public var target: HostPort
    /// Further peers that serve the same thing (several catalog processes on one database),
    /// tried in turn when connecting to the current one fails. Empty: `target` only.
    public var alternates: [HostPort] = []
    /// The role the peer's certificate must carry (a cache node presents `icbd://cache/…`).
    public var expectedRole: Role
    /// The name the peer's certificate must carry, when the client means one node rather than
    /// any node of the role at that address (nil: any name).
    public var expectedName: String?
    /// This client's certificate, key and the deployment CA.
    public var tls: TLSIdentity
    /// How long one connection attempt (TCP and TLS) may take.
    public var connectTimeout: Duration = .seconds(5)
    /// After a failed attempt, calls fail at once with UNAVAILABLE for this long, doubling with
    /// each further failure (with jitter) up to ``maximumBackoff``.
    public var initialBackoff: Duration = .milliseconds(100)
    public var maximumBackoff: Duration = .seconds(10)
    /// A ping is sent this often on an open connection, so the server's idle timeout does not
    /// close it and a dead peer is noticed.
    public var keepaliveInterval: Duration = .seconds(20)

    public init(target: HostPort, expectedRole: Role, tls: TLSIdentity) {
        self.target = target
        self.expectedRole = expectedRole
        self.tls = tls
    }
}

extension RPCClientConfiguration {
    /// `target` then the alternates, without repeats, in the order they are tried.
    public var targets: [HostPort] {
        var seen = Set<String>()
        return ([target] + alternates).filter { seen.insert($0.description).inserted }
    }

    /// A configuration for the first of `targets`, failing over to the others.
    public init(targets: [HostPort], expectedRole: Role, tls: TLSIdentity) throws {
        guard let first = targets.first else { throw RPCError(code: .invalidArgument, message: "no address to connect to") }
        self.init(target: first, expectedRole: expectedRole, tls: tls)
        alternates = Array(targets.dropFirst())
    }
}

/// The reconnect backoff: exponential, capped, with full jitter in its upper half.
struct ReconnectBackoff {
    let initial: Duration
    let maximum: Duration
    private(set) var failures = 0

    init(initial: Duration, maximum: Duration) {
        self.initial = initial
        self.maximum = maximum
    }

    /// Records a failed attempt and returns how long to wait before the next one.
    mutating func failed() -> Duration {
        failures += 1
        let exponent = min(failures - 1, 30)
        let base = min(initial * (1 << exponent), maximum)
        return base / 2 + base / 2 * Double.random(in: 0...1)
    }

    mutating func succeeded() {
        failures = 0
    }
}
