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
            let answer = try JSONDecoder().decode(HealthAnswer.self, from: Data(json.stdout.utf8))
            #expect(answer.status == "SERVING" && answer.role == "catalog" && answer.node == "cat1", "\(json.stdout)")
            #expect(answer.version.isEmpty == false && answer.site.isEmpty && answer.detail == nil, "\(json.stdout)")

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

    /// What `icbd health --json` prints (docs: `detail` only when the service gave one).
    struct HealthAnswer: Decodable {
        var status: String
        var role: String
        var node: String
        var site: String
        var version: String
        var detail: String?
    }

    /// A command line with one bad value and what its error must say besides naming it.
    struct BadValue: Sendable, CustomTestStringConvertible {
        let arguments: [String]
        /// argument-parser's opening: the value and the option or argument it was given for.
        let refused: String
        /// What a valid value is: the values of an enum-like option, or the parser's reason and form.
        let valid: [String]
        var testDescription: String { arguments.joined(separator: " ") }
    }

    static let client = ["--catalog", "127.0.0.1:1", "--tls-dir", "d"]
    static let service = ["--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "n"]

    @Test(arguments: [
        BadValue(
            arguments: ["node", "list", "--role", "router"] + client, refused: "The value 'router' is invalid for '--role <role>'",
            valid: ["Please provide one of 'replicator', 'cache' or 'gateway'"]),
        BadValue(
            arguments: ["pki", "issue", "--dir", "d", "--role", "king", "--name", "n"],
            refused: "The value 'king' is invalid for '--role <role>'",
            valid: ["'catalog', 'replicator', 'cache', 'gateway' or 'admin'"]),
        BadValue(
            arguments: ["health", "127.0.0.1:1", "--tls-dir", "d", "--log-level", "loud"],
            refused: "The value 'loud' is invalid for '--log-level <log-level>'", valid: ["  - trace\n", "  - critical"]),
        BadValue(
            arguments: ["cache", "--dir", "c", "--capacity", "1GiB", "--eviction", "fifo"] + service,
            refused: "The value 'fifo' is invalid for '--eviction <eviction>'", valid: ["'s3fifo' and 'lru'"]),
        BadValue(
            arguments: ["replicator", "--root", "r", "--compression", "maybe"] + service,
            refused: "The value 'maybe' is invalid for '--compression <compression>'", valid: ["'auto', 'on' or 'off'"]),
        BadValue(
            arguments: ["gateway", "--memory-cache", "12XB"] + service, refused: "The value '12XB' is invalid for '--memory-cache <size>'",
            valid: ["unknown unit 'XB'; use B, KiB, MiB, GiB, TiB, kB, MB, GB or TB (e.g. 512MiB, 20GiB)"]),
        BadValue(
            arguments: ["cache", "--dir", "c", "--capacity", "lots"] + service, refused: "The value 'lots' is invalid for '--capacity <size>'",
            valid: ["it does not start with a whole number", "e.g. 512MiB"]),
        BadValue(
            arguments: ["catalog", "--listen", "nowhere", "--db", "x.db", "--tls-dir", "d", "--name", "c"],
            refused: "The value 'nowhere' is invalid for '--listen <host:port>'", valid: ["the port is missing (expected HOST:PORT)"]),
        BadValue(
            arguments: ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:7000,[::1]", "--tls-dir", "d", "--name", "g"],
            refused: "The value '127.0.0.1:7000,[::1]' is invalid for '--catalog <host:port>'",
            valid: ["invalid address '[::1]': an IPv6 address must look like [::1]:PORT"]),
        BadValue(
            arguments: ["replicator", "--root", "r", "--advertise", "10.0.0.1:70000"] + service,
            refused: "The value '10.0.0.1:70000' is invalid for '--advertise <host:port>'",
            valid: ["the port must be a number from 0 to 65535"]),
        BadValue(
            arguments: ["assign", "zz", "win11"] + client, refused: "The value 'zz' is invalid for '<mac>'",
            valid: ["expected six hex pairs such as 52:54:00:12:34:56"]),
        BadValue(
            arguments: ["gateway", "--trusted-proxy", "10.0.0.1/8"] + service,
            refused: "The value '10.0.0.1/8' is invalid for '--trusted-proxy <cidr>'", valid: ["did you mean 10.0.0.0/8?"]),
        BadValue(
            arguments: ["node", "list", "--site", "Bad Site"] + client, refused: "The value 'Bad Site' is invalid for '--site <site>'",
            valid: ["names match [a-z0-9][a-z0-9._-]{0,63}"]),
        BadValue(
            arguments: ["gateway", "--default-image", "win11:"] + service,
            refused: "The value 'win11:' is invalid for '--default-image <image[:ref]>'", valid: ["ends in ':' without a version or tag"]),
        BadValue(
            arguments: ["pki", "revoke", "3a:5fff"] + client, refused: "The value '3a:5fff' is invalid for '<certificate>'",
            valid: ["hex bytes, 1 to 20 of them, like 3a:5f:01 or serial=3A5F01"]),
    ])
    func aBadValueIsRefusedNamingTheOptionAndWhatIsValid(_ bad: BadValue) async throws {
        let result = try await CommandRunner.run(bad.arguments)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("Error: \(bad.refused)"), "\(result.stderr)")
        for valid in bad.valid {
            #expect(result.stderr.contains(valid), "\(result.stderr)")
        }
    }

    @Test func helpAndCompletionsListTheValuesOfEnumLikeOptions() async throws {
        // Help wraps lines: compare with single spaces.
        func words(_ text: String) -> String { text.split(whereSeparator: \.isWhitespace).joined(separator: " ") }
        let nodeHelp = words(try await CommandRunner.run(["node", "list", "--help"]).stdout)
        #expect(nodeHelp.contains("--role <role> Only nodes of this role. (values: replicator, cache, gateway)"), "\(nodeHelp)")
        let cacheHelp = words(try await CommandRunner.run(["cache", "--help"]).stdout)
        #expect(cacheHelp.contains("--eviction <eviction> The eviction policy. (values: s3fifo, lru; default: s3fifo)"), "\(cacheHelp)")
        #expect(cacheHelp.contains("--scrub-rate <size>"), "\(cacheHelp)")
        let fish = try await CommandRunner.run(["--generate-completion-script", "fish"])
        let roleLine = try #require(fish.stdout.split(separator: "\n").first { $0.contains("\"icbd node list\" role") }, "\(fish.stdout)")
        #expect(roleLine.hasSuffix("-rfka 'replicator cache gateway'"), "\(roleLine)")
        let levelLine = try #require(fish.stdout.split(separator: "\n").first { $0.contains("\"icbd gateway\" log-level") })
        #expect(levelLine.hasSuffix("-rfka 'trace debug info notice warning error critical'"), "\(levelLine)")
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
