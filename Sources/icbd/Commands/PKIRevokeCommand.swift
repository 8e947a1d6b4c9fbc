import ArgumentParser
import Catalog
import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import X509

/// `icbd pki revoke NAME|SERIAL`: puts a certificate on the catalog's revocation list; every
/// server refuses it at its next handshake once it refreshed the list (within 30 s by default)
/// and closes the connections it holds with it.
///
/// A NAME is resolved through the certificate file `CERTDIR/NAME.crt` (the directory it was
/// issued into; default: --tls-dir), which gives its serial and expiry. A SERIAL (`3a:5f:…`, or
/// `serial=3A5F…` as openssl prints it) revokes a certificate whose file is gone; its entry is
/// then kept for the longest life `icbd pki` gives a certificate.
struct PKIRevokeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke a certificate: every server refuses it within its refresh interval (admin).")

    @Argument(help: "The certificate: a NAME (CERTDIR/NAME.crt) or a SERIAL (hex bytes with colons, or serial=HEX).")
    var certificate: CertificateReference

    @Option(name: .customLong("cert-dir"), help: "Where NAME.crt is (default: --tls-dir).")
    var certDir: String?

    @Option(help: "Why, for the record (at most 256 bytes).")
    var reason: String = ""

    @OptionGroup var client: CatalogClientOptions

    /// What the command is given: a certificate's NAME or its SERIAL.
    enum CertificateReference: CommandLineValue {
        case name(Name)
        case serial(CertificateSerial)

        /// Names never hold `:` or `=`; serials are written with them.
        init(commandLine text: String) throws {
            guard text.contains(":") || text.hasPrefix("serial=") else {
                self = .name(try Name(text))
                return
            }
            guard let serial = CertificateSerial(parsing: text) else {
                throw CommandLineValueError(
                    "'\(text)' is not a certificate serial: hex bytes, 1 to 20 of them, like 3a:5f:01 or serial=3A5F01")
            }
            self = .serial(serial)
        }
    }

    /// The entry as `--json` prints it.
    struct Revoked: Encodable {
        var serial: String
        /// The certificate's `icbd://ROLE/NAME`; empty when it was revoked by serial.
        var name: String
        var revokedMs: Int64
        var expiresMs: Int64
        var reason: String
        /// False when it was on the list already.
        var created: Bool
    }

    func validate() throws {
        guard reason.utf8.count <= RevocationRecord.maximumReasonBytes else {
            throw ValidationError("--reason: at most \(RevocationRecord.maximumReasonBytes) bytes")
        }
    }

    func run() async throws {
        var request = Icbd_Catalog_V1_RevokeCertificateRequest()
        request.reason = reason
        switch certificate {
        case .serial(let serial):
            request.serial = serial.hex
            request.expiresMs = Int64(Date().addingTimeInterval(Double(CertificateAuthority.maximumLeafDays) * 86400).timeIntervalSince1970 * 1000)
        case .name(let name):
            let directory = PKIDirectory(path: certDir ?? client.client.tlsDir)
            let revoked: Certificate
            do { revoked = try directory.certificate(named: name.rawValue) } catch {
                throw ValidationError("\(error); give --cert-dir (where it was issued) or the certificate's SERIAL")
            }
            request.serial = CertificateSerial(revoked.serialNumber).hex
            request.name = (try? PeerIdentity(certificate: revoked))?.uri ?? ""
            request.expiresMs = Int64(revoked.notValidAfter.timeIntervalSince1970 * 1000)
        }
        let answer = try await client.withCatalog { catalog in
            try await catalog.unary(CatalogMethods.revokeCertificate, request, options: client.callOptions)
        }
        let entry = answer.revocation
        if client.json {
            return print(
                try Output.json(
                    Revoked(
                        serial: entry.serial, name: entry.name, revokedMs: entry.revokedMs, expiresMs: entry.expiresMs,
                        reason: entry.reason, created: answer.created)))
        }
        let who = entry.name.isEmpty ? "serial \(entry.serial)" : "\(entry.name) (serial \(entry.serial))"
        print(
            answer.created
                ? "revoked \(who); servers refuse it once they refresh their list (within 30 s by default)"
                : "\(who) was revoked already")
    }
}
