import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
@testable import Replicator
import ReplicatorClient
import SwiftProtobuf
import Testing

@Suite("What a receiver can make a sending repository hold", .serialized, .requiresLoopBtrfs)
struct SenderBoundsTests {
    /// One send slot: a receiver that takes the stream's header and then reads nothing holds
    /// it; another call meanwhile is answered RESOURCE_EXHAUSTED; once the stalled receiver
    /// read nothing for the inactivity timeout its call ends, and the slot serves again.
    @Test func aStalledReceiverFreesItsSendSlot() async throws {
        try await ReplicationDeployment.with(
            branchReplicates: false,
            configure: {
                $0.maximumConcurrentSends = 1
                $0.inactivityTimeout = .seconds(1)
            }
        ) { deployment in
            // Far more than the RPC window (4 MiB): the sender blocks once the receiver stops.
            _ = try await publish(deployment.hq, image: "win11", files: [("disk.raw", vmLikeDisk(mebibytes: 48, seed: 5))])
            let request = Icbd_Replicator_V1_SendVersionRequest.with {
                $0.image = "win11"
                $0.version = 1
                $0.digestList = true
            }
            let configuration = RPCClientConfiguration(
                target: deployment.hqAddress, expectedRole: .replicator, tls: try deployment.mint(.replicator, "repo-branch"))
            try await withRPCClient(configuration, logger: deployment.logger) { client in
                let (headerTaken, taken) = AsyncStream.makeStream(of: Void.self)
                let stalled = Task {
                    try await client.serverStreaming(ReplicationMethods.sendVersion, request) { segments in
                        var messages = segments.withPayloads.makeAsyncIterator()
                        _ = try await messages.next()
                        taken.yield()
                        try await Task.sleep(for: .seconds(3600))  // reads nothing more
                    }
                }
                defer { stalled.cancel() }
                _ = await headerTaken.first { _ in true }

                /// Takes the header of a call; the error when refused.
                @Sendable func headerOfAnotherCall() async -> RPCError? {
                    do {
                        try await client.serverStreaming(ReplicationMethods.sendVersion, request) { segments in
                            var messages = segments.withPayloads.makeAsyncIterator()
                            _ = try await messages.next()
                        }
                        return nil
                    } catch {
                        return error as? RPCError ?? RPCError(code: .internal, message: "\(error)")
                    }
                }
                let refused = await headerOfAnotherCall()
                #expect(refused?.code == .resourceExhausted, "\(String(describing: refused))")
                #expect(refused?.message.contains("already sends 1 versions") == true)
                var served = false
                for _ in 0..<600 where !served {
                    let error = await headerOfAnotherCall()
                    served = error == nil
                    if let error { #expect(error.code == .resourceExhausted, "\(error)") }
                    if !served { try await Task.sleep(for: .milliseconds(50)) }
                }
                #expect(served, "the stalled receiver kept the only send slot")
            }
        }
    }
}
