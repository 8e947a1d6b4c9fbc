import Foundation

/// The commands of a `btrfs send` stream (btrfs-progs send.h), with the attributes each carries.
enum SendStreamCommand: UInt16, Sendable {
    case subvolume = 1, snapshot, makeFile, makeDirectory, makeNode, makeFIFO, makeSocket, symlink, rename, link, unlink,
        removeDirectory, setXattr, removeXattr, write, clone, truncate, chmod, chown, utimes, end, updateExtent, fallocate,
        fileAttributes, encodedWrite, enableVerity

    /// The name btrfs-progs gives the command (`btrfs receive --dump`).
    var name: String {
        switch self {
        case .subvolume: "subvol"
        case .snapshot: "snapshot"
        case .makeFile: "mkfile"
        case .makeDirectory: "mkdir"
        case .makeNode: "mknod"
        case .makeFIFO: "mkfifo"
        case .makeSocket: "mksock"
        case .symlink: "symlink"
        case .rename: "rename"
        case .link: "link"
        case .unlink: "unlink"
        case .removeDirectory: "rmdir"
        case .setXattr: "set_xattr"
        case .removeXattr: "remove_xattr"
        case .write: "write"
        case .clone: "clone"
        case .truncate: "truncate"
        case .chmod: "chmod"
        case .chown: "chown"
        case .utimes: "utimes"
        case .end: "end"
        case .updateExtent: "update_extent"
        case .fallocate: "fallocate"
        case .fileAttributes: "fileattr"
        case .encodedWrite: "encoded_write"
        case .enableVerity: "enable_verity"
        }
    }

    /// The attributes the kernel sends with the command (and btrfs-progs reads).
    var attributes: Set<SendStreamAttribute> {
        switch self {
        case .subvolume: [.uuid, .ctransid, .path]
        case .snapshot: [.uuid, .ctransid, .path, .cloneUUID, .cloneCtransid]
        case .makeFile, .makeDirectory, .makeNode, .makeFIFO, .makeSocket: [.path, .ino, .mode, .rdev]
        case .symlink: [.path, .ino, .pathLink]
        case .rename: [.path, .pathTo]
        case .link: [.path, .pathLink]
        case .unlink, .removeDirectory: [.path]
        case .setXattr: [.path, .xattrName, .xattrData]
        case .removeXattr: [.path, .xattrName]
        case .write: [.path, .fileOffset, .data]
        case .clone: [.path, .fileOffset, .cloneLength, .cloneUUID, .cloneCtransid, .clonePath, .cloneOffset]
        case .truncate: [.path, .size]
        case .chmod: [.path, .mode]
        case .chown: [.path, .uid, .gid]
        case .utimes: [.path, .atime, .mtime, .ctime, .otime]
        case .end: []
        case .updateExtent: [.path, .fileOffset, .size]
        case .fallocate: [.path, .fallocateMode, .fileOffset, .size]
        case .fileAttributes: [.path, .fileAttributes]
        case .encodedWrite:
            [.path, .fileOffset, .unencodedFileLength, .unencodedLength, .unencodedOffset, .compression, .encryption, .data]
        case .enableVerity: [.path, .verityAlgorithm, .verityBlockSize, .veritySaltData, .veritySignatureData]
        }
    }

    /// Whether the command may name a symlink itself without following it (btrfs-progs
    /// renames, links, unlinks, `lchown`s, `utimensat(AT_SYMLINK_NOFOLLOW)`s and `lsetxattr`s;
    /// it opens, `chmod`s and `truncate`s through it).
    var leavesSymlinksAlone: Bool {
        switch self {
        case .symlink, .rename, .link, .unlink, .chown, .utimes, .setXattr, .removeXattr: true
        default: false
        }
    }
}

/// The attribute types of a send stream (btrfs-progs send.h).
enum SendStreamAttribute: UInt16, Sendable, CustomStringConvertible {
    case uuid = 1, ctransid, ino, size, mode, uid, gid, rdev, ctime, mtime, atime, otime, xattrName, xattrData, path, pathTo,
        pathLink, fileOffset, data, cloneUUID, cloneCtransid, clonePath, cloneOffset, cloneLength, fallocateMode, fileAttributes,
        unencodedFileLength, unencodedLength, unencodedOffset, compression, encryption, verityAlgorithm, verityBlockSize,
        veritySaltData, veritySignatureData

    static let count = 36

    var description: String {
        switch self {
        case .path: "path"
        case .pathTo: "path_to"
        case .pathLink: "path_link"
        case .clonePath: "clone_path"
        case .fileOffset: "file_offset"
        case .cloneOffset: "clone_offset"
        case .cloneLength: "clone_len"
        case .unencodedFileLength: "unencoded_file_len"
        default: "attribute \(rawValue)"
        }
    }
}

/// The attributes of one command, parsed as btrfs-progs 6.2 `read_cmd` parses them: each TLV
/// is le16 type, le16 length and the value, except that from stream version 2 DATA has no
/// length and runs to the end of the command; of several attributes of one type, the last wins.
struct SendStreamAttributes {
    /// Why the attributes could not be parsed.
    struct Malformed: Error {
        let reason: String
    }

    private let bytes: UnsafeRawBufferPointer
    private var ranges: [Range<Int>?] = Array(repeating: nil, count: SendStreamAttribute.count)
    /// The types present, in stream order, each once.
    private(set) var present: [SendStreamAttribute] = []
    /// The first type that appeared more than once.
    private(set) var repeated: SendStreamAttribute?

    /// Parses `bytes`, a command's attributes (without its header); valid while they are.
    init(_ bytes: UnsafeRawBufferPointer, version: UInt32) throws(Malformed) {
        self.bytes = bytes
        var at = 0
        while at < bytes.count {
            guard at + 2 <= bytes.count else { throw Malformed(reason: "has a cut attribute at its end") }
            let code = bytes.sendStreamLE16(at: at)
            guard let type = SendStreamAttribute(rawValue: code) else { throw Malformed(reason: "has an unknown attribute (\(code))") }
            let value: Range<Int>
            if type == .data && version >= 2 {
                value = at + 2..<bytes.count
            } else {
                guard at + 4 <= bytes.count else { throw Malformed(reason: "has a cut attribute at its end") }
                let length = Int(bytes.sendStreamLE16(at: at + 2))
                guard at + 4 + length <= bytes.count else { throw Malformed(reason: "has a \(type) that overruns the command") }
                value = at + 4..<at + 4 + length
            }
            if ranges[Int(code)] == nil {
                present.append(type)
            } else if repeated == nil {
                repeated = type
            }
            ranges[Int(code)] = value
            at = value.upperBound
        }
    }

    /// Where the value of `type` lies among the bytes.
    func range(_ type: SendStreamAttribute) -> Range<Int>? { ranges[Int(type.rawValue)] }

    func bytes(_ type: SendStreamAttribute) -> [UInt8]? { range(type).map { Array(bytes[$0]) } }

    /// A little-endian 64-bit value; nil when absent or not 8 bytes long.
    func u64(_ type: SendStreamAttribute) -> Int64? {
        guard let range = range(type), range.count == 8 else { return nil }
        var value: UInt64 = 0
        for (shift, byte) in bytes[range].enumerated() { value |= UInt64(byte) << (8 * UInt64(shift)) }
        return Int64(bitPattern: value)
    }

    func uuid(_ type: SendStreamAttribute) -> UUID? {
        guard let range = range(type), range.count == 16 else { return nil }
        let b = Array(bytes[range])
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// The little-endian integers of a send stream's headers and attributes.
extension RandomAccessCollection where Element == UInt8, Index == Int {
    func sendStreamLE16(at index: Int) -> UInt16 {
        UInt16(self[index]) | UInt16(self[index + 1]) << 8
    }

    func sendStreamLE32(at index: Int) -> UInt32 {
        UInt32(self[index]) | UInt32(self[index + 1]) << 8 | UInt32(self[index + 2]) << 16 | UInt32(self[index + 3]) << 24
    }
}
