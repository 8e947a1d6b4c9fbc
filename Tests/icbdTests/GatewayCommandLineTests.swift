import Foundation
import ICBDTestSupport
import Testing

@Suite("icbd gateway, as a real process")
struct GatewayCommandLineTests {
    /// `curl -s -o /dev/null -w %{http_code} URL`: the status code.
    func status(_ url: String) async throws -> String {
        try await CommandRunner.runTool("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", url]).stdout
    }

    @Test func gatewayServesHealthAndReadinessAndStopsOnSignal() async throws {
        try await withTemporaryDirectory { directory in
            let pki = directory.appendingPathComponent("pki").path
            #expect(try await CommandRunner.run(["pki", "init", "--dir", pki]).status == 0)
            for (role, name) in [("catalog", "cat1"), ("gateway", "gw1")] {
                #expect(try await CommandRunner.run(["pki", "issue", "--dir", pki, "--role", role, "--name", name, "--ip", "127.0.0.1"]).status == 0)
            }
            let catalog = try await ServiceProcess(
                ["catalog", "--listen", "127.0.0.1:0", "--db", directory.appendingPathComponent("catalog.db").path,
                 "--tls-dir", pki, "--name", "cat1"], in: directory)
            let catalogAddress = try await catalog.listeningAddress()
            let gateway = try await ServiceProcess(
                ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", catalogAddress, "--tls-dir", pki, "--name", "gw1"],
                in: directory)
            let address = try await gateway.listeningAddress()
            #expect(try await status("http://\(address)/healthz") == "200")
            // No cache node or repository: alive, not ready.
            #expect(try await status("http://\(address)/readyz") == "503")
            #expect(try await status("http://\(address)/v1/images") == "200")
            #expect(try await gateway.stop(with: SIGTERM) == 0, "\(gateway.stderr)")
            #expect(try await catalog.stop(with: SIGTERM) == 0)
        }
    }

    @Test(arguments: [
        ["gateway", "--listen", "nowhere", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g"],
        ["gateway", "--listen", "127.0.0.1:0", "--site", "Bad Site", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g"],
        ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g",
         "--trusted-proxy", "10.0.0.1/8"],
        ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g",
         "--admission-limit", "0"],
        ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g",
         "--boot-settle", "0"],
        ["gateway", "--listen", "127.0.0.1:0", "--site", "hq", "--catalog", "127.0.0.1:1", "--tls-dir", "d", "--name", "g",
         "--boot-workstations", "0"],
    ])
    func gatewayUsageErrorsExitWithTwo(arguments: [String]) async throws {
        let result = try await CommandRunner.run(arguments)
        #expect(result.status == 2, "\(arguments): \(result.stderr)")
        #expect(result.stderr.contains("Error:"))
    }
}
