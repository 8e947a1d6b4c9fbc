/// One verified segment of a send stream as the receive spool keeps it (``ReceiveSpool``).
///
/// The spool does not hold the stream's write data: `btrfs receive` has just written it into
/// the partly received subvolume, and a resume reads it back from there. A record holds the
/// segment's length, its SHA-256 (as the sender sent it and the receiver verified it) and its
/// bytes as pieces: literal bytes (command headers, metadata, and any data the spool could not
/// find again) and references to write data (file, offset, length). A rebuilt segment counts
/// only if it hashes to its SHA-256 again, so a reference that no longer holds (the file was
/// since changed, or its page never reached the disk before a crash) only makes the resume start
/// earlier; it can never put a wrong byte into the stream.
///
/// Data of a command that does not end within the segment stays literal (at most one write's
/// data): `btrfs receive` applies only whole commands, so such data may not be on disk when a
/// cut ends the stream there.
struct SpoolRecord: Sendable, Equatable {
    enum Piece: Sendable, Equatable {
        case literal([UInt8])
        /// `count` bytes of the file at `path` (relative to the subvolume), from `fileOffset`.
        case data(path: [UInt8], fileOffset: Int64, count: Int)
        /// A rename in the stream: a reference made before it finds its file under the new name.
        case rename(from: [UInt8], to: [UInt8])
    }

    let rawLength: Int
    let sha256: [UInt8]
    let pieces: [Piece]

    /// The record of `raw`, one segment, given what the stream scan marked in it.
    init(raw: UnsafeRawBufferPointer, sha256: [UInt8], landmarks: SendStreamScan.Landmarks) {
        var pieces: [Piece] = []
        var cursor = 0
        for mark in landmarks.marks {
            switch mark {
            case .rename(let from, let to):
                pieces.append(.rename(from: from, to: to))
            case .data(let range, let path, let fileOffset):
                guard range.upperBound <= landmarks.lastCommandEnd, range.lowerBound >= cursor, Self.isPlainRelative(path) else { continue }
                if cursor < range.lowerBound { pieces.append(.literal(Array(raw[cursor..<range.lowerBound]))) }
                pieces.append(.data(path: path, fileOffset: fileOffset, count: range.count))
                cursor = range.upperBound
            }
        }
        if cursor < raw.count { pieces.append(.literal(Array(raw[cursor...]))) }
        self.init(rawLength: raw.count, sha256: sha256, pieces: pieces)
    }

    init(rawLength: Int, sha256: [UInt8], pieces: [Piece]) {
        self.rawLength = rawLength
        self.sha256 = sha256
        self.pieces = pieces
    }

    /// A path the spool may read back: relative, no `..`, no empty or `.` component.
    static func isPlainRelative(_ path: [UInt8]) -> Bool {
        guard !path.isEmpty, path.count <= 4096, path.first != UInt8(ascii: "/") else { return false }
        return !path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false).contains {
            $0.isEmpty || $0.elementsEqual([UInt8(ascii: ".")]) || $0.elementsEqual([UInt8(ascii: "."), UInt8(ascii: ".")]) || $0.contains(0)
        }
    }

    // MARK: - On disk

    /// The spool file's first bytes; a file without them (another format) is not resumed from.
    static let magic = Array("icbd-spool/2\n".utf8)
    /// The largest record body: a whole segment of literal bytes, plus the pieces' headers.
    static let maximumBodyLength = SegmentCodec.maximumSegmentSize * 2 + (1 << 20)

    /// The record as it is appended to the spool: le32 body length, then the body.
    func encoded() -> [UInt8] {
        var body: [UInt8] = []
        body.reserveCapacity(64 + pieces.count * 48)
        Self.put32(UInt32(rawLength), &body)
        body += sha256
        Self.put32(UInt32(pieces.count), &body)
        for piece in pieces {
            switch piece {
            case .literal(let bytes):
                body.append(0)
                Self.put32(UInt32(bytes.count), &body)
                body += bytes
            case .data(let path, let fileOffset, let count):
                body.append(1)
                Self.put16(UInt16(path.count), &body)
                body += path
                Self.put64(UInt64(fileOffset), &body)
                Self.put32(UInt32(count), &body)
            case .rename(let from, let to):
                body.append(2)
                Self.put16(UInt16(from.count), &body)
                body += from
                Self.put16(UInt16(to.count), &body)
                body += to
            }
        }
        var record: [UInt8] = []
        record.reserveCapacity(4 + body.count)
        Self.put32(UInt32(body.count), &record)
        return record + body
    }

    /// Parses one record body; nil when it is malformed (a torn or damaged spool).
    static func decode(body: [UInt8]) -> SpoolRecord? {
        var reader = Reader(bytes: body)
        guard let rawLength = reader.u32(), rawLength > 0, Int(rawLength) <= SegmentCodec.maximumSegmentSize,
            let sha256 = reader.bytes(32), let count = reader.u32(), Int(count) <= body.count
        else { return nil }
        var pieces: [Piece] = []
        var covered = 0
        for _ in 0..<count {
            switch reader.u8() {
            case 0:
                guard let length = reader.u32(), let bytes = reader.bytes(Int(length)) else { return nil }
                pieces.append(.literal(bytes))
                covered += bytes.count
            case 1:
                guard let pathLength = reader.u16(), let path = reader.bytes(Int(pathLength)), isPlainRelative(path),
                    let offset = reader.u64(), offset <= UInt64(Int64.max), let length = reader.u32()
                else { return nil }
                pieces.append(.data(path: path, fileOffset: Int64(offset), count: Int(length)))
                covered += Int(length)
            case 2:
                guard let fromLength = reader.u16(), let from = reader.bytes(Int(fromLength)), let toLength = reader.u16(),
                    let to = reader.bytes(Int(toLength))
                else { return nil }
                pieces.append(.rename(from: from, to: to))
            default:
                return nil
            }
        }
        guard reader.isAtEnd, covered == Int(rawLength) else { return nil }
        return SpoolRecord(rawLength: Int(rawLength), sha256: sha256, pieces: pieces)
    }

    private struct Reader {
        let bytes: [UInt8]
        var at = 0
        var isAtEnd: Bool { at == bytes.count }

        mutating func bytes(_ count: Int) -> [UInt8]? {
            guard count >= 0, count <= bytes.count - at else { return nil }
            defer { at += count }
            return Array(bytes[at..<at + count])
        }

        mutating func u8() -> UInt8? { bytes(1)?.first }
        mutating func u16() -> UInt16? { integer(2).map { UInt16($0) } }
        mutating func u32() -> UInt32? { integer(4).map { UInt32($0) } }
        mutating func u64() -> UInt64? { integer(8) }

        private mutating func integer(_ size: Int) -> UInt64? {
            guard size <= bytes.count - at else { return nil }
            var value: UInt64 = 0
            for shift in 0..<size { value |= UInt64(bytes[at + shift]) << (8 * UInt64(shift)) }
            at += size
            return value
        }
    }

    static func le32(_ bytes: [UInt8]) -> UInt32 {
        bytes.prefix(4).enumerated().reduce(0) { $0 | UInt32($1.element) << (8 * UInt32($1.offset)) }
    }

    private static func put16(_ value: UInt16, _ out: inout [UInt8]) {
        out += [UInt8(truncatingIfNeeded: value), UInt8(truncatingIfNeeded: value >> 8)]
    }

    private static func put32(_ value: UInt32, _ out: inout [UInt8]) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt32(shift))) }
    }

    private static func put64(_ value: UInt64, _ out: inout [UInt8]) {
        for shift in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: value >> UInt64(shift))) }
    }
}
