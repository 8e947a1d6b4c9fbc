import Foundation

/// The first command of a `btrfs send` stream, as ``SendStreamValidator`` found it: which
/// subvolume it creates (its name and the UUID it will carry as `received_uuid`) and, for an
/// incremental stream, the subvolume it is a snapshot of. The receiver checks these before
/// `btrfs receive` starts, so a stream of another image or version, or against another parent,
/// is refused and nothing is created.
///
/// Layout (btrfs-progs send.h): "btrfs-stream\0", le32 version; then commands of le32 length,
/// le16 command, le32 crc32c, and `length` bytes of TLVs (le16 type, le16 length, value).
struct SendStreamHead: Sendable, Equatable {
    static let magic = Array("btrfs-stream".utf8) + [0]

    /// The name of the subvolume the stream creates.
    let name: String
    let uuid: UUID
    /// The subvolume an incremental stream is a snapshot of; nil for a full stream.
    let cloneUUID: UUID?
}
