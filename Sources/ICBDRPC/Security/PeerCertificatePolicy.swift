import ICBDCore
import SwiftASN1
import X509

/// The icbd part of certificate verification, run during the TLS handshake next to RFC 5280
/// chain validation: the leaf carries exactly one well-formed `icbd://ROLE/NAME` URI, the
/// extended key usage the connection needs and, when the dialler expects them, the right role
/// and name.
struct PeerCertificatePolicy: VerifierPolicy {
    /// `serverAuth` when verifying a server, `clientAuth` when verifying a client.
    let usage: ExtendedKeyUsage.Usage
    /// The role a client meant to reach (a cache node must present `icbd://cache/…`).
    let expectedRole: Role?
    /// The node a client meant to reach, when it means one (a replicator pulling a version from
    /// the repository the catalog says holds it): another node of the same role is refused.
    var expectedName: String? = nil

    var verifyingCriticalExtensions: [ASN1ObjectIdentifier] { [] }

    func chainMeetsPolicyRequirements(chain: UnverifiedCertificateChain) -> PolicyEvaluationResult {
        let leaf = chain.leaf
        let identity: PeerIdentity
        do { identity = try PeerIdentity(certificate: leaf) } catch {
            return .failsToMeetPolicy(reason: "\(error)")
        }
        if let expectedRole, identity.role != expectedRole {
            return .failsToMeetPolicy(reason: "peer is \(identity), expected role \(expectedRole)")
        }
        if let expectedName, identity.name != expectedName {
            return .failsToMeetPolicy(reason: "peer is \(identity), expected the node named '\(expectedName)'")
        }
        let usages = (try? leaf.extensions.extendedKeyUsage).flatMap { $0 }.map(Array.init) ?? []
        guard usages.contains(usage) else {
            return .failsToMeetPolicy(reason: "certificate of \(identity) lacks extended key usage \(usage)")
        }
        return .meetsPolicy
    }
}
