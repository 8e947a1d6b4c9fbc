import ICBDCore
import ICBDProto
import ICBDRPC

extension CatalogMethods {
    /// A cache node keeps its recording of a version's boot (admins may write any node's).
    public static let putBootProfile = RPCMethod<Icbd_Catalog_V1_PutBootProfileRequest, Icbd_Catalog_V1_PutBootProfileResponse>(
        service: service, method: "PutBootProfile", kind: .unary, allowedRoles: [.cache, .admin])
    /// Cache nodes warm by it; gateways and operators show it.
    public static let getBootProfile = RPCMethod<Icbd_Catalog_V1_GetBootProfileRequest, Icbd_Catalog_V1_GetBootProfileResponse>(
        service: service, method: "GetBootProfile", kind: .unary, allowedRoles: [.cache, .gateway, .admin])
}
