import Foundation
import Testing

@Suite("--metrics: Prometheus figures of a real service process")
struct MetricsCommandLineTests {
    @Test func aCatalogCountsItsCallsByMethodAndStatus() async throws {
        let deployment = try await CatalogDeployment()
        let catalog = try await ServiceProcess(
            ["catalog", "--listen", "127.0.0.1:0", "--db", deployment.database, "--tls-dir", deployment.pki, "--name", "cat1",
             "--metrics", "127.0.0.1:0"],
            in: deployment.directory)
        let address = try await catalog.listeningAddress()
        #expect(try await deployment.cli(["site", "add", "hq"], address).status == 0)
        #expect(try await deployment.cli(["image", "show", "nope"], address).status == 1)

        let url = try await catalog.announcedLine(prefix: "metrics ")
        let scrape = try await CommandRunner.runTool("/usr/bin/curl", ["-sf", url])
        #expect(scrape.status == 0, "\(scrape.stderr)")
        #expect(scrape.stdout.contains(#"icbd_rpc_server_calls_total{method="/icbd.catalog.v1.Catalog/PutSite",code="OK"} 1"#), "\(scrape.stdout)")
        #expect(scrape.stdout.contains(#"code="NOT_FOUND""#), "\(scrape.stdout)")
        #expect(scrape.stdout.contains("icbd_rpc_server_call_seconds_bucket"), "\(scrape.stdout)")
        #expect(try await catalog.stop(with: SIGTERM) == 0)
    }
}
