import Foundation
import ICBDRPC
import NIOCore

/// The first command of a `btrfs send` stream: which subvolume it creates (its name and the
/// UUID it will carry as `received_uuid`) and, for an incremental stream, the subvolume it is a
/// snapshot of. The receiver checks these before `btrfs receive` sees a byte, so a stream of
/// another image or version, or against another parent, is refused and nothing is created.
///
/// Layout (btrfs-progs send.h): "btrfs-stream\0", le32 version; then commands of le32 length,
/// le16 command, le32 crc32c, and `length` bytes of TLVs (le16 type, le16 length, value).
struct SendStreamHead: Sendable, Equatable {
    static let magic = Array("btrfs-stream".utf8) + [0]
    /// Enough bytes to hold the magic and the first command.
    static let maximumLength = 64 << 10

    /// The name of the subvolume the stream creates.
    let name: String
    let uuid: UUID
    /// The subvolume an incremental stream is a snapshot of; nil for a full stream.
    let cloneUUID: UUID?

    private static let commandSubvolume: UInt16 = 1
    private static let commandSnapshot: UInt16 = 2
    private static let attributeUUID: UInt16 = 1
    private static let attributePath: UInt16 = 15
    private static let attributeCloneUUID: UInt16 = 20

    /// Parses the head of `bytes`; nil when more bytes are needed; throws when they are not
    /// the start of a send stream.
    static func parse(_ bytes: [UInt8]) throws(ReplicationError) -> SendStreamHead? {
        let headerLength = magic.count + 4
        guard bytes.count >= headerLength else {
            guard bytes.elementsEqual(magic.prefix(bytes.count)) else { throw notAStream }
            return nil
        }
        guard bytes.prefix(magic.count).elementsEqual(magic) else { throw notAStream }
        let commandHeader = 10
        guard bytes.count >= headerLength + commandHeader else { return nil }
        let length = Int(le32(bytes, headerLength))
        let command = le16(bytes, headerLength + 4)
        guard command == commandSubvolume || command == commandSnapshot else {
            throw ReplicationError(.dataLoss, "the send stream does not begin by creating a subvolume (command \(command))")
        }
        guard length <= maximumLength - headerLength - commandHeader else {
            throw ReplicationError(.dataLoss, "the send stream's first command is \(length) bytes long")
        }
        let start = headerLength + commandHeader
        guard bytes.count >= start + length else { return nil }
        var name: String?
        var uuid: UUID?
        var clone: UUID?
        var position = start
        while position + 4 <= start + length {
            let type = le16(bytes, position)
            let size = Int(le16(bytes, position + 2))
            let value = position + 4
            guard value + size <= start + length else { throw ReplicationError(.dataLoss, "the send stream's first command is cut") }
            switch type {
            case attributePath: name = String(decoding: bytes[value..<value + size], as: UTF8.self)
            case attributeUUID where size == 16: uuid = makeUUID(bytes, value)
            case attributeCloneUUID where size == 16: clone = makeUUID(bytes, value)
            default: break
            }
            position = value + size
        }
        guard let name, let uuid else { throw ReplicationError(.dataLoss, "the send stream's first command has no name or UUID") }
        if command == commandSnapshot && clone == nil {
            throw ReplicationError(.dataLoss, "the incremental send stream names no parent")
        }
        return SendStreamHead(name: name, uuid: uuid, cloneUUID: command == commandSnapshot ? clone : nil)
    }

    private static var notAStream: ReplicationError { ReplicationError(.dataLoss, "the stream is not a btrfs send stream") }

    private static func le16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(bytes[at]) | UInt16(bytes[at + 1]) << 8 }
    private static func le32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
    }
    private static func makeUUID(_ bytes: [UInt8], _ at: Int) -> UUID {
        let b = Array(bytes[at..<at + 16])
        return UUID(uuid: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
    }
}

/// The first segments of a stream, held until its first command (``SendStreamHead``) is whole,
/// so `btrfs receive` starts only for the expected subvolume. At most
/// ``SendStreamHead/maximumLength`` bytes of head, so a few segments at most.
struct StreamHeadBuffer {
    private var bytes: [UInt8] = []
    private var held: [ByteBuffer] = []

    /// Holds `segment`; returns the head once it is whole.
    mutating func add(_ segment: ByteBuffer) throws(ReplicationError) -> SendStreamHead? {
        held.append(segment)
        bytes += segment.readableBytesView.prefix(SendStreamHead.maximumLength - bytes.count)
        if let parsed = try SendStreamHead.parse(bytes) { return parsed }
        guard bytes.count < SendStreamHead.maximumLength else {
            throw ReplicationError(.dataLoss, "the stream's first command does not end within \(SendStreamHead.maximumLength) bytes")
        }
        return nil
    }

    /// The segments held, handed over once.
    mutating func take() -> [ByteBuffer] {
        defer { held = [] }
        return held
    }
}
