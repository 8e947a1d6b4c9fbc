// Stand-ins for ICBDRPC's RPCError.Code and the replicator's ReplicationError, so the
// validator's own files compile alone with swiftc -O.
struct RPCError { enum Code { case dataLoss, invalidArgument, failedPrecondition, resourceExhausted, `internal` } }
struct ReplicationError: Error, CustomStringConvertible {
    let code: RPCError.Code
    let description: String
    init(_ code: RPCError.Code, _ description: String) { self.code = code; self.description = description }
}
