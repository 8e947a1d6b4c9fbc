import CatalogClient
import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import Metrics
import SwiftProtobuf

extension CatalogRPCService {
    func registerBoots(into router: inout RPCRouter) {
        let store = self.store
        let now = self.now

        router.unary(CatalogMethods.reportBoots) { request, context in
            let boots = try WireFields.bounded(request.boots, "boots", maximum: BootReport.maximumPerReport)
            // A gateway reports as itself, at its registered site: nothing of the request says where.
            let gateway = try WireFields.name(context.peer.name, "caller")
            guard let node = try await store.listNodes(NodeFilter(role: .gateway)).value.first(where: { $0.name == gateway }) else {
                throw RPCError(code: .failedPrecondition, message: "gateway '\(gateway)' is not registered; register first, then report boots")
            }
            let at = now()
            let reports = try boots.enumerated().map { index, boot in
                try Self.bootReport(boot, field: "boots[\(index)]", site: node.site, gateway: gateway, now: at)
            }
            let result = try await store.recordBoots(reports, at: at)
            let logger = logger(for: context)
            for rollout in result.value.decided {
                let metadata: Logger.Metadata = [
                    "image": "\(rollout.image)", "tag": "\(rollout.tag)", "from_version": "\(rollout.fromVersion)",
                    "to_version": "\(rollout.toVersion)", "detail": "\(rollout.detail)", "revision": "\(result.revision)",
                ]
                switch rollout.state {
                case .rolledBack:
                    Counter(label: "icbd_rollout_rollbacks_total", dimensions: [("image", rollout.image.rawValue), ("tag", rollout.tag.rawValue)])
                        .increment()
                    logger.warning("rollout rolled back", metadata: metadata)
                case .completed: logger.notice("rollout completed", metadata: metadata)
                default: logger.notice("rollout advanced", metadata: metadata)
                }
            }
            return .with {
                $0.recorded = Int32(result.value.recorded)
                $0.ignored = Int32(result.value.ignored)
            }
        }

        router.unary(CatalogMethods.listBoots) { request, _ in
            let limit = request.limit == 0 ? 100 : Int(request.limit)
            guard (1...1000).contains(limit) else { throw WireFields.invalid("limit", "must be from 1 to 1000, not \(request.limit)") }
            let boots = try await store.listBoots(
                site: try WireFields.optionalName(request.site, "site"), image: try WireFields.optionalName(request.image, "image"),
                limit: limit)
            return .with {
                $0.boots = boots.value.map(Icbd_Catalog_V1_Boot.init)
                $0.revision = boots.revision.rawValue
            }
        }
    }

    /// One reported boot, checked as input from a peer that may lie: names and numbers must be
    /// valid (INVALID_ARGUMENT naming the field otherwise), times are clamped (a start not after
    /// `now`, phases within ``BootReport/maximumMilliseconds``), and the site and gateway are
    /// the caller's, whatever the message says.
    static func bootReport(_ boot: Icbd_Catalog_V1_Boot, field: String, site: Name, gateway: Name, now: Date) throws -> BootReport {
        guard let outcome = BootReport.Outcome(wire: boot.outcome) else {
            throw WireFields.invalid("\(field).outcome", "must be BOOTED, SETTLED, UNSETTLED or FAILED")
        }
        let failure: String?
        switch (outcome, boot.failure) {
        case (.failed, "not_loaded"), (.failed, "restarted"): failure = boot.failure
        case (.failed, _): throw WireFields.invalid("\(field).failure", "a failed boot's reason must be not_loaded or restarted")
        case (_, ""): failure = nil
        default: throw WireFields.invalid("\(field).failure", "only a failed boot has a reason")
        }
        func duration(_ present: Bool, _ value: Int64) -> Int64? {
            present ? min(max(value, 0), BootReport.maximumMilliseconds) : nil
        }
        return BootReport(
            mac: try WireFields.mac(boot.mac, "\(field).mac"), site: site, gateway: gateway,
            image: try WireFields.name(boot.image, "\(field).image"), version: try WireFields.positive(boot.version, "\(field).version"),
            outcome: outcome, failure: failure, started: Date(milliseconds: min(max(boot.startedMs, 0), now.milliseconds)),
            loadedMilliseconds: duration(boot.hasLoadedMs, boot.loadedMs), upMilliseconds: duration(boot.hasUpMs, boot.upMs),
            bytesRead: try WireFields.nonNegative(boot.bytesRead, "\(field).bytes_read"),
            diskReads: try WireFields.nonNegative(boot.diskReads, "\(field).disk_reads"),
            errors: try WireFields.nonNegative(boot.errors, "\(field).errors"),
            unavailable: try WireFields.nonNegative(boot.unavailable, "\(field).unavailable"))
    }
}
