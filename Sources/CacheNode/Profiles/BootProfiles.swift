import CatalogClient
import ICBDCore
import ICBDProto
import ICBDRPC
import Logging
import SwiftProtobuf
import Synchronization

/// The cache's boot profiles: recorded from the reads it serves, kept in the catalog (where the
/// recordings of all of a site's cache nodes merge), read back to warm new versions in the order
/// their predecessors booted — on every cache node, whichever recorded them.
final class BootProfiles: Sendable {
    private struct State {
        var recorder: BootProfileRecorder
        /// Finished recordings the catalog has not taken yet, oldest first.
        var unpublished: [BootProfile] = []
    }

    private let state: Mutex<State>
    private let catalog: RPCClient
    private let node: String
    private let logger: Logger
    /// Recordings kept for a catalog that does not answer; older ones are given up.
    static let maximumUnpublished = 16

    init(catalog: RPCClient, node: String, window: Duration, logger: Logger) {
        self.catalog = catalog
        self.node = node
        self.logger = logger
        self.state = Mutex(State(recorder: BootProfileRecorder(window: window)))
    }

    /// A chunk served: recorded if it belongs to a version being profiled.
    func served(_ want: ChunkWant) {
        guard case .position(let image, let version, let path, let index) = want.source else { return }
        let now = ContinuousClock.now
        state.withLock { state in
            if let profile = state.recorder.read(.init(image: image, version: version), .init(path: path, index: index), at: now) {
                Self.keep(profile, in: &state)
            }
        }
    }

    /// Finishes the recordings whose window has passed and hands every finished one to the
    /// catalog; what the catalog does not take now is offered again at the next call.
    func publish() async {
        let now = ContinuousClock.now
        let pending = state.withLock { state in
            for profile in state.recorder.tick(at: now) { Self.keep(profile, in: &state) }
            defer { state.unpublished = [] }
            return state.unpublished
        }
        var failed: [BootProfile] = []
        for profile in pending {
            do {
                try await publish(profile)
            } catch {
                logger.warning(
                    "boot profile not stored in the catalog yet",
                    metadata: ["image": "\(profile.image)", "version": "\(profile.version)", "error": "\(error)"])
                failed.append(profile)
            }
        }
        guard !failed.isEmpty else { return }
        state.withLock { state in
            state.unpublished = failed + state.unpublished
            state.unpublished.removeFirst(max(0, state.unpublished.count - Self.maximumUnpublished))
        }
    }

    /// The profile of the newest version of `image` up to `version` that has one (the same
    /// version's own, or the one a new version is expected to boot like); nil when there is none.
    func newest(image: Name, upTo version: Int64) async throws -> BootProfile? {
        guard version > 0 else { return nil }
        do {
            let answer = try await catalog.unary(
                CatalogMethods.getBootProfile,
                .with {
                    $0.image = image.rawValue
                    $0.version = version
                    $0.atOrBefore = true
                }, options: RPCCallOptions(timeout: .seconds(10)))
            return BootProfile(
                image: answer.image, version: answer.version,
                entries: answer.entries.map { BootProfileEntry(path: $0.path, index: $0.index, offsetMilliseconds: $0.offsetMs) })
        } catch let error as RPCError where error.code == .notFound {
            return nil
        }
    }

    /// Stores `profile` as this node's recording unless the catalog has one from this node
    /// already (recorded before a restart: the first recording is the boot).
    private func publish(_ profile: BootProfile) async throws {
        let options = RPCCallOptions(timeout: .seconds(10))
        do {
            let existing = try await catalog.unary(
                CatalogMethods.getBootProfile,
                .with {
                    $0.image = profile.image
                    $0.version = profile.version
                }, options: options)
            if existing.nodes.contains(node) { return }
        } catch let error as RPCError where error.code == .notFound {
            // No recording of this version yet: this one is the first.
        }
        _ = try await catalog.unary(
            CatalogMethods.putBootProfile,
            .with {
                $0.image = profile.image
                $0.version = profile.version
                $0.node = node
                $0.entries = profile.entries.map { entry in
                    .with {
                        $0.path = entry.path
                        $0.index = entry.index
                        $0.offsetMs = entry.offsetMilliseconds
                    }
                }
            }, options: options)
        logger.info(
            "boot profile recorded",
            metadata: ["image": "\(profile.image)", "version": "\(profile.version)", "chunks": "\(profile.entries.count)"])
    }

    private static func keep(_ profile: BootProfile, in state: inout State) {
        state.unpublished.append(profile)
        state.unpublished.removeFirst(max(0, state.unpublished.count - maximumUnpublished))
    }
}
