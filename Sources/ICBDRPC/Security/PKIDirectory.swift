import Foundation
import Glibc
import ICBDCore
import SwiftASN1
import X509

/// The files of `icbd pki`: the CA's directory holds `ca.key` and `ca.crt`; the directory
/// services load (`--tls-dir`) holds `ca.crt`, `NAME.crt` and `NAME.key`, never `ca.key`.
///
/// Keys are created with mode 0600 under a temporary name opened with
/// `O_CREAT|O_EXCL|O_NOFOLLOW`, then linked (a new file, which fails when anything, a planted
/// symlink included, is at the name) or renamed (a renewal) into place: no existing file is
/// ever written through, and no reader sees half a file.
public struct PKIDirectory: Sendable {
    /// The directory services load.
    public let path: String
    /// The CA's directory: `ca.key` and `ca.crt`.
    public let authorityPath: String

    /// `authorityPath` defaults to ``defaultAuthorityPath(for:)``.
    public init(path: String, authorityPath: String? = nil) {
        self.path = path
        self.authorityPath = authorityPath ?? Self.defaultAuthorityPath(for: path)
    }

    /// `DIR-ca`, the sibling of `DIR`: `pki` -> `pki-ca`.
    public static func defaultAuthorityPath(for path: String) -> String {
        var trimmed = path
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        return trimmed + "-ca"
    }

    func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }
    func authorityFile(_ name: String) -> String { (authorityPath as NSString).appendingPathComponent(name) }

    /// Creates a new CA: `ca.key` and `ca.crt` in the CA's directory (mode 0700), `ca.crt` in
    /// ``path``. Refuses to replace an existing one, which would orphan every certificate.
    @discardableResult
    public func initialize() throws -> CertificateAuthority {
        for existing in [authorityFile("ca.key"), file("ca.key"), file("ca.crt")] where Self.exists(existing) {
            throw TLSIdentityError(
                "\(existing) exists already; keep the deployment's CA (issue with `icbd pki issue --dir \(path) --ca-dir \(authorityPath)`), or remove \(path) and \(authorityPath) to start a new deployment")
        }
        try Self.makeDirectory(authorityPath, mode: 0o700)
        try Self.makeDirectory(path, mode: 0o755)
        let ca = try CertificateAuthority.create()
        let certificate = try ca.certificate.serializeAsPEM().pemString + "\n"
        try Self.create(ca.keyPEM, at: authorityFile("ca.key"), mode: 0o600)
        try Self.create(certificate, at: authorityFile("ca.crt"), mode: 0o644)
        try Self.create(certificate, at: file("ca.crt"), mode: 0o644)
        return ca
    }

    /// The CA, from the CA's directory.
    public func loadAuthority() throws -> CertificateAuthority {
        guard let cert = try? String(contentsOfFile: authorityFile("ca.crt"), encoding: .utf8),
            let key = try? TLSIdentity.readPrivateKey(authorityFile("ca.key"), hint: "")
        else {
            if Self.exists(file("ca.key")) {
                throw TLSIdentityError(
                    "the CA's key is in \(path), where services would read it; move it: `mkdir -m 700 \(authorityPath) && mv \(file("ca.key")) \(authorityPath)/ && cp \(file("ca.crt")) \(authorityPath)/`")
            }
            throw TLSIdentityError(
                "no CA in \(authorityPath) (ca.crt and a private ca.key); run `icbd pki init --dir \(path)` first, or name the CA's directory with --ca-dir")
        }
        return try CertificateAuthority(certificatePEM: cert, keyPEM: key)
    }

    /// Issues and writes `NAME.crt` and `NAME.key` (and `ca.crt` when the directory lacks it);
    /// refuses a name that has either file already (``renew(name:days:)`` replaces them).
    /// Returns the paths written.
    @discardableResult
    public func issue(
        _ identity: PeerIdentity, dnsNames: [String] = [], ipAddresses: [String] = [],
        days: Int = CertificateAuthority.defaultLeafDays
    ) throws -> [String] {
        let (cert, key) = (file("\(identity.name).crt"), file("\(identity.name).key"))
        for existing in [key, cert] where Self.exists(existing) {
            throw TLSIdentityError(
                "\(existing) exists already; replace it with `icbd pki renew --dir \(path) --name \(identity.name)`, or remove it first")
        }
        let authority = try loadAuthority()
        let issued = try authority.issue(identity, dnsNames: dnsNames, ipAddresses: ipAddresses, notValidAfter: try Self.expiry(days))
        try Self.makeDirectory(path, mode: 0o755)
        if !Self.exists(file("ca.crt")) {
            try Self.create(try authority.certificate.serializeAsPEM().pemString + "\n", at: file("ca.crt"), mode: 0o644)
        }
        try Self.create(issued.keyPEM, at: key, mode: 0o600)
        do {
            try Self.create(try issued.certificatePEM, at: cert, mode: 0o644)
        } catch {
            unlink(key)
            throw error
        }
        return [cert, key]
    }

    /// A new key and certificate for `name`, with the role, name and addresses of
    /// `NAME.crt`; each file is replaced whole (renamed into place). Returns the certificate.
    @discardableResult
    public func renew(name: String, days: Int = CertificateAuthority.defaultLeafDays) throws -> Certificate {
        let cert = file("\(name).crt")
        let old = try certificate(named: name)
        let identity = try PeerIdentity(certificate: old)
        var dnsNames: [String] = []
        var ipAddresses: [String] = []
        for entry in (try? old.extensions.subjectAlternativeNames.map(Array.init)) ?? [] {
            switch entry {
            case .dnsName(let dns): dnsNames.append(dns)
            case .ipAddress(let octets): if let text = Self.ipAddressText(Array(octets.bytes)) { ipAddresses.append(text) }
            default: break
            }
        }
        let issued = try loadAuthority().issue(identity, dnsNames: dnsNames, ipAddresses: ipAddresses, notValidAfter: try Self.expiry(days))
        try Self.replace(issued.keyPEM, at: file("\(name).key"), mode: 0o600)
        try Self.replace(try issued.certificatePEM, at: cert, mode: 0o644)
        return issued.certificate
    }

    /// The certificate `NAME.crt` (its leaf).
    public func certificate(named name: String) throws -> Certificate {
        let cert = file("\(name).crt")
        guard let pem = try? String(contentsOfFile: cert, encoding: .utf8), let certificate = try? Certificate(pemEncoded: pem) else {
            throw TLSIdentityError("cannot read the certificate \(cert); issue one with `icbd pki issue --dir \(path) --role ROLE --name \(name)`")
        }
        return certificate
    }

    static func expiry(_ days: Int) throws -> Date {
        guard (1...CertificateAuthority.maximumLeafDays).contains(days) else {
            throw TLSIdentityError("--days must be 1 to \(CertificateAuthority.maximumLeafDays), not \(days)")
        }
        return Date().addingTimeInterval(Double(days) * 86400)
    }

    /// Whether anything, a dangling symlink included, is at `path` (lstat).
    static func exists(_ path: String) -> Bool {
        (try? FileManager.default.attributesOfItem(atPath: path)) != nil
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws {
        if mkdir(path, mode) != 0 && errno != EEXIST {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            chmod(path, mode)
        }
    }

    /// Writes `text` as a new file at `path`; fails when anything is there.
    static func create(_ text: String, at path: String, mode: mode_t) throws {
        let temporary = try writeTemporary(text, beside: path, mode: mode)
        defer { unlink(temporary) }
        guard link(temporary, path) == 0 else {
            throw TLSIdentityError(
                errno == EEXIST
                    ? "\(path) exists already (a file or a symlink); it was left alone" : "cannot create \(path): \(String(cString: strerror(errno)))")
        }
    }

    /// Replaces whatever is at `path` (a symlink itself, not its target) with `text`.
    static func replace(_ text: String, at path: String, mode: mode_t) throws {
        let temporary = try writeTemporary(text, beside: path, mode: mode)
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TLSIdentityError("cannot replace \(path): \(reason)")
        }
    }

    /// A new file with `text` next to `path`, created with `O_EXCL|O_NOFOLLOW` and `mode`, synced.
    private static func writeTemporary(_ text: String, beside path: String, mode: mode_t) throws -> String {
        let directory = (path as NSString).deletingLastPathComponent
        let temporary = (directory as NSString).appendingPathComponent(
            ".\((path as NSString).lastPathComponent).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        // open(2) with the mode, so a key is never readable by others, not even for a moment.
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            throw TLSIdentityError("cannot create \(temporary): \(String(cString: strerror(errno))); check that \(directory) is writable")
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        let ok = fchmod(fd, mode) == 0 && bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) == $0.count } && fsync(fd) == 0
        guard ok else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw TLSIdentityError("cannot write \(temporary): \(reason)")
        }
        return temporary
    }

    static func ipAddressText(_ bytes: [UInt8]) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        let text = bytes.withUnsafeBytes { inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        guard text != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
