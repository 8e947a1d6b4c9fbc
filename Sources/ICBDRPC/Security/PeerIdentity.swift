import ICBDCore
import SwiftASN1
import X509

/// Who is on the other end of a connection: the role and name from its certificate's one
/// SAN URI `icbd://ROLE/NAME` (docs/wire.md "1. Connection").
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    public let role: Role
    public let name: String

    public init(role: Role, name: String) {
        self.role = role
        self.name = name
    }

    /// Parses `icbd://ROLE/NAME`, case-sensitively.
    public init?(uri: String) {
        let prefix = "icbd://"
        guard uri.hasPrefix(prefix) else { return nil }
        let rest = uri.dropFirst(prefix.count)
        guard let slash = rest.firstIndex(of: "/"), let role = Role(rawValue: String(rest[..<slash])) else { return nil }
        let name = String(rest[rest.index(after: slash)...])
        guard (try? Name(name)) != nil else { return nil }
        self.init(role: role, name: name)
    }

    /// Reads the identity from a certificate, which must carry exactly one `icbd://` URI and
    /// that URI must be well-formed.
    public init(certificate: Certificate) throws(PeerIdentityError) {
        let uris: [String]
        do {
            let names = try certificate.extensions.subjectAlternativeNames.map(Array.init) ?? []
            uris = names.compactMap { name -> String? in
                if case .uniformResourceIdentifier(let uri) = name { uri } else { nil }
            }
        } catch {
            throw PeerIdentityError("its subjectAlternativeName extension does not parse: \(error)")
        }
        guard uris.count == 1, let identity = PeerIdentity(uri: uris[0]) else {
            throw PeerIdentityError(
                "it must carry exactly one SAN URI icbd://ROLE/NAME, it has \(uris.isEmpty ? "none" : uris.joined(separator: ", "))"
            )
        }
        self = identity
    }

    public var uri: String { "icbd://\(role)/\(name)" }
    public var description: String { uri }
}

/// A certificate that names no valid icbd identity.
public struct PeerIdentityError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    init(_ problem: String) { self.problem = problem }
    public var description: String { "certificate refused: \(problem)" }
}
