import ICBDCore
import Logging
import ServiceLifecycle

/// The cache node's periodic work, every `interval`: retries a pass-through store's directory,
/// publishes finished boot profiles and, with `warmNewVersions`, warms the versions newly
/// present on this site's repositories (the chunks their predecessor's boot profile names, in
/// its order). A `Service`: it stops at graceful shutdown.
struct CacheUpkeep: Service {
    let node: String
    let store: ChunkStore
    let profiles: BootProfiles
    let warmer: Warmer
    let directory: UpstreamDirectory
    let interval: Duration
    let warmNewVersions: Bool
    let logger: Logger

    func run() async {
        await cancelWhenGracefulShutdown {
            var placed: Set<BootProfileRecorder.Key>?
            while !Task.isCancelled {
                await store.probe()
                await profiles.publish()
                if warmNewVersions {
                    do {
                        try await warmNewlyPlaced(known: &placed)
                    } catch {
                        if Task.isCancelled { return }
                        logger.warning("placements not checked", metadata: ["error": "\(error)"])
                    }
                }
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Versions present on this site's repositories that were not at the last look are warmed.
    /// The first look only notes what is there.
    private func warmNewlyPlaced(known: inout Set<BootProfileRecorder.Key>?) async throws {
        let present = try await directory.presentOnSite()
        guard let previous = known else {
            known = present
            return
        }
        // A version that could not be warmed yet (its placement is reported before it is ready)
        // stays new until it can.
        var handled = previous.intersection(present)
        for key in present.subtracting(previous) {
            do {
                try await warmNewVersion(key)
                handled.insert(key)
            } catch {
                logger.debug("newly placed version not warmed yet", metadata: ["image": "\(key.image)", "version": "\(key.version)", "error": "\(error)"])
            }
        }
        known = handled
    }

    private func warmNewVersion(_ key: BootProfileRecorder.Key) async throws {
        guard let name = try? Name(key.image), let profile = try await profiles.newest(image: name, upTo: key.version - 1) else {
            return
        }
        let profiled = Warmer.ordered(try await warmer.chunks(image: name, version: key.version), by: profile, profiledOnly: true)
        let siteCaches = try await directory.upCachesOnSite()
        let wants = Warmer.share(of: profiled, for: node, among: siteCaches)
        let (queued, held) = warmer.warm(wants)
        logger.info(
            "warming a newly placed version by its predecessor's boot profile",
            metadata: [
                "image": "\(key.image)", "version": "\(key.version)", "profile": "\(profile.version)", "queued": "\(queued)",
                "held": "\(held)", "profiled": "\(profiled.count)", "siteCaches": "\(siteCaches.count)",
            ])
    }
}
