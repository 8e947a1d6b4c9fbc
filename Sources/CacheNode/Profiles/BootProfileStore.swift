import Foundation

/// Boot profiles kept in the cache directory, `DIR/profiles/IMAGE/vN`, written to a temporary
/// name and renamed (a half-written profile is never read).
struct BootProfileStore: Sendable {
    let directory: String

    init(cacheDirectory: String) {
        directory = cacheDirectory + "/profiles"
    }

    func save(_ profile: BootProfile) throws {
        let folder = "\(directory)/\(profile.image)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let temporary = "\(folder)/.v\(profile.version).\(UInt32.random(in: 0...UInt32.max))"
        try Data(profile.text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, "\(folder)/v\(profile.version)") == 0 else {
            unlink(temporary)
            throw CocoaError(.fileWriteUnknown)
        }
    }

    /// The versions of `image` with a profile.
    func versions(of image: String) -> [Int64] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/\(image)")) ?? []
        return names.compactMap { $0.hasPrefix("v") ? Int64($0.dropFirst()) : nil }
    }

    func load(image: String, version: Int64) -> BootProfile? {
        guard let data = FileManager.default.contents(atPath: "\(directory)/\(image)/v\(version)") else { return nil }
        return BootProfile(image: image, version: version, text: String(decoding: data, as: UTF8.self))
    }

    /// The profile of the newest version of `image` up to `version` (the same version's own, or
    /// the one a new version is expected to boot like).
    func newest(image: String, upTo version: Int64) -> BootProfile? {
        guard let newest = versions(of: image).filter({ $0 <= version }).max() else { return nil }
        return load(image: image, version: newest)
    }
}
