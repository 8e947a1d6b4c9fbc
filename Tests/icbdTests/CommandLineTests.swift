import Foundation
import ICBDTestSupport
import Testing

@Suite("The icbd command line, as a real process")
struct CommandLineTests {
    /// A PKI made with the real commands: CA, a catalog and an admin.
    func makePKI(in directory: URL) async throws -> String {
        let pki = directory.appendingPathComponent("pki").path
        #expect(try await CommandRunner.run(["pki", "init", "--dir", pki]).status == 0)
        let catalog = try await CommandRunner.run(
            ["pki", "issue", "--dir", pki, "--role", "catalog", "--name", "cat1", "--ip", "127.0.0.1", "--dns", "localhost"])
        #expect(catalog.status == 0, "\(catalog.stderr)")
        #expect(try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", "admin", "--name", "admin"]).status == 0)
        return pki
    }

    @Test func pkiWritesKeysOnlyTheOwnerCanRead() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            for (file, mode) in [("-ca/ca.key", 0o600), ("/cat1.key", 0o600), ("/admin.key", 0o600), ("/ca.crt", 0o644), ("/cat1.crt", 0o644)] {
                let attributes = try FileManager.default.attributesOfItem(atPath: "\(pki)\(file)")
                #expect((attributes[.posixPermissions] as? Int) == mode, "\(file)")
            }
            let text = try String(contentsOfFile: "\(pki)/cat1.crt", encoding: .utf8)
            #expect(text.hasPrefix("-----BEGIN CERTIFICATE-----"))
            // A second init would orphan every certificate: refused, and the CA is untouched.
            let before = try Data(contentsOf: URL(fileURLWithPath: "\(pki)-ca/ca.key"))
            let again = try await CommandRunner.run(["pki", "init", "--dir", pki])
            #expect(again.status == 1)
            #expect(again.stderr.contains("exists already"))
            #expect(try Data(contentsOf: URL(fileURLWithPath: "\(pki)-ca/ca.key")) == before)
        }
    }

    @Test(arguments: [SIGTERM, SIGINT])
    func catalogServesHealthAndStopsCleanlyOnSignal(signal: Int32) async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let catalog = try await ServiceProcess(
                ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("catalog.db").path,
                 "--tls-dir", pki, "--name", "cat1"], in: directory)
            let address = try await catalog.listeningAddress()
            #expect(address.hasPrefix("127.0.0.1:") && !address.hasSuffix(":0"))

            let health = try await CommandRunner.run(["health", address, "--tls-dir", pki])
            #expect(health.status == 0, "\(health.stderr)")
            #expect(health.stdout.hasPrefix("SERVING catalog cat1"))

            let json = try await CommandRunner.run(["health", address, "--tls-dir", pki, "--json"])
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: String]
            #expect(object?["status"] == "SERVING")
            #expect(object?["node"] == "cat1")

            // A client that expects another role refuses the catalog's certificate.
            let wrongRole = try await CommandRunner.run(["health", address, "--tls-dir", pki, "--role", "cache"])
            #expect(wrongRole.status == 1)
            #expect(wrongRole.stderr.contains("UNAVAILABLE"))

            #expect(try await catalog.stop(with: signal) == 0, "\(catalog.stderr)")
            #expect(catalog.stderr.contains("stopped"))
        }
    }

    @Test func healthOfNothingSaysUnavailable() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let result = try await CommandRunner.run(["health", "127.0.0.1:1", "--tls-dir", pki])
            #expect(result.status == 1)
            #expect(result.stderr.contains("UNAVAILABLE"))
        }
    }

    @Test(arguments: [
        ["catalog", "--listen", "nowhere", "--db", "x.db", "--tls-dir", "d", "--name", "c"],
        ["catalog", "--listen", "127.0.0.1:99999", "--db", "x.db", "--tls-dir", "d", "--name", "c"],
        ["pki", "issue", "--dir", "d", "--role", "king", "--name", "n"],
        ["pki", "issue", "--dir", "d", "--role", "admin", "--name", "Bad Name"],
        ["no-such-command"],
    ])
    func usageErrorsExitWithTwoAndSayWhy(arguments: [String]) async throws {
        let result = try await CommandRunner.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains("Error:"))
    }

    @Test func catalogWithoutCertificatesSaysWhatToDo() async throws {
        try await withTemporaryDirectory { directory in
            let result = try await CommandRunner.run(
                ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("c.db").path,
                 "--tls-dir", directory.path, "--name", "cat1"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("icbd pki init"))
        }
    }

    @Test func replicatorRefusesARootThatIsNotBtrfs() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            #expect(try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", "replicator", "--name", "repo-hq"]).status == 0)
            let result = try await CommandRunner.run(
                ["replicator", "--listen", "127.0.0.1:0", "--root", directory.path, "--site", "hq", "--catalog", "127.0.0.1:1",
                 "--tls-dir", pki, "--name", "repo-hq"])
            #expect(result.status == 1)
            #expect(result.stderr.contains("not on BTRFS"), "\(result.stderr)")
        }
    }

    @Test func publishRefusesASourceWithASymbolicLink() async throws {
        try await withTemporaryDirectory { directory in
            let pki = try await makePKI(in: directory)
            let source = directory.appendingPathComponent("src").path
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            FileManager.default.createFile(atPath: source + "/disk.raw", contents: Data(count: 4096))
            try FileManager.default.createSymbolicLink(atPath: source + "/evil", withDestinationPath: "/etc/passwd")
            let result = try await CommandRunner.run(
                ["image", "publish", "win11", source, "--replicator", "127.0.0.1:1", "--tls-dir", pki])
            #expect(result.status == 1)
            #expect(result.stderr.contains("'evil' is not a regular file"), "\(result.stderr)")
        }
    }
}
