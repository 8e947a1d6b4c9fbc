import Foundation
import Glibc
import ICBDCore
import NIOSSL
import SwiftASN1
import X509

/// The certificates and key one service or operator presents, and the deployment CA it trusts.
///
/// On disk (`--tls-dir DIR --name NAME`): `DIR/ca.crt`, `DIR/NAME.crt`, `DIR/NAME.key`, as
/// written by `icbd pki` — and never `DIR/ca.key`, which stays in the CA's own directory
/// (docs/operations.md "Certificates").
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
    /// The serial of the leaf certificate: what `icbd pki revoke` revokes.
    public var serial: CertificateSerial { CertificateSerial(certificateChain[0].serialNumber) }
    /// The certificates of the deployment no longer trusted; shared by every copy of this
    /// identity, refreshed by the service that holds it.
    public var revocations = RevocationList()

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

    /// Loads `ca.crt`, `NAME.crt` and `NAME.key` from `directory`. Refuses a directory that holds
    /// the CA's key (`ca.key`: whoever reads it can mint any identity) and a key file that is not
    /// a regular file private to its owner (readable by group or others, or a symlink).
    public static func load(directory: String, name: String) throws -> TLSIdentity {
        let hint = "create it with `icbd pki init --dir \(directory)` and `icbd pki issue --dir \(directory) --role ROLE --name \(name)`"
        func path(_ file: String) -> String { (directory as NSString).appendingPathComponent(file) }
        if PKIDirectory.exists(path("ca.key")) {
            throw TLSIdentityError(
                "\(directory) holds the CA's key (ca.key): a service or client must not have it, since it mints any identity; move it to the CA's directory (`icbd pki` keeps it in \(PKIDirectory.defaultAuthorityPath(for: directory))) and start again")
        }
        func read(_ file: String) throws -> String {
            guard let text = try? String(contentsOfFile: path(file), encoding: .utf8) else {
                throw TLSIdentityError("cannot read \(path(file)); \(hint)")
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
            privateKeyPEM: readPrivateKey(path("\(name).key"), hint: hint)
        )
    }

    /// Reads a private key file, refusing one that others could read (ssh's rule) or that is
    /// not a regular file: it is opened without following a symlink.
    static func readPrivateKey(_ path: String, hint: String) throws -> String {
        // The link itself (lstat), then a descriptor that cannot follow one.
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path) else {
            throw TLSIdentityError("cannot read \(path); \(hint)")
        }
        guard attributes[.type] as? FileAttributeType == .typeRegular else {
            throw TLSIdentityError("\(path) is not a regular file (a symlink or a device); keys are read only from regular files")
        }
        let mode = (attributes[.posixPermissions] as? Int) ?? 0o777
        guard mode & 0o077 == 0 else {
            throw TLSIdentityError(
                "\(path) is readable by group or others (mode \(String(mode, radix: 8))); make it private with `chmod 600 \(path)` (and check who read it meanwhile)")
        }
        guard ((attributes[.size] as? Int) ?? 0) <= 1 << 16 else { throw TLSIdentityError("\(path) is too large for a key") }
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw TLSIdentityError("cannot read \(path): \(String(cString: strerror(errno))); \(hint)") }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard let data = try? handle.read(upToCount: 1 << 16), let text = String(data: data, encoding: .utf8) else {
            throw TLSIdentityError("cannot read \(path) as text; \(hint)")
        }
        return text
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
