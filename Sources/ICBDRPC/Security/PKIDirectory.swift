import Foundation
import ICBDCore
import SwiftASN1
import X509

/// The files of `icbd pki` in one directory: `ca.crt`, `ca.key`, `NAME.crt`, `NAME.key`.
/// Keys are written with mode 0600, and every file is written whole (temporary file, then rename).
public struct PKIDirectory: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    /// Creates a new CA; refuses to replace an existing one, which would orphan every certificate.
    @discardableResult
    public func initialize() throws -> CertificateAuthority {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        guard !FileManager.default.fileExists(atPath: file("ca.key")) else {
            throw TLSIdentityError("\(file("ca.key")) exists already; keep it, or remove the directory to start a new deployment")
        }
        let ca = try CertificateAuthority.create()
        try Self.write(ca.keyPEM, to: file("ca.key"), mode: 0o600)
        try Self.write(try ca.certificate.serializeAsPEM().pemString + "\n", to: file("ca.crt"), mode: 0o644)
        return ca
    }

    public func loadAuthority() throws -> CertificateAuthority {
        guard let cert = try? String(contentsOfFile: file("ca.crt"), encoding: .utf8),
            let key = try? String(contentsOfFile: file("ca.key"), encoding: .utf8)
        else {
            throw TLSIdentityError("no CA in \(path); run `icbd pki init --dir \(path)` first")
        }
        return try CertificateAuthority(certificatePEM: cert, keyPEM: key)
    }

    /// Issues and writes `NAME.crt` and `NAME.key`; returns the paths written.
    @discardableResult
    public func issue(_ identity: PeerIdentity, dnsNames: [String] = [], ipAddresses: [String] = []) throws -> [String] {
        let issued = try loadAuthority().issue(identity, dnsNames: dnsNames, ipAddresses: ipAddresses)
        let key = file("\(identity.name).key")
        let cert = file("\(identity.name).crt")
        try Self.write(issued.keyPEM, to: key, mode: 0o600)
        try Self.write(try issued.certificatePEM, to: cert, mode: 0o644)
        return [cert, key]
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let temporary = path + ".tmp-\(getpid())"
        // open(2) with the mode, so a key is never readable by others, not even for a moment.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard fd >= 0 else { throw TLSIdentityError("cannot create \(temporary): errno \(errno); check that the directory is writable") }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let ok = fchmod(fd, mode) == 0 && bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        guard ok, rename(temporary, path) == 0 else {
            unlink(temporary)
            throw TLSIdentityError("cannot write \(path): errno \(errno)")
        }
    }
}
