/// What a `btrfs send` stream changes in the files of the subvolume it builds, read from the
/// stream's commands as they pass to `btrfs receive`: the byte ranges that writes, clones,
/// truncates, fallocates and extent updates touch, and whether any command changed which
/// inode a path names (create, rename, link, unlink, …).
///
/// It lets the receiver of an incremental stream re-hash only what the stream touched (see
/// ``ReceivedVersionCheck``). Ranges are kept for every path together, not per path: a write
/// through one hard link changes every name of the inode, so a range touched anywhere counts
/// as touched in every file. Anything it does not understand sets ``reshaped``, which means
/// "verify everything".
///
/// For a full stream it also hands the files' creations, renames and written bytes to
/// ``writes`` (``StreamWriteManifests``), which hashes the chunks as they pass.
///
/// For the receive spool it can also mark, in the bytes of each ``consume(_:)``, where write
/// data lies (which file, which offset), the renames, and where the last whole command ends
/// (``landmarks``; see ``SpoolRecord``).
///
/// Layout (btrfs-progs send.h): "btrfs-stream\0", le32 version; then commands of le32 length,
/// le16 command, le32 crc32c and `length` bytes of attributes (le16 type, le16 length, value;
/// from version 2 a DATA attribute has no length and runs to the end of its command).
struct SendStreamScan: Sendable {
    /// Half-open byte ranges touched, in stream order, adjacent ones merged.
    private(set) var touched: [Range<Int64>] = []
    /// A command created, renamed, linked or removed a file, or was not understood.
    private(set) var reshaped = false
    /// Stream bytes consumed.
    private(set) var position: Int64 = 0
    /// The manifests of the files a full stream writes; nil: not followed.
    var writes: StreamWriteManifests?

    /// What the last ``consume(_:)`` found in its bytes, in stream order; nil: not collected.
    var landmarks: Landmarks?

    /// Places in the bytes given to one ``consume(_:)``.
    struct Landmarks: Sendable {
        enum Mark: Sendable, Equatable {
            /// Write data at `range` of the bytes, for `fileOffset` onwards of the file at `path`.
            case data(range: Range<Int>, path: [UInt8], fileOffset: Int64)
            /// A `rename` command (which also moves everything under `from`).
            case rename(from: [UInt8], to: [UInt8])
        }
        var marks: [Mark] = []
        /// Where the last command that ends within the bytes ends (0: none ends there).
        var lastCommandEnd = 0
    }

    private var version: UInt32 = 0
    /// The stream header (17 bytes) or the current command's header (10 bytes) and first
    /// attributes, while they are incomplete.
    private var held: [UInt8] = []
    /// Bytes of the current command's attributes still to pass (after `held` is parsed).
    private var skipping = 0
    /// Of those, the first ones that are the current write's data, for ``writes``.
    private var dataLeft = 0
    /// The file the current write's data goes to, and the file offset of its next byte.
    private var dataPath: [UInt8] = []
    private var dataOffset: Int64 = 0
    /// The UUID the stream names for its parent (`snapshot`'s clone UUID).
    private var parentUUID: [UInt8]?
    private var inHeader = true

    private static let streamHeaderLength = 17
    private static let commandHeaderLength = 10
    /// The attributes of interest (paths, offsets, lengths) come first in every command; a
    /// path is at most PATH_MAX (4096) bytes and a command has two at most. (A peer's stream
    /// reaches the scan only through ``SendStreamValidator``, which refuses a command with an
    /// attribute it does not carry or one that repeats, so the scan reads the values
    /// btrfs-progs uses.)
    private static let attributePrefixLength = 2 * (4 + 4096) + 256

    init() {}

    /// Reads the next bytes of the stream.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) {
        if landmarks != nil { landmarks = Landmarks() }
        var index = 0
        while index < bytes.count {
            if !inHeader, held.isEmpty, skipping == 0 { landmarks?.lastCommandEnd = index }
            if skipping > 0 {
                let step = min(skipping, bytes.count - index)
                if dataLeft > 0 {
                    let data = min(step, dataLeft)
                    writes?.data(UnsafeRawBufferPointer(rebasing: bytes[index..<index + data]))
                    markData(index..<index + data)
                    dataLeft -= data
                }
                skipping -= step
                index += step
                continue
            }
            if inHeader {
                let step = min(Self.streamHeaderLength - held.count, bytes.count - index)
                held += bytes[index..<index + step]
                index += step
                if held.count == Self.streamHeaderLength {
                    version = held.sendStreamLE32(at: 13)
                    held = []
                    inHeader = false
                }
                continue
            }
            // The usual case: the command's header and first attributes lie in `bytes`.
            if held.isEmpty, bytes.count - index >= Self.commandHeaderLength {
                let length = Int(bytes.sendStreamLE32(at: index))
                let prefix = min(length, Self.attributePrefixLength)
                let start = index + Self.commandHeaderLength
                if bytes.count - start >= prefix {
                    let data = command(bytes.sendStreamLE16(at: index + 4), length: length, attributes: bytes[start..<start + prefix])
                    if let data { passData(data, prefixEnd: start + prefix, in: bytes, marking: true) }
                    skipping = length - prefix
                    index = start + prefix
                    continue
                }
            }
            if held.count < Self.commandHeaderLength {
                let step = min(Self.commandHeaderLength - held.count, bytes.count - index)
                held += bytes[index..<index + step]
                index += step
                continue
            }
            let length = Int(held.sendStreamLE32(at: 0))
            let wanted = Self.commandHeaderLength + min(length, Self.attributePrefixLength)
            let step = min(wanted - held.count, bytes.count - index)
            held += bytes[index..<index + step]
            index += step
            if held.count == wanted {
                let data = command(held.sendStreamLE16(at: 4), length: length, attributes: held[Self.commandHeaderLength...])
                if let data {
                    let parsed = held
                    // (Its bytes came partly from an earlier call: no landmark for them.)
                    parsed.withUnsafeBytes { passData(data, prefixEnd: wanted, in: $0, marking: false) }
                }
                skipping = length - (wanted - Self.commandHeaderLength)
                held = []
            }
        }
        if !inHeader, held.isEmpty, skipping == 0 { landmarks?.lastCommandEnd = bytes.count }
        position += Int64(bytes.count)
    }

    /// Whether the stream ended cleanly at a command boundary.
    var isAtCommandBoundary: Bool { !inHeader && held.isEmpty && skipping == 0 }

    /// Where a write's data lies among the attribute bytes given to ``command(_:length:attributes:)``.
    private struct DataSpan {
        let start: Int
        let count: Int
    }

    /// Records what the command touches; returns where a write's data lies when ``writes``
    /// wants it.
    private mutating func command<Bytes: RandomAccessCollection<UInt8>>(_ code: UInt16, length: Int, attributes: Bytes) -> DataSpan?
    where Bytes.Index == Int {
        guard let command = SendStreamCommand(rawValue: code) else {
            reshaped = true
            writes?.abandon("an unknown command (\(code))")
            return nil
        }
        let values = Self.attributes(attributes, commandLength: length, version: version)
        writes?.command(command, path: values.bytes[.path], pathTo: values.bytes[.pathTo], size: values.integers[.size])
        if command == .snapshot { parentUUID = values.bytes[.cloneUUID] }
        switch command {
        case .subvolume, .snapshot, .makeDirectory, .removeDirectory, .setXattr, .removeXattr, .chmod, .chown, .utimes, .end,
            .fileAttributes, .enableVerity:
            return nil  // metadata: no file's bytes change
        case .makeFile, .makeNode, .makeFIFO, .makeSocket, .symlink, .rename, .link, .unlink:
            reshaped = true
            if command == .rename, let from = values.bytes[.path], let to = values.bytes[.pathTo] {
                landmarks?.marks.append(.rename(from: from, to: to))
            }
            return nil
        case .write, .clone, .truncate, .updateExtent, .fallocate, .encodedWrite:
            let offset = values.integers[.fileOffset]
            switch command {
            case .write:
                guard let offset, let count = values.integers[.data], let start = values.dataStart else {
                    reshaped = true
                    writes?.abandon("a write without offset or data")
                    return nil
                }
                touch(offset, count)
                guard writes != nil || landmarks != nil else { return nil }
                // The data must lie within its command (a sane stream's does).
                guard start + Int(count) <= attributes.startIndex + length else {
                    writes?.abandon("a write whose data overruns its command")
                    return nil
                }
                writes?.beginWrite(path: values.bytes[.path], offset: offset)
                dataPath = values.bytes[.path] ?? []
                dataOffset = offset
                return DataSpan(start: start, count: Int(count))
            case .clone:
                guard let offset, let count = values.integers[.cloneLength] else { reshaped = true; return nil }
                // The parent's bytes cloned back onto the same path and offset (btrfs send
                // re-clones the rest of every extent it splits) stay the parent's bytes.
                let path = values.bytes[.path]
                let fromParentInPlace =
                    parentUUID != nil && path != nil && values.bytes[.cloneUUID] == parentUUID
                    && values.bytes[.clonePath] == path && values.integers[.cloneOffset] == offset
                if !fromParentInPlace { touch(offset, count) }
            case .encodedWrite:
                guard let offset, let count = values.integers[.unencodedFileLength] else { reshaped = true; return nil }
                touch(offset, count)
            case .updateExtent, .fallocate:
                guard let offset, let count = values.integers[.size] else { reshaped = true; return nil }
                touch(offset, count)
            default:  // truncate: everything from the new size on
                guard let size = values.integers[.size], size >= 0 else { reshaped = true; return nil }
                touched.append(size..<Int64.max)
            }
            return nil
        }
    }

    /// Hands ``writes`` the part of a write's data that lies in the command's parsed prefix
    /// (which ends at `prefixEnd` of `bytes`); the rest follows as the command is skipped.
    /// `marking`: `bytes` are those given to ``consume(_:)``, so their data gets a landmark.
    private mutating func passData(_ data: DataSpan, prefixEnd: Int, in bytes: UnsafeRawBufferPointer, marking: Bool) {
        let here = max(0, min(data.count, prefixEnd - data.start))
        if here > 0 { writes?.data(UnsafeRawBufferPointer(rebasing: bytes[data.start..<data.start + here])) }
        if marking {
            markData(data.start..<data.start + here)
        } else {
            dataOffset += Int64(here)
        }
        dataLeft = data.count - here
    }

    /// Marks `range` of the consumed bytes as the current write's next data.
    private mutating func markData(_ range: Range<Int>) {
        guard !range.isEmpty else { return }
        landmarks?.marks.append(.data(range: range, path: dataPath, fileOffset: dataOffset))
        dataOffset += Int64(range.count)
    }

    private mutating func touch(_ offset: Int64, _ count: Int64) {
        guard offset >= 0, count >= 0, offset <= Int64.max - count else { return reshaped = true }
        let range = offset..<offset + count
        if let last = touched.last, last.lowerBound <= range.lowerBound, range.lowerBound <= last.upperBound {
            touched[touched.count - 1] = last.lowerBound..<max(last.upperBound, range.upperBound)
        } else {
            touched.append(range)
        }
    }

    /// What ``attributes(_:commandLength:version:)`` found.
    private struct Values {
        /// Little-endian values of up to 8 bytes, and for DATA the length of its value.
        var integers: [SendStreamAttribute: Int64] = [:]
        /// Where DATA's value starts.
        var dataStart: Int?
        /// PATH, PATH_TO, CLONE_UUID and CLONE_PATH.
        var bytes: [SendStreamAttribute: [UInt8]] = [:]
    }

    /// The attributes among `bytes` that a command's effect on file bytes depends on.
    private static func attributes<Bytes: RandomAccessCollection<UInt8>>(_ bytes: Bytes, commandLength: Int, version: UInt32)
        -> Values where Bytes.Index == Int
    {
        var values = Values()
        var at = bytes.startIndex
        let commandEnd = bytes.startIndex + commandLength
        while at + 2 <= bytes.endIndex {
            let type = SendStreamAttribute(rawValue: bytes.sendStreamLE16(at: at))
            if type == .data && version >= 2 {
                values.integers[.data] = Int64(commandEnd - (at + 2))
                values.dataStart = at + 2
                break
            }
            guard at + 4 <= bytes.endIndex else { break }
            let size = Int(bytes.sendStreamLE16(at: at + 2))
            let value = at + 4
            if type == .data {
                values.integers[.data] = Int64(size)
                values.dataStart = value
                break
            }
            guard value + size <= bytes.endIndex else { break }
            if let type, [.path, .pathTo, .cloneUUID, .clonePath].contains(type) {
                values.bytes[type] = Array(bytes[value..<value + size])
            } else if let type, size <= 8 {
                var number: UInt64 = 0
                for (shift, byte) in bytes[value..<value + size].enumerated() { number |= UInt64(byte) << (8 * UInt64(shift)) }
                values.integers[type] = Int64(truncatingIfNeeded: number)
            }
            at = value + size
        }
        return values
    }
}
