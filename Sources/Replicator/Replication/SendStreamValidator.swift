import Foundation
import ICBDRPC

/// Checks a `btrfs send` stream from a peer, command by whole command, before `btrfs receive`
/// sees any of it: the receiver feeds `btrfs receive` only the bytes ``consume(_:)`` returns as
/// validated, so a refused command never reaches the disk.
///
/// Every attribute of every command is parsed as btrfs-progs 6.2 parses it (`read_cmd`: the
/// last attribute of a type wins; from stream version 2, DATA has no length and runs to the end
/// of its command), and the stream is refused when:
/// - it is not a send stream of version 1 or 2, a command or attribute is unknown, malformed,
///   longer than ``maximumCommandLength``, or not one the command carries (which also keeps
///   every attribute that ``SendStreamScan`` reads within its view, so the two agree), or an
///   attribute repeats;
/// - a path (PATH, PATH_TO, PATH_LINK of `link`, CLONE_PATH) is absolute, has a `.`, `..` or
///   empty component or a NUL byte (the empty path, the subvolume's directory, is fine), is
///   longer than PATH_MAX, or goes through a symlink the stream created (or names one, for a
///   command that follows it); symlink targets are content and may be anything;
/// - it does not begin with one `subvol` or `snapshot`, creates a second one, or has any byte
///   after its `end` (a second stream);
/// - a clone's source is neither the announced parent nor the version itself;
/// - it makes a device node, fifo or socket, or any mode carries setuid or setgid;
/// - a file would reach past the size the catalog's manifest gives it (a path the manifest does
///   not list: its largest file), or all files together past the manifest's total (write,
///   clone, fallocate, truncate, update_extent, encoded_write);
/// - it is longer than ``Limits/maximumStreamLength``.
struct SendStreamValidator: Sendable {
    /// What the catalog allows the version's stream.
    struct Limits: Sendable {
        /// Each file's size, by its path in the version.
        var fileSizes: [String: Int64]
        /// The most bytes the stream may have.
        var maximumStreamLength: Int64

        /// The limits from the catalog's files of a version: the stream may carry every file's
        /// bytes once, with the framing of the smallest writes btrfs send makes and room for
        /// metadata (directories, xattrs, times).
        init(files: [(path: String, size: Int64)]) {
            fileSizes = Dictionary(files.map { ($0.path, max(0, $0.size)) }, uniquingKeysWith: max)
            let total = fileSizes.values.reduce(0, +)
            let writes = total / SendStreamValidator.smallestFullWrite + Int64(files.count) + 1
            maximumStreamLength = total + writes * SendStreamValidator.writeFraming + SendStreamValidator.metadataAllowance
        }

        init(fileSizes: [String: Int64], maximumStreamLength: Int64) {
            self.fileSizes = fileSizes
            self.maximumStreamLength = maximumStreamLength
        }
    }

    /// The longest command accepted: btrfs-progs 6.2 reads at most 64 KiB (version 1) or
    /// 16 KiB + 128 KiB of encoded data (version 2).
    static let maximumCommandLength = 16 << 10 + 128 << 10
    /// PATH_MAX, with its NUL.
    static let maximumPathLength = 4095
    /// btrfs send writes at most 48 KiB per `write` (version 1); each costs a command header,
    /// a path and an offset.
    static let smallestFullWrite: Int64 = 48 << 10
    static let writeFraming: Int64 = 10 + 4 + Int64(maximumPathLength) + 12 + 4
    static let metadataAllowance: Int64 = 16 << 20

    let limits: Limits
    /// The stream's first command, once it is validated.
    private(set) var head: SendStreamHead?
    /// Stream bytes consumed.
    private(set) var position: Int64 = 0

    private var version: UInt32 = 0
    private var headerDone = false
    private var ended = false
    /// The current command's bytes while they span calls to ``consume(_:)``.
    private var held: [UInt8] = []
    /// Paths the stream made symlinks.
    private var symlinks: Set<String> = []
    /// How far the stream may have made each file reach (its size or allocation), by path.
    private var reach: [String: Int64] = [:]
    private var totalReach: Int64 = 0
    private let largestFile: Int64
    private let totalSize: Int64

    init(limits: Limits) {
        self.limits = limits
        largestFile = limits.fileSizes.values.max() ?? 0
        totalSize = limits.fileSizes.values.reduce(0, +)
    }

    static let streamHeaderLength = 17
    static let commandHeaderLength = 10

    /// Reads the next bytes of the stream; returns how many of them end whole, validated
    /// commands (with any bytes held from earlier calls): those may go to `btrfs receive`, the
    /// rest wait for the next call. Throws, naming the command and its stream offset, at the
    /// first one refused.
    mutating func consume(_ bytes: UnsafeRawBufferPointer) throws(ReplicationError) -> Int {
        var index = 0
        var validatedEnd = 0
        defer { position += Int64(bytes.count) }
        while index < bytes.count {
            let offset = position + Int64(index) - Int64(held.count)
            if ended {
                throw ReplicationError(.dataLoss, "the send stream goes on after its end command, at byte \(position + Int64(index))")
            }
            if !headerDone {
                let step = min(Self.streamHeaderLength - held.count, bytes.count - index)
                held += bytes[index..<index + step]
                index += step
                try checkHeader(complete: held.count == Self.streamHeaderLength)
                if held.count == Self.streamHeaderLength {
                    version = held.sendStreamLE32(at: SendStreamHead.magic.count)
                    held = []
                    headerDone = true
                    validatedEnd = index
                }
                continue
            }
            // The usual case: the whole command lies in `bytes`.
            if held.isEmpty, bytes.count - index >= Self.commandHeaderLength {
                let length = Int(bytes.sendStreamLE32(at: index))
                try checkLength(length, code: bytes.sendStreamLE16(at: index + 4), at: offset)
                if bytes.count - index >= Self.commandHeaderLength + length {
                    try command(UnsafeRawBufferPointer(rebasing: bytes[index..<index + Self.commandHeaderLength + length]), at: offset)
                    index += Self.commandHeaderLength + length
                    validatedEnd = index
                    continue
                }
            }
            if held.count < Self.commandHeaderLength {
                let step = min(Self.commandHeaderLength - held.count, bytes.count - index)
                held += bytes[index..<index + step]
                index += step
                if held.count == Self.commandHeaderLength {
                    try checkLength(Int(held.sendStreamLE32(at: 0)), code: held.sendStreamLE16(at: 4), at: offset)
                }
                continue
            }
            let wanted = Self.commandHeaderLength + Int(held.sendStreamLE32(at: 0))
            let step = min(wanted - held.count, bytes.count - index)
            held += bytes[index..<index + step]
            index += step
            if held.count == wanted {
                let whole = held
                held = []
                var failure: ReplicationError?
                whole.withUnsafeBytes { bytes in
                    do { try command(bytes, at: offset) } catch { failure = error as? ReplicationError }
                }
                if let failure { throw failure }
                validatedEnd = index
            }
        }
        return validatedEnd
    }

    /// Whether the stream ended where it may: after its `end` command.
    var isComplete: Bool { ended && held.isEmpty }

    private func checkHeader(complete: Bool) throws(ReplicationError) {
        let magic = SendStreamHead.magic
        guard held.prefix(magic.count).elementsEqual(magic.prefix(min(held.count, magic.count))) else {
            throw ReplicationError(.dataLoss, "the stream is not a btrfs send stream")
        }
        if complete {
            let version = held.sendStreamLE32(at: magic.count)
            guard version == 1 || version == 2 else {
                throw ReplicationError(.dataLoss, "the send stream has version \(version); versions 1 and 2 are understood")
            }
        }
    }

    /// Checks a command's length (from its header) before its bytes are held or passed on.
    private func checkLength(_ length: Int, code: UInt16, at offset: Int64) throws(ReplicationError) {
        let name = SendStreamCommand(rawValue: code)?.name ?? "unknown (\(code))"
        guard length <= Self.maximumCommandLength else {
            throw ReplicationError(
                .dataLoss, "the send stream's \(name) command at byte \(offset) is \(length) bytes long (at most \(Self.maximumCommandLength))")
        }
        guard offset + Int64(Self.commandHeaderLength + length) <= limits.maximumStreamLength else {
            throw ReplicationError(
                .dataLoss,
                "the send stream's \(name) command at byte \(offset) goes past the \(limits.maximumStreamLength) bytes the version's files allow a stream")
        }
    }

    // MARK: - One command

    /// Validates one whole command (its header and attributes) that starts at stream `offset`.
    private mutating func command(_ bytes: UnsafeRawBufferPointer, at offset: Int64) throws(ReplicationError) {
        let code = bytes.sendStreamLE16(at: 4)
        guard let command = SendStreamCommand(rawValue: code) else {
            throw ReplicationError(.dataLoss, "the send stream has an unknown command (\(code)) at byte \(offset)")
        }
        func refuse(_ why: String) -> ReplicationError {
            ReplicationError(.dataLoss, "the send stream's \(command.name) command at byte \(offset) \(why)")
        }
        let attributes: SendStreamAttributes
        do {
            attributes = try SendStreamAttributes(UnsafeRawBufferPointer(rebasing: bytes[Self.commandHeaderLength...]), version: version)
        } catch {
            throw refuse(error.reason)
        }
        for type in attributes.present where !command.attributes.contains(type) {
            throw refuse("carries attribute \(type), which it does not use")
        }
        if let repeated = attributes.repeated { throw refuse("carries attribute \(repeated) twice") }
        if let mode = try integer(attributes, .mode, refuse), mode & 0o6000 != 0 {
            throw refuse("sets a setuid or setgid mode (\(String(mode, radix: 8)))")
        }

        if head == nil {
            guard command == .subvolume || command == .snapshot else { throw refuse("comes before the subvolume is created") }
        }
        switch command {
        case .subvolume, .snapshot:
            guard head == nil else { throw refuse("creates a second subvolume") }
            let name = try path(attributes, .path, command: command, refuse)
            guard let uuid = attributes.uuid(.uuid) else { throw refuse("has no 16-byte UUID") }
            var parent: UUID?
            if command == .snapshot {
                guard let clone = attributes.uuid(.cloneUUID) else { throw refuse("names no parent (16-byte clone UUID)") }
                parent = clone
            }
            head = SendStreamHead(name: name, uuid: uuid, cloneUUID: parent)
        case .makeNode, .makeFIFO, .makeSocket:
            throw refuse("makes a device node, fifo or socket, which a version may not hold")
        case .end:
            ended = true
        case .makeFile, .makeDirectory, .removeDirectory:
            _ = try path(attributes, .path, command: command, refuse)
        case .symlink:
            let link = try path(attributes, .path, command: command, refuse)
            guard attributes.range(.pathLink) != nil else { throw refuse("has no target") }
            symlinks.insert(link)
        case .rename:
            let from = try path(attributes, .path, command: command, refuse)
            let to = try path(attributes, .pathTo, command: command, refuse)
            rename(from, to)
        case .link:
            let name = try path(attributes, .path, command: command, refuse)
            let existing = try path(attributes, .pathLink, command: command, refuse)
            if symlinks.contains(existing) { symlinks.insert(name) }
        case .unlink:
            let name = try path(attributes, .path, command: command, refuse)
            symlinks.remove(name)
            totalReach -= reach.removeValue(forKey: name) ?? 0
        case .setXattr, .removeXattr, .chmod, .chown, .utimes, .fileAttributes, .enableVerity:
            _ = try path(attributes, .path, command: command, refuse)
        case .write:
            let file = try path(attributes, .path, command: command, refuse)
            guard let data = attributes.range(.data) else { throw refuse("has no data") }
            try grow(file, offset: try required(attributes, .fileOffset, refuse), count: Int64(data.count), set: false, refuse)
        case .encodedWrite:
            let file = try path(attributes, .path, command: command, refuse)
            try grow(file, offset: try required(attributes, .fileOffset, refuse), count: try required(attributes, .unencodedFileLength, refuse), set: false, refuse)
        case .clone:
            let file = try path(attributes, .path, command: command, refuse)
            _ = try path(attributes, .clonePath, command: command, refuse)
            guard let source = attributes.uuid(.cloneUUID), source == head?.uuid || (head?.cloneUUID != nil && source == head?.cloneUUID) else {
                throw refuse("clones from a subvolume that is neither the version nor its parent")
            }
            _ = try required(attributes, .cloneOffset, refuse)
            try grow(file, offset: try required(attributes, .fileOffset, refuse), count: try required(attributes, .cloneLength, refuse), set: false, refuse)
        case .fallocate, .updateExtent:
            let file = try path(attributes, .path, command: command, refuse)
            try grow(file, offset: try required(attributes, .fileOffset, refuse), count: try required(attributes, .size, refuse), set: false, refuse)
        case .truncate:
            let file = try path(attributes, .path, command: command, refuse)
            try grow(file, offset: 0, count: try required(attributes, .size, refuse), set: true, refuse)
        }
    }

    /// The path in `type`, checked; throws when it may not be used by `command`.
    private func path(
        _ attributes: SendStreamAttributes, _ type: SendStreamAttribute, command: SendStreamCommand, _ refuse: (String) -> ReplicationError
    ) throws(ReplicationError) -> String {
        guard let bytes = attributes.bytes(type) else { throw refuse("has no \(type)") }
        // Empty: the subvolume's own directory.
        guard !bytes.isEmpty else { return "" }
        guard bytes.count <= Self.maximumPathLength, !bytes.contains(0) else { throw refuse("has an overlong or NUL-carrying \(type)") }
        let path = String(decoding: bytes, as: UTF8.self)
        guard bytes.first != UInt8(ascii: "/") else { throw refuse("names an absolute \(type) '\(path)'") }
        let components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        for component in components {
            guard !component.isEmpty, !component.elementsEqual([UInt8(ascii: ".")]) else { throw refuse("has an empty or '.' component in \(type) '\(path)'") }
            guard !component.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) else { throw refuse("goes up ('..') in \(type) '\(path)'") }
        }
        if !symlinks.isEmpty {
            var prefix = ""
            for component in components.dropLast() {
                prefix += (prefix.isEmpty ? "" : "/") + String(decoding: component, as: UTF8.self)
                if symlinks.contains(prefix) { throw refuse("goes through the symlink '\(prefix)' it created, in \(type) '\(path)'") }
            }
            if symlinks.contains(path), !command.leavesSymlinksAlone {
                throw refuse("follows the symlink '\(path)' it created")
            }
        }
        return path
    }

    private func integer(
        _ attributes: SendStreamAttributes, _ type: SendStreamAttribute, _ refuse: (String) -> ReplicationError
    ) throws(ReplicationError) -> Int64? {
        guard attributes.range(type) != nil else { return nil }
        guard let value = attributes.u64(type) else { throw refuse("has a \(type) that is not 8 bytes") }
        return value
    }

    private func required(
        _ attributes: SendStreamAttributes, _ type: SendStreamAttribute, _ refuse: (String) -> ReplicationError
    ) throws(ReplicationError) -> Int64 {
        guard let value = try integer(attributes, type, refuse) else { throw refuse("has no \(type)") }
        return value
    }

    /// Records that `file` reaches `offset + count` (`set`: exactly, as a truncate leaves it).
    private mutating func grow(
        _ file: String, offset: Int64, count: Int64, set: Bool, _ refuse: (String) -> ReplicationError
    ) throws(ReplicationError) {
        guard offset >= 0, count >= 0, offset <= Int64.max - count else { throw refuse("has a negative or overflowing range") }
        let end = offset + count
        let limit = limits.fileSizes[file] ?? largestFile
        guard end <= limit else {
            throw refuse("makes '\(file)' reach byte \(end), past the \(limit) bytes the catalog's manifest allows it")
        }
        let before = reach[file] ?? 0
        let after = set ? end : max(before, end)
        guard totalReach - before + after <= totalSize else {
            throw refuse("makes the files reach \(totalReach - before + after) bytes together, past the manifest's \(totalSize)")
        }
        reach[file] = after
        totalReach += after - before
    }

    /// Moves what is known of `from` (and everything under it) to `to`.
    private mutating func rename(_ from: String, _ to: String) {
        func moved(_ path: String) -> String? {
            if path == from { return to }
            if path.hasPrefix(from + "/") { return to + path.dropFirst(from.count) }
            return nil
        }
        totalReach -= reach.removeValue(forKey: to) ?? 0
        symlinks.remove(to)
        symlinks = Set(symlinks.map { moved($0) ?? $0 })
        var renamed: [String: Int64] = [:]
        for (path, value) in reach { renamed[moved(path) ?? path] = value }
        reach = renamed
    }
}
