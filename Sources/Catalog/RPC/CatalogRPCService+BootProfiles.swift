import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging
import SwiftProtobuf

extension CatalogRPCService {
    func registerBootProfiles(into router: inout RPCRouter) {
        router.unary(CatalogMethods.putBootProfile) { request, context in
            let node = try WireFields.name(request.node, "node")
            try Self.requireSelf(context, node, "record boot profiles")
            let profile = BootProfileRecord(
                image: try WireFields.name(request.image, "image"), version: try WireFields.positive(request.version, "version"),
                node: node, recorded: now(), entries: try WireFields.bootProfileEntries(request.entries))
            try await store.putBootProfile(profile)
            logger(for: context).debug(
                "boot profile recorded",
                metadata: ["image": "\(profile.image)", "version": "\(profile.version)", "entries": "\(profile.entries.count)"])
            return Icbd_Catalog_V1_PutBootProfileResponse()
        }

        router.unary(CatalogMethods.getBootProfile) { request, _ in
            let image = try WireFields.name(request.image, "image")
            let version = try WireFields.positive(request.version, "version")
            let recordings = try await store.bootProfiles(image: image, version: version, atOrBefore: request.atOrBefore)
            guard let first = recordings.first else {
                let which = request.atOrBefore ? "any version up to \(version)" : "version \(version)"
                throw RPCError(code: .notFound, message: "no boot profile of \(which) of image '\(image)' was recorded")
            }
            return .with {
                $0.image = image.rawValue
                $0.version = first.version
                $0.nodes = recordings.map(\.node.rawValue)
                $0.entries = BootProfileRecord.merged(recordings).map { entry in
                    .with {
                        $0.path = entry.path
                        $0.index = entry.index
                        $0.offsetMs = entry.offsetMilliseconds
                    }
                }
                $0.recordedMs = recordings.map(\.recorded.milliseconds).max() ?? 0
            }
        }
    }
}

extension WireFields {
    /// A recording's entries: 1 to ``BootProfileRecord/maximumEntries``, each a valid file path.
    static func bootProfileEntries(_ entries: [Icbd_Catalog_V1_BootProfileEntry]) throws -> [BootProfileEntry] {
        guard !entries.isEmpty, entries.count <= BootProfileRecord.maximumEntries else {
            throw invalid("entries", "must hold 1 to \(BootProfileRecord.maximumEntries) positions, not \(entries.count)")
        }
        var checked: Set<String> = []
        return try entries.map { entry in
            if checked.insert(entry.path).inserted { _ = try path(entry.path, "entries.path") }
            return BootProfileEntry(path: entry.path, index: entry.index, offsetMilliseconds: entry.offsetMs)
        }
    }

    /// The usage a heartbeat reports: used bytes not negative, a hit ratio from 0 to 1.
    static func cacheUsage(_ request: Icbd_Catalog_V1_HeartbeatRequest) throws -> CacheUsage {
        let used = try nonNegative(request.usedBytes, "used_bytes")
        guard request.hitRatio.isFinite, (0...1).contains(request.hitRatio) else {
            throw invalid("hit_ratio", "must be from 0 to 1, not \(request.hitRatio)")
        }
        return CacheUsage(usedBytes: used, hitRatio: request.hitRatio)
    }
}
