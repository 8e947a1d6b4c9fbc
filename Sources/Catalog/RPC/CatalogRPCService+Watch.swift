import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import CatalogClient
import Logging

extension CatalogRPCService {
    /// Watch: replays the log after `from_revision`, says `caught_up` once, then follows
    /// commits. The watcher pulls from the log at its own pace: it holds one batch at most,
    /// and a reader slower than the log's retention is told to list again (compacted).
    func registerWatch(into router: inout RPCRouter) {
        let store = self.store
        let batch = settings.watchBatch

        router.serverStreaming(CatalogMethods.watch) { request, writer, context in
            var kinds = Set<EntityKind>()
            for kind in request.kinds {
                guard let known = EntityKind(kind) else { throw WireFields.invalid("kinds", "\(kind) is not an entity kind") }
                kinds.insert(known)
            }
            guard request.fromRevision >= 0 else { throw WireFields.invalid("from_revision", "must not be negative") }
            var position = Revision(request.fromRevision)
            let head = try await store.currentRevision()
            guard position <= head else {
                throw RPCError(
                    code: .failedPrecondition,
                    message: "from_revision \(position) is ahead of this catalog (revision \(head)); list again and watch from the listing's revision",
                    details: ["reason": "future", "current_revision": "\(head)"])
            }
            logger(for: context).debug("watch started", metadata: ["from": "\(position)", "head": "\(head)"])
            var caughtUp = false
            while true {
                try Task.checkCancellation()
                let changes = try await store.changes(after: position, limit: batch)
                guard !changes.isEmpty else {
                    if !caughtUp {
                        var progress = Icbd_Catalog_V1_WatchResponse()
                        progress.revision = position.rawValue
                        progress.caughtUp = true
                        try await writer.write(progress)
                        caughtUp = true
                    }
                    _ = try await store.waitForRevision(after: position)
                    continue
                }
                for change in changes {
                    position = change.revision
                    let events = change.events.filter { kinds.isEmpty || kinds.contains($0.entity.kind) }
                    guard !events.isEmpty else { continue }
                    var response = Icbd_Catalog_V1_WatchResponse()
                    response.revision = change.revision.rawValue
                    response.events = events.map(Icbd_Catalog_V1_WatchEvent.init)
                    try await writer.write(response)
                }
            }
        }
    }
}
