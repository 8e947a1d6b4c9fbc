import ICBDCore
import ICBDProto
import ReplicatorClient
import ICBDRPC
import Logging

/// The replication side of a replicator's RPC server.
struct ReplicationRPCService: RPCService {
    let sender: VersionSender

    func register(into router: inout RPCRouter) {
        router.serverStreaming(ReplicationMethods.sendVersion) { request, writer, context in
            try await sender.serve(request, to: writer, peer: context.peer)
        }
    }
}
