import Foundation
import ICBDCore
import ICBDRPC
import X509

/// A deployment CA minted for one test run, issuing identities on demand.
struct TestPKI {
    let authority: CertificateAuthority

    init() throws {
        authority = try CertificateAuthority.create(commonName: "icbd test CA \(UUID())")
    }

    func identity(
        _ role: Role, _ name: String,
        notValidBefore: Date = Date().addingTimeInterval(-3600),
        notValidAfter: Date = Date().addingTimeInterval(3600)
    ) throws -> TLSIdentity {
        try authority.issueIdentity(
            PeerIdentity(role: role, name: name), dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"],
            notValidBefore: notValidBefore, notValidAfter: notValidAfter)
    }
}
