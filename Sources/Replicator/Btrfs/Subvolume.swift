import CBtrfsUtil
import Foundation
import Glibc

/// BTRFS subvolumes and snapshots through libbtrfsutil: no parsing of `btrfs` command output.
///
/// Every version of an image is a read-only snapshot. Received subvolumes cannot be renamed
/// (rename fails with EROFS) and making one writable clears its `received_uuid`, so versions
/// are created or received in place and never moved.
public enum Subvolume {
    /// What a subvolume is and where it came from.
    public struct Info: Sendable, Equatable {
        public let id: UInt64
        /// The subvolume's own UUID.
        public let uuid: UUID
        /// The subvolume it is a snapshot of, if any.
        public let parentUUID: UUID?
        /// The UUID of the subvolume it was received from (`btrfs receive`), if any.
        public let receivedUUID: UUID?
        /// The transaction id of its root.
        public let generation: UInt64
        public let isReadOnly: Bool
    }

    /// Creates an empty, writable subvolume at `path` (its parent directory must exist).
    public static func create(at path: String) throws(BtrfsError) {
        try btrfsCall("create subvolume", path) { btrfs_util_create_subvolume(path, 0, nil, nil) }
    }

    /// Snapshots `source` at `path`, read-only or writable.
    public static func snapshot(of source: String, at path: String, readOnly: Bool) throws(BtrfsError) {
        let flags = readOnly ? Int32(BTRFS_UTIL_CREATE_SNAPSHOT_READ_ONLY) : 0
        try btrfsCall("snapshot \(source) as", path) { btrfs_util_create_snapshot(source, path, flags, nil, nil) }
    }

    /// Deletes the subvolume at `path`, first clearing its read-only flag (a read-only subvolume
    /// cannot be deleted by an unprivileged caller and some kernels refuse it outright).
    public static func delete(at path: String) throws(BtrfsError) {
        if (try? isReadOnly(at: path)) == true {
            try setReadOnly(false, at: path)
        }
        try btrfsCall("delete subvolume", path) { btrfs_util_delete_subvolume(path, 0) }
    }

    public static func setReadOnly(_ readOnly: Bool, at path: String) throws(BtrfsError) {
        try btrfsCall("set the read-only flag of", path) { btrfs_util_set_subvolume_read_only(path, readOnly) }
    }

    public static func isReadOnly(at path: String) throws(BtrfsError) -> Bool {
        var readOnly = false
        try btrfsCall("read the read-only flag of", path) { btrfs_util_get_subvolume_read_only(path, &readOnly) }
        return readOnly
    }

    /// Whether `path` is the root of a subvolume.
    public static func exists(at path: String) -> Bool {
        btrfs_util_is_subvolume(path) == BTRFS_UTIL_OK
    }

    public static func info(at path: String) throws(BtrfsError) -> Info {
        var raw = btrfs_util_subvolume_info()
        try btrfsCall("read subvolume info of", path) { btrfs_util_subvolume_info(path, 0, &raw) }
        return Info(
            id: raw.id,
            uuid: uuid(raw.uuid) ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)),
            parentUUID: uuid(raw.parent_uuid),
            receivedUUID: uuid(raw.received_uuid),
            generation: raw.generation,
            isReadOnly: raw.flags & UInt64(1) != 0  // BTRFS_ROOT_SUBVOL_RDONLY
        )
    }

    /// nil for the all-zero UUID, which btrfs uses for "none".
    private static func uuid(_ bytes: uuid_t) -> UUID? {
        let all = withUnsafeBytes(of: bytes) { Array($0) }
        return all.allSatisfy { $0 == 0 } ? nil : UUID(uuid: bytes)
    }
}

/// Facts about the filesystem under a path.
public enum Filesystem {
    /// `statfs` f_type of BTRFS.
    static let btrfsMagic: Int = 0x9123_683E

    /// Commits the current transaction of the BTRFS filesystem under `path` (`BTRFS_IOC_SYNC`,
    /// as `btrfs filesystem sync`): what was written, snapshots included, is on disk when it returns.
    public static func commit(at path: String) throws(BtrfsError) {
        try btrfsCall("commit the filesystem of", path) { btrfs_util_sync(path) }
    }

    /// Whether `path` lies on a BTRFS filesystem.
    public static func isBtrfs(_ path: String) -> Bool {
        var stats = statfs()
        guard statfs(path, &stats) == 0 else { return false }
        return Int(stats.f_type) == btrfsMagic
    }
}
