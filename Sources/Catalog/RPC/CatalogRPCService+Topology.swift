import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    static let maximumCIDRsPerSite = 256
    static let maximumLinksPerSite = 64

    func registerTopology(into router: inout RPCRouter) {
        let store = self.store
        let pager = self.pager
        let now = self.now
        let settings = self.settings

        router.unary(CatalogMethods.listSites) { request, _ in
            let sites = try await store.listSites()
            var response = Icbd_Catalog_V1_ListSitesResponse()
            response.revision = sites.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            let page = try pager.page(
                sites.value, key: \.name.rawValue, after: try ListingPager.token(request.pageToken), space: &space,
                wire: Icbd_Catalog_V1_Site.init)
            response.sites = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }

        router.unary(CatalogMethods.putSite) { request, context in
            let spec = try Self.siteSpec(request.site)
            let expected = ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil)
            let result = try await store.putSite(spec, expected: expected)
            logger(for: context).info(
                result.value.created ? "site added" : "site changed",
                metadata: ["site": "\(spec.name)", "cidrs": "\(spec.cidrs.map(\.description).joined(separator: ","))", "revision": "\(result.revision)"])
            var response = Icbd_Catalog_V1_PutSiteResponse()
            response.site = .init(result.value.0)
            response.created = result.value.created
            response.revision = result.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.deleteSite) { request, context in
            let name = try WireFields.name(request.name, "name")
            let revision = try await store.deleteSite(
                name, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("site deleted", metadata: ["site": "\(name)", "revision": "\(revision)"])
            var response = Icbd_Catalog_V1_DeleteSiteResponse()
            response.revision = revision.rawValue
            return response
        }

        router.unary(CatalogMethods.listNodes) { request, _ in
            let role: NodeRole? = request.role == .unspecified ? nil : try Self.nodeRole(request.role, "role")
            let nodes = try await store.listNodes(NodeFilter(site: try WireFields.optionalName(request.site, "site"), role: role))
            var response = Icbd_Catalog_V1_ListNodesResponse()
            response.revision = nodes.revision.rawValue
            var space = try pager.space(items: try ListingPager.pageSize(request.pageSize), used: response)
            // Listed by site, role and name: \u{1} sorts below every character of a name.
            let page = try pager.page(
                nodes.value, key: { "\($0.site)\u{1}\($0.role.rawValue)\u{1}\($0.name)" }, after: try ListingPager.token(request.pageToken),
                space: &space, wire: Icbd_Catalog_V1_Node.init)
            response.nodes = page.items
            response.nextPageToken = page.cut?.after ?? ""
            return response
        }

        router.unary(CatalogMethods.registerNode) { request, context in
            let name = try WireFields.name(request.name, "name")
            try Self.requireSelf(context, name, "register")
            let role = try Self.nodeRole(request.role, "role")
            guard context.peer.role == .admin || context.peer.role.rawValue == role.rawValue else {
                throw RPCError(
                    code: .permissionDenied, message: "\(context.peer) may register only as a \(context.peer.role) node, not as a \(role) node")
            }
            let ttl = request.heartbeatTtlMs == 0 ? settings.defaultHeartbeatTTL : .milliseconds(request.heartbeatTtlMs)
            guard settings.heartbeatTTLRange.contains(ttl) else {
                throw WireFields.invalid(
                    "heartbeat_ttl_ms", "must be from \(settings.heartbeatTTLRange.lowerBound) to \(settings.heartbeatTTLRange.upperBound), not \(ttl)")
            }
            let registration = NodeRegistration(
                name: name, role: role, site: try WireFields.name(request.site, "site"),
                rpcAddress: try WireFields.optionalHostPort(request.rpcAddress, "rpc_address"),
                httpAddress: try WireFields.optionalHostPort(request.httpAddress, "http_address"),
                capacityBytes: try WireFields.nonNegative(request.capacityBytes, "capacity_bytes"),
                heartbeatTTLMilliseconds: ttl.wholeMilliseconds)
            let node = try await store.registerNode(registration, byAdmin: context.peer.role == .admin, at: now())
            logger(for: context).info(
                "node registered",
                metadata: ["node": "\(name)", "role": "\(role)", "site": "\(registration.site)", "state": "\(node.value.state)"])
            var response = Icbd_Catalog_V1_RegisterNodeResponse()
            response.node = .init(node.value)
            response.revision = node.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.heartbeat) { request, context in
            let name = try WireFields.name(request.name, "name")
            try Self.requireSelf(context, name, "heartbeat")
            let before = try await store.currentRevision()
            let node = try await store.heartbeat(name, usage: try WireFields.cacheUsage(request), at: now())
            if node.revision > before, node.value.revision == node.revision {
                logger(for: context).info("node up again", metadata: ["node": "\(name)", "state": "\(node.value.state)"])
            }
            var response = Icbd_Catalog_V1_HeartbeatResponse()
            response.node = .init(node.value)
            response.revision = node.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.setNodeState) { request, context in
            let name = try WireFields.name(request.name, "name")
            let state: NodeState
            switch request.state {
            case .up: state = .up
            case .draining: state = .draining
            case .down: throw WireFields.invalid("state", "down is set by the catalog when heartbeats stop; set up or draining")
            case .unspecified, .UNRECOGNIZED: throw WireFields.invalid("state", "must be up or draining")
            }
            let node = try await store.setNodeState(
                name, state, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("node state set", metadata: ["node": "\(name)", "state": "\(state)", "revision": "\(node.revision)"])
            var response = Icbd_Catalog_V1_SetNodeStateResponse()
            response.node = .init(node.value)
            response.revision = node.revision.rawValue
            return response
        }

        router.unary(CatalogMethods.deleteNode) { request, context in
            let name = try WireFields.name(request.name, "name")
            let revision = try await store.deleteNode(
                name, expected: ExpectedRevision(wire: request.hasExpectedRevision ? request.expectedRevision : nil))
            logger(for: context).info("node deleted", metadata: ["node": "\(name)", "revision": "\(revision)"])
            var response = Icbd_Catalog_V1_DeleteNodeResponse()
            response.revision = revision.rawValue
            return response
        }
    }

    static func nodeRole(_ role: Icbd_Catalog_V1_NodeRole, _ field: String) throws -> NodeRole {
        switch role {
        case .replicator: .replicator
        case .cache: .cache
        case .gateway: .gateway
        case .unspecified, .UNRECOGNIZED: throw WireFields.invalid(field, "must be replicator, cache or gateway")
        }
    }

    static func siteSpec(_ site: Icbd_Catalog_V1_Site) throws -> SiteSpec {
        let name = try WireFields.name(site.name, "site.name")
        let cidrs = try WireFields.bounded(site.cidrs, "site.cidrs", maximum: maximumCIDRsPerSite).enumerated().map { index, text in
            try WireFields.cidr(text, "site.cidrs[\(index)]")
        }
        let links = try WireFields.bounded(site.links, "site.links", maximum: maximumLinksPerSite).enumerated().map { index, link in
            SiteLink(
                site: try WireFields.name(link.site, "site.links[\(index)].site"),
                rateBytesPerSecond: try WireFields.nonNegative(link.rateBytesPerSecond, "site.links[\(index)].rate_bytes_per_second"),
                compression: try WireFields.linkCompression(link.compression, "site.links[\(index)].compression"))
        }
        return SiteSpec(name: name, description: try WireFields.text(site.description_p, "site.description"), cidrs: cidrs, links: links)
    }
}
