import Crypto
import Foundation
import ICBDCore
import SwiftASN1
import X509

/// The deployment CA (P-256) and the node certificates it issues (`icbd pki`).
///
/// Node certificates carry the SAN URI `icbd://ROLE/NAME`, optional DNS and IP SANs, and both
/// extended key usages (serverAuth and clientAuth), so every service can dial and be dialled.
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    private let key: Certificate.PrivateKey
    /// The CA key, PKCS#8 PEM.
    public let keyPEM: String
    /// How long a node certificate lives unless asked otherwise: 90 days (`icbd pki renew`
    /// before then).
    public static let defaultLeafDays = 90
    /// The longest life `icbd pki` gives a node certificate (the CA/Browser Forum's old limit).
    public static let maximumLeafDays = 825

    /// A new self-signed CA, valid from an hour ago (clock skew) for `years` years.
    public static func create(commonName: String = "icbd deployment CA", years: Int = 10, now: Date = Date()) throws
        -> CertificateAuthority
    {
        let key = P256.Signing.PrivateKey()
        let name = try DistinguishedName { CommonName(commonName) }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: now.addingTimeInterval(-3600),
            notValidAfter: now.addingTimeInterval(Double(years) * 365 * 86400),
            issuer: name,
            subject: name,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: .init(key)
        )
        return CertificateAuthority(certificate: certificate, key: key)
    }

    init(certificate: Certificate, key: P256.Signing.PrivateKey) {
        self.certificate = certificate
        self.key = Certificate.PrivateKey(key)
        self.keyPEM = key.pemRepresentation
    }

    /// Loads a CA from PEM text (certificate and PKCS#8 or SEC1 key).
    public init(certificatePEM: String, keyPEM: String) throws {
        let key = try P256.Signing.PrivateKey(pemRepresentation: keyPEM)
        self.init(certificate: try Certificate(pemEncoded: certificatePEM), key: key)
        guard certificate.publicKey == Certificate.PublicKey(key.publicKey) else {
            throw TLSIdentityError("the CA key does not belong to the CA certificate")
        }
    }

    /// Issues a certificate for `identity`, with a fresh P-256 key.
    public func issue(
        _ identity: PeerIdentity,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        notValidBefore: Date = Date().addingTimeInterval(-3600),
        notValidAfter: Date = Date().addingTimeInterval(Double(defaultLeafDays) * 86400)
    ) throws -> IssuedCertificate {
        let key = P256.Signing.PrivateKey()
        var names: [GeneralName] = [.uniformResourceIdentifier(identity.uri)]
        names += dnsNames.map { .dnsName($0) }
        for address in ipAddresses {
            guard let bytes = Self.ipAddressBytes(address) else {
                throw TLSIdentityError("'\(address)' is not an IPv4 or IPv6 address")
            }
            names.append(.ipAddress(ASN1OctetString(contentBytes: ArraySlice(bytes))))
        }
        let certificate = try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key.publicKey),
            notValidBefore: notValidBefore,
            notValidAfter: notValidAfter,
            issuer: self.certificate.subject,
            subject: try DistinguishedName { CommonName(identity.name); OrganizationalUnitName(identity.role.rawValue) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.serverAuth, .clientAuth])
                SubjectAlternativeNames(names)
                SubjectKeyIdentifier(hash: .init(key.publicKey))
            },
            issuerPrivateKey: self.key
        )
        return IssuedCertificate(certificate: certificate, keyPEM: key.pemRepresentation)
    }

    /// Issues a certificate for `identity` and returns it as a ready ``TLSIdentity`` trusting
    /// this CA: for processes that mint their own (tests, benchmarks) rather than load files.
    public func issueIdentity(
        _ identity: PeerIdentity,
        dnsNames: [String] = [],
        ipAddresses: [String] = [],
        notValidBefore: Date = Date().addingTimeInterval(-3600),
        notValidAfter: Date = Date().addingTimeInterval(Double(defaultLeafDays) * 86400)
    ) throws -> TLSIdentity {
        let issued = try issue(
            identity, dnsNames: dnsNames, ipAddresses: ipAddresses, notValidBefore: notValidBefore, notValidAfter: notValidAfter)
        return try TLSIdentity(trustRoots: [certificate], certificateChain: [issued.certificate], privateKeyPEM: issued.keyPEM)
    }

    static func ipAddressBytes(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 { return withUnsafeBytes(of: &v4) { Array($0) } }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 { return withUnsafeBytes(of: &v6) { Array($0) } }
        return nil
    }
}

/// A certificate and its private key.
public struct IssuedCertificate: Sendable {
    public let certificate: Certificate
    public let keyPEM: String

    public var certificatePEM: String {
        get throws { try certificate.serializeAsPEM().pemString + "\n" }
    }
}
