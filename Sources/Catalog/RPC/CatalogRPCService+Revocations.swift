import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging
import SwiftProtobuf

extension CatalogRPCService {
    func registerRevocations(into router: inout RPCRouter) {
        router.unary(CatalogMethods.revokeCertificate) { request, context in
            let revocation = try WireFields.revocation(request, at: now())
            let (kept, created) = try await store.revoke(revocation, at: now())
            logger(for: context).notice(
                created ? "certificate revoked" : "certificate revoked already",
                metadata: ["serial": "\(kept.serial)", "name": "\(kept.name)", "reason": "\(kept.reason)"])
            return .with {
                $0.revocation = .init(kept)
                $0.created = created
            }
        }

        router.unary(CatalogMethods.listRevocations) { _, _ in
            let revocations = try await store.revocations(at: now())
            return .with { $0.revocations = revocations.map(Icbd_Catalog_V1_Revocation.init) }
        }
    }
}

extension WireFields {
    /// A revocation asked for at `now`: a serial of 1 to 20 bytes, an optional `icbd://` name, an
    /// expiry in the future, a reason of at most 256 bytes.
    static func revocation(_ request: Icbd_Catalog_V1_RevokeCertificateRequest, at now: Date) throws -> RevocationRecord {
        guard let serial = CertificateSerial(parsing: request.serial) else {
            throw invalid("serial", "'\(request.serial.prefix(64))' is not a certificate serial (hex, 1 to 20 bytes)")
        }
        guard request.name.isEmpty || PeerIdentity(uri: request.name) != nil else {
            throw invalid("name", "must be empty or icbd://ROLE/NAME, not '\(request.name.prefix(RevocationRecord.maximumNameBytes))'")
        }
        guard request.expiresMs > now.milliseconds else {
            throw invalid("expires_ms", "the certificate has expired already: no server accepts it, nothing to revoke")
        }
        guard request.reason.utf8.count <= RevocationRecord.maximumReasonBytes else {
            throw invalid("reason", "must be at most \(RevocationRecord.maximumReasonBytes) bytes, not \(request.reason.utf8.count)")
        }
        return RevocationRecord(
            serial: serial, name: request.name, revoked: now, expires: Date(milliseconds: request.expiresMs), reason: request.reason)
    }
}

extension Icbd_Catalog_V1_Revocation {
    init(_ record: RevocationRecord) {
        self = .with {
            $0.serial = record.serial.hex
            $0.name = record.name
            $0.revokedMs = record.revoked.milliseconds
            $0.expiresMs = record.expires.milliseconds
            $0.reason = record.reason
        }
    }
}
