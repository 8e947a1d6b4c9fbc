import SwiftASN1
import X509

/// Refuses, during the handshake, a peer whose leaf certificate's serial is on the
/// deployment's revocation list (``RevocationList``).
struct RevocationPolicy: VerifierPolicy {
    let list: RevocationList

    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [] }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let serial = CertificateSerial(chain.leaf.serialNumber)
        guard list.isRevoked(serial) else { return .meetsPolicy }
        let who = (try? PeerIdentity(certificate: chain.leaf)).map { "\($0)" } ?? "\(chain.leaf.subject)"
        return .failsToMeetPolicy(reason: "the certificate of \(who) (serial \(serial)) was revoked")
    }
}
