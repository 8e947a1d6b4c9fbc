import CatalogClient
import ICBDCore

/// Records boot profiles: for each version, from its first read on this cache, the positions
/// first read within `window` and when, at most `limit` of them. A pure state machine: reads and
/// clock ticks go in, finished profiles come out.
struct BootProfileRecorder: Sendable {
    struct Key: Hashable, Sendable {
        let image: String
        let version: Int64
    }

    private struct Recording: Sendable {
        let started: ContinuousClock.Instant
        var entries: [BootProfileEntry] = []
        var seen: Set<BootProfile.Position> = []
    }

    let window: Duration
    let limit: Int
    private var recordings: [Key: Recording] = [:]
    /// Versions recorded already (or that had a profile): not recorded again.
    private var done: Set<Key> = []

    init(window: Duration = .seconds(300), limit: Int = BootProfileRecord.maximumEntries) {
        self.window = window
        self.limit = limit
    }

    /// Versions whose profile exists already are not recorded.
    mutating func skip(_ key: Key) {
        done.insert(key)
    }

    /// A chunk read at `position` of `key`; returns the profile when this read completes it.
    mutating func read(_ key: Key, _ position: BootProfile.Position, at now: ContinuousClock.Instant) -> BootProfile? {
        guard !done.contains(key) else { return nil }
        var recording = recordings[key] ?? Recording(started: now)
        guard now - recording.started <= window else {
            return finish(key)
        }
        if recording.seen.insert(position).inserted {
            let offset = (now - recording.started).wholeMilliseconds
            recording.entries.append(
                BootProfileEntry(path: position.path, index: position.index, offsetMilliseconds: UInt32(clamping: offset)))
        }
        recordings[key] = recording
        return recording.entries.count >= limit ? finish(key) : nil
    }

    /// Profiles whose window has passed by `now`.
    mutating func tick(at now: ContinuousClock.Instant) -> [BootProfile] {
        let expired = recordings.filter { now - $0.value.started > window }.map(\.key)
        return expired.compactMap { finish($0) }
    }

    private mutating func finish(_ key: Key) -> BootProfile? {
        done.insert(key)
        guard let recording = recordings.removeValue(forKey: key), !recording.entries.isEmpty else { return nil }
        return BootProfile(image: key.image, version: key.version, entries: recording.entries)
    }
}
