import ICBDCore
import SwiftProtobuf

/// How many messages each side of a method sends.
public enum RPCCallKind: Sendable {
    case unary, serverStreaming, clientStreaming, bidirectional
}

/// A method of the icbd/1 RPC, declared once and shared by its server and its clients:
/// path, message types, call kind and the roles that may call it.
public struct RPCMethod<Request: SwiftProtobuf.Message, Response: SwiftProtobuf.Message>: Sendable {
    /// `/package.Service/Method`, as sent in `Open.method`.
    public let path: String
    public let kind: RPCCallKind
    /// Callers whose certificate role is not in here get PERMISSION_DENIED.
    public let allowedRoles: Set<Role>

    public init(service: String, method: String, kind: RPCCallKind, allowedRoles: Set<Role>) {
        self.path = "/\(service)/\(method)"
        self.kind = kind
        self.allowedRoles = allowedRoles
    }
}

/// Per-call options of a client.
public struct RPCCallOptions: Sendable {
    /// The server stops the call and answers DEADLINE_EXCEEDED after this long; nil = no deadline.
    public var timeout: Duration?
    /// Sent in `Open.metadata`.
    public var metadata: [String: String]

    public init(timeout: Duration? = nil, metadata: [String: String] = [:]) {
        self.timeout = timeout
        self.metadata = metadata
    }
}

/// What a server handler knows about its call.
public struct RPCCallContext: Sendable {
    /// The authenticated caller, from its certificate.
    public let peer: PeerIdentity
    public let method: String
    public let metadata: [String: String]
    /// When the call's deadline passes, if it has one.
    public let deadline: ContinuousClock.Instant?
}
