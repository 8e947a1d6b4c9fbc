import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

/// The methods of `/icbd.replicator.v1.Replication`: repositories pulling versions from each other.
public enum ReplicationMethods {
    static let service = "icbd.replicator.v1.Replication"

    /// Only replicators pull versions.
    public static let sendVersion = RPCMethod<Icbd_Replicator_V1_SendVersionRequest, Icbd_Replicator_V1_SendVersionSegment>(
        service: service, method: "SendVersion", kind: .serverStreaming, allowedRoles: [.replicator])
}

extension Icbd_Replicator_V1_SendVersionSegment: RPCPayloadCarrying {
    /// `data`: stream bytes travel uncopied.
    public static var payloadField: Int { 7 }
}

/// The replication side of a replicator's RPC server.
struct ReplicationRPCService: RPCService {
    let sender: VersionSender

    func register(into router: inout RPCRouter) {
        router.serverStreaming(ReplicationMethods.sendVersion) { request, writer, context in
            try await sender.serve(request, to: writer, peer: context.peer)
        }
    }
}
