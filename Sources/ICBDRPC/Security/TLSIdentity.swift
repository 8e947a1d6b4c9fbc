import Foundation
import ICBDCore
import NIOSSL
import SwiftASN1
import X509

/// The certificates and key one service or operator presents, and the deployment CA it trusts.
///
/// On disk (`--tls-dir DIR --name NAME`): `DIR/ca.crt`, `DIR/NAME.crt`, `DIR/NAME.key`, as
/// written by `icbd pki`.
public struct TLSIdentity: Sendable {
    /// The deployment CA(s) peers must chain to.
    public let trustRoots: [Certificate]
    /// The leaf first, then any intermediates.
    public let certificateChain: [Certificate]
    let privateKey: NIOSSLPrivateKey
    package var nioPrivateKey: NIOSSLPrivateKey { privateKey }
    /// The private key, PEM, as loaded.
    package let privateKeyPEM: String
    /// The role and name of the leaf certificate.
    public let identity: PeerIdentity

    public init(trustRoots: [Certificate], certificateChain: [Certificate], privateKeyPEM: String) throws {
        guard let leaf = certificateChain.first else { throw TLSIdentityError("the certificate chain is empty") }
        self.trustRoots = trustRoots
        self.certificateChain = certificateChain
        self.privateKeyPEM = privateKeyPEM
        do {
            self.privateKey = try NIOSSLPrivateKey(bytes: Array(privateKeyPEM.utf8), format: .pem)
        } catch {
            throw TLSIdentityError("the private key does not parse as PEM: \(error)")
        }
        self.identity = try PeerIdentity(certificate: leaf)
    }

    /// Loads `ca.crt`, `NAME.crt` and `NAME.key` from `directory`.
    public static func load(directory: String, name: String) throws -> TLSIdentity {
        let hint = "create it with `icbd pki init --dir \(directory)` and `icbd pki issue --dir \(directory) --role ROLE --name \(name)`"
        func read(_ file: String) throws -> String {
            let path = (directory as NSString).appendingPathComponent(file)
            guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                throw TLSIdentityError("cannot read \(path); \(hint)")
            }
            return text
        }
        func certificates(_ file: String) throws -> [Certificate] {
            let pem = try read(file)
            do {
                let certs = try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
                guard !certs.isEmpty else { throw TLSIdentityError("no certificate in it") }
                return certs
            } catch {
                throw TLSIdentityError("\(directory)/\(file) does not hold PEM certificates (\(error)); \(hint)")
            }
        }
        return try TLSIdentity(
            trustRoots: certificates("ca.crt"),
            certificateChain: certificates("\(name).crt"),
            privateKeyPEM: read("\(name).key")
        )
    }

    var nioCertificateChain: [NIOSSLCertificate] {
        get throws { try certificateChain.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) } }
    }

    var nioTrustRoots: [NIOSSLCertificate] {
        get throws { try trustRoots.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) } }
    }
}

/// Certificates or keys that cannot be used.
public struct TLSIdentityError: Error, Sendable, CustomStringConvertible {
    public let problem: String
    public init(_ problem: String) { self.problem = problem }
    public var description: String { "TLS: \(problem)" }
}

extension Certificate {
    var derBytes: [UInt8] {
        get throws {
            var serializer = DER.Serializer()
            try serializer.serialize(self)
            return serializer.serializedBytes
        }
    }
}
