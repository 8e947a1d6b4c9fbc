import Foundation
import ICBDCore
import Testing

@testable import Gateway

@Suite("Choosing upstreams: rendezvous order, sites, repositories, ejection")
struct RoutingTests {
    func node(_ name: String, _ role: NodeRole, site: String, state: NodeState = .up) throws -> NodeRecord {
        NodeRecord(
            name: try Name(name), role: role, site: try Name(site), rpcAddress: HostPort(host: "127.0.0.1", port: 1000 + name.count),
            httpAddress: nil, capacityBytes: 0, heartbeatTTLMilliseconds: 30_000, lastHeartbeat: nil, state: state, revision: .zero)
    }

    func chunk(_ seed: Int) -> [UInt8] {
        var hasher = RendezvousOrder.mix(UInt64(seed))
        return (0..<32).map { _ in
            hasher = RendezvousOrder.mix(hasher)
            return UInt8(truncatingIfNeeded: hasher)
        }
    }

    @Test func everyGatewayRanksTheSameWayAndALeavingNodeMovesOnlyItsChunks() {
        let names = ["c1", "c2", "c3", "c4"]
        var homes: [String: Int] = [:]
        for seed in 0..<4000 {
            let ranked = RendezvousOrder.rank(names, for: chunk(seed), name: { $0 })
            #expect(ranked == RendezvousOrder.rank(names.reversed(), for: chunk(seed), name: { $0 }))
            homes[ranked[0], default: 0] += 1
            // Without c2, chunks keep their order among the others.
            let without = RendezvousOrder.rank(names.filter { $0 != "c2" }, for: chunk(seed), name: { $0 })
            #expect(without == ranked.filter { $0 != "c2" })
        }
        // Spread: each of four nodes is home to roughly a quarter of the chunks.
        for name in names { #expect((800...1200).contains(homes[name] ?? 0), "\(name): \(homes[name] ?? 0)") }
    }

    @Test func siteCachesThenOtherSitesThenRepositoriesThenTheEjected() throws {
        var snapshot = CatalogSnapshot()
        for node in try [
            node("hq-c1", .cache, site: "hq"), node("hq-c2", .cache, site: "hq"), node("br-c1", .cache, site: "branch"),
            node("hq-c3", .cache, site: "hq", state: .down), node("repo-hq", .replicator, site: "hq"),
            node("repo-br", .replicator, site: "branch"), node("gw", .gateway, site: "hq"),
        ] {
            snapshot.nodes[node.name.rawValue] = node
        }
        let hash = chunk(7)
        let branchPlan = UpstreamPlan.order(chunk: hash, site: "branch", image: "win11", version: 1, snapshot: snapshot, isEjected: { _ in false })
        #expect(branchPlan.map(\.name).prefix(1) == ["br-c1"])
        #expect(Set(branchPlan.map(\.name)[1...2]) == ["hq-c1", "hq-c2"])
        #expect(Array(branchPlan.map(\.name)[3...]) == ["repo-br", "repo-hq"])

        let hqPlan = UpstreamPlan.order(chunk: hash, site: "hq", image: "win11", version: 1, snapshot: snapshot, isEjected: { $0 == "hq-c1" })
        #expect(hqPlan.last?.name == "hq-c1")
        #expect(hqPlan.map(\.name).first == "hq-c2")

        // A repository holding the version is preferred to one that does not.
        let placement = PlacementRecord(
            image: try Name("win11"), version: 1, node: try Name("repo-br"), state: .present, detail: "", updated: Date(), revision: .zero)
        snapshot.placements[.init(image: placement.image, version: 1, node: placement.node)] = placement
        let placed = UpstreamPlan.order(chunk: hash, site: "hq", image: "win11", version: 1, snapshot: snapshot, isEjected: { _ in false })
        #expect(placed.filter { $0.kind == .repository }.map(\.name) == ["repo-br"])
    }

    @Test func clientsMapToSitesByLongestPrefix() throws {
        var snapshot = CatalogSnapshot()
        snapshot.sites["hq"] = SiteRecord(name: try Name("hq"), description: "", cidrs: [try CIDR(parsing: "10.0.0.0/8")], links: [], revision: .zero)
        snapshot.sites["branch"] = SiteRecord(
            name: try Name("branch"), description: "", cidrs: [try CIDR(parsing: "10.2.0.0/16"), try CIDR(parsing: "2001:db8:2::/48")], links: [],
            revision: .zero)
        #expect(snapshot.site(of: try IPAddress(parsing: "10.1.2.3")) == "hq")
        #expect(snapshot.site(of: try IPAddress(parsing: "10.2.2.3")) == "branch")
        #expect(snapshot.site(of: try IPAddress(parsing: "2001:db8:2::7")) == "branch")
        #expect(snapshot.site(of: try IPAddress(parsing: "192.168.1.1")) == nil)
    }
}
