import Foundation
import ICBDCore
import ICBDProto
import SwiftProtobuf
import Testing

@testable import Gateway

@Suite("Choosing upstreams: rendezvous order, sites, repositories, ejection")
struct RoutingTests {
    func node(_ name: String, _ role: Icbd_Catalog_V1_NodeRole, site: String, state: Icbd_Catalog_V1_NodeState = .up) -> Icbd_Catalog_V1_Node {
        .with {
            $0.name = name
            $0.role = role
            $0.site = site
            $0.state = state
            $0.rpcAddress = "127.0.0.1:\(1000 + name.count)"
        }
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

    @Test func siteCachesThenOtherSitesThenRepositoriesThenTheEjected() {
        var snapshot = CatalogSnapshot()
        for node in [
            node("hq-c1", .cache, site: "hq"), node("hq-c2", .cache, site: "hq"), node("br-c1", .cache, site: "branch"),
            node("hq-c3", .cache, site: "hq", state: .down), node("repo-hq", .replicator, site: "hq"),
            node("repo-br", .replicator, site: "branch"), node("gw", .gateway, site: "hq"),
        ] {
            snapshot.nodes[node.name] = node
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
        snapshot.placements[.init(image: "win11", version: 1, node: "repo-br")] = .with {
            $0.image = "win11"
            $0.version = 1
            $0.node = "repo-br"
            $0.state = .present
        }
        let placed = UpstreamPlan.order(chunk: hash, site: "hq", image: "win11", version: 1, snapshot: snapshot, isEjected: { _ in false })
        #expect(placed.filter { $0.kind == .repository }.map(\.name) == ["repo-br"])
    }

    @Test func clientsMapToSitesByLongestPrefix() throws {
        var snapshot = CatalogSnapshot()
        snapshot.sites["hq"] = .with { $0.name = "hq"; $0.cidrs = ["10.0.0.0/8"] }
        snapshot.sites["branch"] = .with { $0.name = "branch"; $0.cidrs = ["10.2.0.0/16", "2001:db8:2::/48"] }
        #expect(snapshot.site(of: try IPAddress(parsing: "10.1.2.3")) == "hq")
        #expect(snapshot.site(of: try IPAddress(parsing: "10.2.2.3")) == "branch")
        #expect(snapshot.site(of: try IPAddress(parsing: "2001:db8:2::7")) == "branch")
        #expect(snapshot.site(of: try IPAddress(parsing: "192.168.1.1")) == nil)
    }
}
