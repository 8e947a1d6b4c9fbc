import Foundation
import ICBDCore
import ICBDRPC
import ICBDTestSupport
import Testing
import X509

/// `icbd pki` and the services' refusal of misplaced keys, as real processes: the CA's key
/// stays out of the directory services load, keys are private and never written through a
/// planted symlink, certificates live 90 days and are renewed in place.
@Suite("icbd pki: keys where they belong, short-lived certificates")
struct PKICommandLineTests {
    /// `icbd pki init` and a catalog and an admin certificate, as `CommandLineTests` makes them.
    func makePKI(in directory: URL) async throws -> String {
        try await mintPKI(in: directory, [("catalog", "cat1"), ("admin", "admin")])
    }

    func mode(_ path: String) throws -> Int {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int ?? -1
    }

    /// The leaf certificate of `DIR/NAME.crt`, loaded as a service loads it.
    func certificate(_ pki: String, _ name: String) throws -> Certificate {
        try TLSIdentity.load(directory: pki, name: name).certificateChain[0]
    }

    func startCatalog(_ pki: String, in directory: URL) async throws -> CommandRunner.Result {
        try await CommandRunner.run(
            ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki, "--name", "cat1"])
    }

    @Test func initKeepsTheCAKeyOutOfTheDirectoryServicesLoad() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let files = try FileManager.default.contentsOfDirectory(atPath: pki).sorted()
            #expect(files == ["admin.crt", "admin.key", "ca.crt", "cat1.crt", "cat1.key"])
            let authority = pki + "-ca"
            #expect(try FileManager.default.contentsOfDirectory(atPath: authority).sorted() == ["ca.crt", "ca.key"])
            #expect(try mode(authority) == 0o700)
            #expect(try mode(authority + "/ca.key") == 0o600)
            #expect(try String(contentsOfFile: authority + "/ca.crt", encoding: .utf8) == String(contentsOfFile: pki + "/ca.crt", encoding: .utf8))
        }
    }

    @Test func aServiceWhoseTLSDirectoryHoldsTheCAKeyRefusesToStart() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            try FileManager.default.copyItem(atPath: pki + "-ca/ca.key", toPath: pki + "/ca.key")
            let result = try await startCatalog(pki, in: directory)
            #expect(result.status == 1)
            #expect(result.stderr.contains("holds the CA's key (ca.key)"), "\(result.stderr)")
            #expect(result.stderr.contains("move it"))
        }
    }

    @Test func aServiceWhoseKeyOthersCanReadRefusesToStart() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            #expect(chmod(pki + "/cat1.key", 0o644) == 0)
            let result = try await startCatalog(pki, in: directory)
            #expect(result.status == 1)
            #expect(result.stderr.contains("cat1.key is readable by group or others (mode 644)"), "\(result.stderr)")
            #expect(result.stderr.contains("chmod 600"))
        }
    }

    @Test func issueNeverWritesThroughASymlinkPlantedAtTheKeyPath() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let victim = directory.appendingPathComponent("victim").path
            try "precious\n".write(toFile: victim, atomically: false, encoding: .utf8)
            try FileManager.default.createSymbolicLink(atPath: pki + "/evil.key", withDestinationPath: victim)
            let result = try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", "cache", "--name", "evil"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("evil.key exists already"), "\(result.stderr)")
            #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n")
            #expect(try FileManager.default.destinationOfSymbolicLink(atPath: pki + "/evil.key") == victim)
            #expect(!FileManager.default.fileExists(atPath: pki + "/evil.crt"))

            // A dangling link (a key about to be created elsewhere) is refused the same way.
            let elsewhere = directory.appendingPathComponent("elsewhere.key").path
            try FileManager.default.createSymbolicLink(atPath: pki + "/other.key", withDestinationPath: elsewhere)
            let dangling = try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", "cache", "--name", "other"])
            #expect(dangling.status == 1)
            #expect(!FileManager.default.fileExists(atPath: elsewhere))
        }
    }

    @Test func newCertificatesLiveNinetyDaysAndRenewReplacesThem() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let issued = try certificate(pki, "cat1")
            let days = issued.notValidAfter.timeIntervalSinceNow / 86400
            #expect(abs(days - 90) < 0.1, "\(days) days")
            let oldKey = try String(contentsOfFile: pki + "/cat1.key", encoding: .utf8)

            let renewed = try await CommandRunner.run(["pki", "renew", "--dir", pki, "--name", "cat1", "--days", "30"])
            #expect(renewed.status == 0, "\(renewed.stderr)")
            #expect(renewed.stdout.contains("renewed icbd://catalog/cat1"))
            let replacement = try certificate(pki, "cat1")
            #expect(replacement.serialNumber != issued.serialNumber)
            #expect(try String(contentsOfFile: pki + "/cat1.key", encoding: .utf8) != oldKey)
            #expect(try mode(pki + "/cat1.key") == 0o600)
            let renewedDays = replacement.notValidAfter.timeIntervalSinceNow / 86400
            #expect(abs(renewedDays - 30) < 0.1, "\(renewedDays) days")
            #expect(try PeerIdentity(certificate: replacement) == PeerIdentity(role: .catalog, name: "cat1"))
            #expect(
                try replacement.extensions.subjectAlternativeNames.map(Array.init)
                    == issued.extensions.subjectAlternativeNames.map(Array.init), "same addresses")

            // The renewed pair works: a catalog starts with it and answers.
            let catalog = try await ServiceProcess(
                ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki,
                 "--name", "cat1"], in: directory)
            let health = try await CommandRunner.run(["health", try await catalog.listeningAddress(), "--tls-dir", pki])
            #expect(health.status == 0, "\(health.stderr)")

            // Issuing over an existing name is refused: renew is the way.
            let again = try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", "catalog", "--name", "cat1"])
            #expect(again.status == 1)
            #expect(again.stderr.contains("icbd pki renew"), "\(again.stderr)")
            let tooLong = try await CommandRunner.run(["pki", "renew", "--dir", pki, "--name", "cat1", "--days", "9999"])
            #expect(tooLong.status == 2)
        }
    }

    /// A node connects fine; the admin revokes it with `icbd pki revoke`; its next handshake to
    /// the catalog and to a replicator is refused, and the admin's still works.
    @Test(.requiresLoopBtrfs) func aRevokedCertificateIsRefusedByTheCatalogAndAReplicator() async throws {
        try await LoopBtrfs.with(size: "1G") { root in
            try await withTemporaryDirectory { directory in
                let pki = try await mintPKI(
                    in: directory, [("catalog", "cat1"), ("replicator", "repo-hq"), ("cache", "cache1"), ("admin", "admin")])
                let catalog = try await ServiceProcess(
                    ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path, "--tls-dir", pki,
                     "--name", "cat1", "--revocation-refresh", "1"], in: directory)
                let catalogAddress = try await catalog.listeningAddress()
                #expect(try await CommandRunner.run(["site", "add", "hq", "--catalog", catalogAddress, "--tls-dir", pki]).status == 0)
                let replicator = try await ServiceProcess(
                    ["replicator", "--listen", "127.0.0.1:0", "--root", root, "--site", "hq", "--catalog", catalogAddress,
                     "--tls-dir", pki, "--name", "repo-hq", "--revocation-refresh", "1"], in: directory)
                let replicatorAddress = try await replicator.listeningAddress()
                func health(_ address: String, _ role: String, as name: String) async throws -> CommandRunner.Result {
                    try await CommandRunner.run(["health", address, "--role", role, "--tls-dir", pki, "--name", name, "--timeout", "5"])
                }
                for (address, role) in [(catalogAddress, "catalog"), (replicatorAddress, "replicator")] {
                    let before = try await health(address, role, as: "cache1")
                    #expect(before.status == 0, "\(role) before: \(before.stderr)")
                }

                let revoked = try await CommandRunner.run(
                    ["pki", "revoke", "cache1", "--catalog", catalogAddress, "--tls-dir", pki, "--reason", "laptop stolen"])
                #expect(revoked.status == 0, "\(revoked.stderr)")
                #expect(revoked.stdout.contains("revoked icbd://cache/cache1"), "\(revoked.stdout)")

                for (address, role, service) in [(catalogAddress, "catalog", catalog), (replicatorAddress, "replicator", replicator)] {
                    var refused = false
                    // Each server refreshes every second here (30 s by default); a minute at most.
                    for _ in 0..<300 where !refused {
                        refused = try await health(address, role, as: "cache1").status != 0
                        if !refused { try await Task.sleep(for: .milliseconds(200)) }
                    }
                    #expect(refused, "\(role) still accepts the revoked certificate")
                    #expect(service.stderr.contains("was revoked"), "\(role) logs why")
                    let admin = try await health(address, role, as: "admin")
                    #expect(admin.status == 0, "\(role) still serves the admin: \(admin.stderr)")
                }

                let twice = try await CommandRunner.run(["pki", "revoke", "cache1", "--catalog", catalogAddress, "--tls-dir", pki])
                #expect(twice.stdout.contains("was revoked already"))
                let notAdmin = try await CommandRunner.run(
                    ["pki", "revoke", "admin", "--catalog", catalogAddress, "--tls-dir", pki, "--name", "repo-hq"])
                #expect(notAdmin.status == 1)
                #expect(notAdmin.stderr.contains("PERMISSION_DENIED"), "\(notAdmin.stderr)")
            }
        }
    }
}
