import Foundation
import Glibc
import ICBDCore

/// The BTRFS image repository of one replicator (docs/architecture.md "Storage layout"):
///
///     <root>/images/<image>/work    writable subvolume: the next version is prepared here
///     <root>/images/<image>/v<N>    read-only snapshot of version N (published or received)
///
/// The next version's `work` is a writable snapshot of the version it is based on, so the new
/// version shares every extent it does not rewrite: publishing v2 after changing 10 MiB of a
/// 1 GiB disk costs about 10 MiB.
public struct ImageRepository: Sendable {
    public let root: String

    /// Opens the repository at `root`, which must be a writable directory on BTRFS.
    public init(root: String) throws(RepositoryError) {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw RepositoryError("\(root) does not exist or is not a directory; create it on a BTRFS filesystem")
        }
        guard Filesystem.isBtrfs(root) else {
            throw RepositoryError(
                "\(root) is not on BTRFS; versions are BTRFS snapshots: mount a BTRFS filesystem there (mkfs.btrfs) or choose another --root")
        }
        guard access(root, W_OK) == 0 else {
            throw RepositoryError("\(root) is not writable by this process; run the replicator as root or fix the permissions")
        }
        self.root = root
        do {
            try FileManager.default.createDirectory(atPath: imagesDirectory, withIntermediateDirectories: true)
        } catch {
            throw RepositoryError("cannot create \(imagesDirectory): \(error)")
        }
    }

    var imagesDirectory: String { root + "/images" }

    public func directory(of image: Name) -> String { "\(imagesDirectory)/\(image)" }
    public func workPath(of image: Name) -> String { directory(of: image) + "/work" }
    public func versionPath(of image: Name, _ number: Int64) -> String { directory(of: image) + "/v\(number)" }

    /// A fresh `work` for the next version of `image`: a writable snapshot of version `parent`,
    /// or an empty subvolume. A `work` left by an earlier, failed publish is discarded first.
    @discardableResult
    public func prepareWork(of image: Name, basedOn parent: Int64?) throws -> String {
        try FileManager.default.createDirectory(atPath: directory(of: image), withIntermediateDirectories: true)
        let work = workPath(of: image)
        try discardWork(of: image)
        if let parent {
            let source = versionPath(of: image, parent)
            guard Subvolume.exists(at: source) else {
                throw RepositoryError("version \(parent) of image '\(image)' is not in this repository (\(source))")
            }
            try Subvolume.snapshot(of: source, at: work, readOnly: false)
        } else {
            try Subvolume.create(at: work)
        }
        return work
    }

    /// Removes `work`, if there is one.
    public func discardWork(of image: Name) throws {
        let work = workPath(of: image)
        if Subvolume.exists(at: work) {
            try Subvolume.delete(at: work)
        } else if FileManager.default.fileExists(atPath: work) {
            try FileManager.default.removeItem(atPath: work)
        }
    }

    /// Makes `work` version `number`: a read-only snapshot `v<number>`, committed to disk; `work`
    /// is removed. Blocks while the data is written: call it off the cooperative threads.
    /// Returns the new snapshot's identity (its UUID goes to the catalog).
    public func commitWork(of image: Name, as number: Int64) throws -> Subvolume.Info {
        let version = versionPath(of: image, number)
        guard !FileManager.default.fileExists(atPath: version) else {
            throw RepositoryError("\(version) exists already; version \(number) of image '\(image)' cannot be published twice")
        }
        try Subvolume.snapshot(of: workPath(of: image), at: version, readOnly: true)
        try discardWork(of: image)
        // On disk before anyone hears of it: a version the catalog calls ready survives a
        // crash, and its data is not still being written back while it is first sent.
        try Filesystem.commit(at: version)
        return try Subvolume.info(at: version)
    }

    /// Deletes version `number` of `image` (retention, retire, or a rejected receive).
    public func deleteVersion(of image: Name, _ number: Int64) throws {
        let version = versionPath(of: image, number)
        guard Subvolume.exists(at: version) else { return }
        try Subvolume.delete(at: version)
    }

    /// The versions present on disk, per image, with their subvolume identity.
    public func versions() throws -> [Name: [Int64: Subvolume.Info]] {
        var result: [Name: [Int64: Subvolume.Info]] = [:]
        for entry in try FileManager.default.contentsOfDirectory(atPath: imagesDirectory) {
            guard let image = try? Name(entry) else { continue }
            for child in try FileManager.default.contentsOfDirectory(atPath: directory(of: image)) {
                guard child.hasPrefix("v"), let number = Int64(child.dropFirst()), number > 0 else { continue }
                let path = versionPath(of: image, number)
                guard Subvolume.exists(at: path) else { continue }
                result[image, default: [:]][number] = try Subvolume.info(at: path)
            }
        }
        return result
    }

    /// Start-up recovery: removes what an interrupted publish or receive left behind, namely a
    /// writable `v<N>`, or one the catalog does not know as ready, and every `work`. A writable
    /// `v<N>` that `salvage` takes (a cut receive whose data its spool refers to: it moves it out
    /// of the images) is not deleted. Returns the paths removed or moved, for the log.
    public func recover(ready: [Name: Set<Int64>], salvage: (Name, Int64, String) -> Bool = { _, _, _ in false }) throws -> [String] {
        var removed: [String] = []
        let held = try versions()
        for entry in try FileManager.default.contentsOfDirectory(atPath: imagesDirectory).sorted() {
            guard let image = try? Name(entry) else { continue }
            for (number, info) in (held[image] ?? [:]).sorted(by: { $0.key < $1.key })
            where !info.isReadOnly || !(ready[image]?.contains(number) ?? false) {
                let path = versionPath(of: image, number)
                if !info.isReadOnly && salvage(image, number, path) {
                    removed.append(path + " (kept aside: its transfer resumes from it)")
                    continue
                }
                try deleteVersion(of: image, number)
                removed.append(path)
            }
            if FileManager.default.fileExists(atPath: workPath(of: image)) {
                try discardWork(of: image)
                removed.append(workPath(of: image))
            }
        }
        return removed
    }
}

/// A repository that cannot be used, or an operation on it that cannot be done.
public struct RepositoryError: Error, Sendable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
