import ICBDCore
import ICBDProto
import ICBDRPC

extension CatalogMethods {
    /// An admin revokes a certificate of the deployment (`icbd pki revoke`).
    public static let revokeCertificate = RPCMethod<Icbd_Catalog_V1_RevokeCertificateRequest, Icbd_Catalog_V1_RevokeCertificateResponse>(
        service: service, method: "RevokeCertificate", kind: .unary, allowedRoles: admins)
    /// Every server reads the list it refuses peers by (every ``RevocationList/refreshInterval``).
    public static let listRevocations = RPCMethod<Icbd_Catalog_V1_ListRevocationsRequest, Icbd_Catalog_V1_ListRevocationsResponse>(
        service: service, method: "ListRevocations", kind: .unary, allowedRoles: readers)
}
