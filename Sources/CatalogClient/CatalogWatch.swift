import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging

/// A client's Watch that survives the loss of a catalog process: when the stream breaks with
/// UNAVAILABLE, it watches again from the last revision it delivered, through the same
/// ``RPCClient`` — which has failed over to another catalog process on the same database — so
/// no change is missed and none is delivered twice. (A resumed stream says `caught_up` again.)
public enum CatalogWatch {
    /// How a watch resumes.
    public struct Resumption: Sendable {
        /// Failed attempts in a row before giving up; a delivered response resets the count.
        public var maximumAttempts = 20
        /// The wait between attempts, doubling up to ``maximumDelay``.
        public var initialDelay: Duration = .milliseconds(100)
        public var maximumDelay: Duration = .seconds(2)
        /// Options of each Watch call; no deadline by default (a deadline would end the watch).
        public var callOptions = RPCCallOptions()

        public init() {}
    }

    /// Delivers every response after `revision` to `handle` until it returns false; returns the
    /// last revision delivered. Errors other than UNAVAILABLE end the watch (a compacted log
    /// means: list again).
    @discardableResult
    public static func follow(
        _ client: RPCClient, from revision: Int64, kinds: [Icbd_Catalog_V1_EntityKind] = [], resumption: Resumption = .init(),
        logger: Logger, handle: @Sendable (Icbd_Catalog_V1_WatchResponse) async throws -> Bool
    ) async throws -> Int64 {
        var position = revision
        var failures = 0
        var delay = resumption.initialDelay
        while true {
            var request = Icbd_Catalog_V1_WatchRequest()
            request.fromRevision = position
            request.kinds = kinds
            do {
                let finished = try await client.serverStreaming(CatalogMethods.watch, request, options: resumption.callOptions) {
                    responses -> Bool in
                    for try await response in responses {
                        position = max(position, response.revision)
                        failures = 0
                        delay = resumption.initialDelay
                        if try await !handle(response) { return true }
                    }
                    return false
                }
                if finished { return position }
                throw RPCError(code: .unavailable, message: "the watch stream ended")
            } catch let error as RPCError where error.code == .unavailable {
                failures += 1
                guard failures < resumption.maximumAttempts else { throw error }
                logger.info(
                    "watch interrupted; resuming", metadata: ["from": "\(position)", "error": "\(error.message)", "attempt": "\(failures)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, resumption.maximumDelay)
            }
        }
    }
}
