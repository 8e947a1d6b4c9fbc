import ICBDRPC

/// A replication step that failed: what a user reads (in the placement's detail, the log, the
/// RPC status) and the wire status it maps to.
struct ReplicationError: Error, Sendable, CustomStringConvertible {
    let code: RPCError.Code
    let description: String

    init(_ code: RPCError.Code, _ description: String) {
        self.code = code
        self.description = description
    }

    /// Whether the bytes spooled so far may be kept for a resume: not when the stream itself was
    /// found wrong, nor when the filesystem is full (the spool is what fills it).
    var keepsSpool: Bool {
        code != .dataLoss && code != .invalidArgument && code != .failedPrecondition && code != .resourceExhausted
    }

    var rpcError: RPCError { RPCError(code: code, message: description) }
}

extension RPCError {
    init(_ error: ReplicationError) {
        self.init(code: error.code, message: error.description)
    }
}
