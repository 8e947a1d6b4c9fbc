import ICBDCore
import ICBDProto
import ICBDRPC

/// The cache node's methods the gateway calls (Protos/icbd/cache/v1/cache.proto).
enum CacheMethods {
    static let getChunks = RPCMethod<Icbd_Cache_V1_GetChunksRequest, Icbd_Cache_V1_GetChunksResponse>(
        service: "icbd.cache.v1.Cache", method: "GetChunks", kind: .serverStreaming, allowedRoles: [.gateway, .cache, .admin])
}

extension Icbd_Cache_V1_GetChunksResponse: RPCPayloadCarrying {
    /// `data`: chunk bytes travel uncopied.
    public static var payloadField: Int { 2 }
}
