import ArgumentParser
import ICBDCore
import ICBDRPC
import X509

/// `icbd pki init|issue|renew|revoke`: the deployment CA, node certificates and their
/// revocation. The CA's key lives only in the CA's directory (`--ca-dir`, default `DIR-ca`);
/// `DIR` gets `ca.crt` and the node certificates and keys services load.
struct PKICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pki",
        abstract: "Create the deployment CA, issue, renew and revoke node certificates.",
        subcommands: [Init.self, Issue.self, Renew.self, PKIRevokeCommand.self]
    )

    /// `--dir DIR [--ca-dir CADIR]`.
    struct Directories: ParsableArguments {
        @Option(help: "Directory services load: ca.crt, NAME.crt, NAME.key (never ca.key).")
        var dir: String

        @Option(help: "The CA's directory, holding ca.key and ca.crt (default: DIR-ca, next to DIR).")
        var caDir: String?

        var pki: PKIDirectory { PKIDirectory(path: dir, authorityPath: caDir) }
    }

    /// `--days N`.
    struct Lifetime: ParsableArguments {
        @Option(help: "Days the certificate is valid: 1 to \(CertificateAuthority.maximumLeafDays).")
        var days: Int = CertificateAuthority.defaultLeafDays

        func validate() throws {
            guard (1...CertificateAuthority.maximumLeafDays).contains(days) else {
                throw ValidationError("--days must be 1 to \(CertificateAuthority.maximumLeafDays), not \(days)")
            }
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the CA (P-256): CADIR/ca.key and CADIR/ca.crt, and DIR/ca.crt.")

        @OptionGroup var directories: Directories

        func run() async throws {
            let pki = directories.pki
            try pki.initialize()
            print("created \(pki.authorityPath)/ca.key and \(pki.authorityPath)/ca.crt (keep ca.key offline), and \(pki.path)/ca.crt")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue DIR/NAME.crt and DIR/NAME.key for a service or operator.")

        @OptionGroup var directories: Directories

        @Option(help: "The role the certificate carries.")
        var role: Role

        @Option(help: "The node's name: [a-z0-9][a-z0-9._-]{0,63}.")
        var name: Name

        @Option(help: "A DNS name the node is reached by (repeatable).")
        var dns: [String] = []

        @Option(help: "An IP address the node is reached by (repeatable).")
        var ip: [String] = []

        @OptionGroup var lifetime: Lifetime

        func run() async throws {
            let written = try directories.pki.issue(
                PeerIdentity(role: role, name: name.rawValue), dnsNames: dns, ipAddresses: ip, days: lifetime.days)
            print("issued icbd://\(role)/\(name) for \(lifetime.days) days: \(written.joined(separator: ", "))")
        }
    }

    struct Renew: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Replace DIR/NAME.crt and DIR/NAME.key with a new key and certificate of the same role and addresses.",
            discussion: "Restart the service afterwards; revoke the old certificate if its key may have leaked.")

        @OptionGroup var directories: Directories

        @Option(help: "The certificate's name (DIR/NAME.crt).")
        var name: Name

        @OptionGroup var lifetime: Lifetime

        func run() async throws {
            let renewed = try directories.pki.renew(name: name.rawValue, days: lifetime.days)
            let identity = try PeerIdentity(certificate: renewed)
            print(
                "renewed \(identity) until \(renewed.notValidAfter) (serial \(CertificateSerial(renewed.serialNumber))): \(directories.dir)/\(name).crt, \(directories.dir)/\(name).key"
            )
        }
    }
}
