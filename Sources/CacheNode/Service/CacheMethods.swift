import ICBDCore
import ICBDProto
import ICBDRPC

/// The methods of `/icbd.cache.v1.Cache`, shared by the service and its clients.
public enum CacheMethods {
    static let service = "icbd.cache.v1.Cache"

    /// Whoever serves image data to workstations, or another cache, reads chunks.
    public static let getChunks = RPCMethod<Icbd_Cache_V1_GetChunksRequest, Icbd_Cache_V1_GetChunksResponse>(
        service: service, method: "GetChunks", kind: .serverStreaming, allowedRoles: [.gateway, .cache, .admin])

    /// Operators, and replicators once a version is placed, ask for warming.
    public static let warm = RPCMethod<Icbd_Cache_V1_WarmRequest, Icbd_Cache_V1_WarmResponse>(
        service: service, method: "Warm", kind: .unary, allowedRoles: [.admin, .replicator])
}

extension Icbd_Cache_V1_GetChunksResponse: RPCPayloadCarrying {
    /// `data`: chunk bytes travel uncopied.
    public static var payloadField: Int { 2 }
}
