import Foundation
import Logging
import Synchronization

/// The cache's boot profiles: recorded from the reads it serves, kept in its directory, used to
/// warm new versions in the order their predecessors booted.
final class BootProfiles: Sendable {
    private let recorder: Mutex<BootProfileRecorder>
    let store: BootProfileStore
    private let logger: Logger

    init(cacheDirectory: String, window: Duration, logger: Logger) {
        self.store = BootProfileStore(cacheDirectory: cacheDirectory)
        self.logger = logger
        var recorder = BootProfileRecorder(window: window)
        if let images = try? FileManager.default.contentsOfDirectory(atPath: store.directory) {
            for image in images {
                for version in store.versions(of: image) { recorder.skip(.init(image: image, version: version)) }
            }
        }
        self.recorder = Mutex(recorder)
    }

    /// A chunk served: recorded if it belongs to a version being profiled.
    func served(_ want: ChunkWant) {
        guard case .position(let image, let version, let path, let index) = want.source else { return }
        let now = ContinuousClock.now
        if let profile = recorder.withLock({ $0.read(.init(image: image, version: version), .init(path: path, index: index), at: now) }) {
            save(profile)
        }
    }

    /// Saves the profiles whose recording window has passed.
    func tick() {
        let now = ContinuousClock.now
        for profile in recorder.withLock({ $0.tick(at: now) }) { save(profile) }
    }

    private func save(_ profile: BootProfile) {
        do {
            try store.save(profile)
            logger.info(
                "boot profile recorded",
                metadata: ["image": "\(profile.image)", "version": "\(profile.version)", "chunks": "\(profile.positions.count)"])
        } catch {
            logger.warning("boot profile not saved", metadata: ["image": "\(profile.image)", "version": "\(profile.version)", "error": "\(error)"])
        }
    }
}
