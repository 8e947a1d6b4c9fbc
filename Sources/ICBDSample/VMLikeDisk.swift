import Foundation

/// A disk image shaped like a VM template's, in 4 MiB regions: a third zeros (unused space), a
/// third compressible (text- and code-like), a third random (compressed data). Every byte can be
/// computed from its offset, so a reader can check what it was served without the file.
/// `changedPieces` > 0 is the next version: that many 1 MiB pieces, spread over the disk, hold
/// new random bytes.
public struct VMLikeDisk: Sendable {
    public let size: Int64
    public var changedPieces: Int64 = 0

    public init(size: Int64, changedPieces: Int64 = 0) {
        self.size = size
        self.changedPieces = changedPieces
    }

    static let region = 4 << 20
    static let piece = 1 << 20

    /// Writes the whole disk (zero regions as holes).
    public func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw VMLikeDiskError("cannot create \(path)")
        }
        defer { try? handle.close() }
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(Self.region), size - offset))
            if let bytes = regionBytes(Int(offset / Int64(Self.region))) {
                try handle.seek(toOffset: UInt64(offset))
                try handle.write(contentsOf: bytes[0..<length])
            }
            offset += Int64(length)
        }
        try handle.truncate(atOffset: UInt64(size))
        for piece in 0..<changedPieces {
            let (at, bytes) = changed(piece)
            try handle.seek(toOffset: UInt64(at))
            try handle.write(contentsOf: bytes[0..<Int(min(Int64(bytes.count), size - at))])
        }
    }

    /// The bytes at `offset..<offset+count`.
    public func bytes(at offset: Int64, count: Int) -> [UInt8] {
        var result = [UInt8](repeating: 0, count: count)
        var position = offset
        while position < offset + Int64(count) {
            let index = Int(position / Int64(Self.region))
            let start = Int(position % Int64(Self.region))
            let take = min(Self.region - start, Int(offset + Int64(count) - position))
            if let region = regionBytes(index) {
                let into = Int(position - offset)
                result.replaceSubrange(into..<into + take, with: region[start..<start + take])
            }
            position += Int64(take)
        }
        for piece in 0..<changedPieces {
            let (at, bytes) = changed(piece)
            let low = max(at, offset)
            let high = min(at + Int64(bytes.count), offset + Int64(count), size)
            guard low < high else { continue }
            result.replaceSubrange(Int(low - offset)..<Int(high - offset), with: bytes[Int(low - at)..<Int(high - at)])
        }
        return result
    }

    /// Region `index`'s bytes; nil for a zero region.
    private func regionBytes(_ index: Int) -> [UInt8]? {
        switch index % 3 {
        case 0:
            return nil
        case 1:
            let line = Array("kernel: [    0.000000] Linux version 6.1.0 (debian-kernel@lists.debian.org) #\(index)\n".utf8)
            return (0..<Self.region).map { line[$0 % line.count] }
        default:
            var generator = Generator(state: 0x1234_5678_9ABC_DEF1 &+ UInt64(index))
            return generator.bytes(Self.region)
        }
    }

    /// Changed piece `piece` of the next version: where it goes and its bytes.
    private func changed(_ piece: Int64) -> (offset: Int64, bytes: [UInt8]) {
        var generator = Generator(state: 0xFEED_FACE_CAFE_BEEF &+ UInt64(piece))
        return ((size / changedPieces) * piece, generator.bytes(Self.piece))
    }

    /// A fast deterministic source of bytes that do not compress.
    struct Generator {
        var state: UInt64

        mutating func bytes(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            bytes.withUnsafeMutableBytes { buffer in
                var index = 0
                while index < count {
                    state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                    var word = state ^ (state >> 29)
                    let take = min(8, count - index)
                    withUnsafeBytes(of: &word) { buffer.baseAddress!.advanced(by: index).copyMemory(from: $0.baseAddress!, byteCount: take) }
                    index += take
                }
            }
            return bytes
        }
    }
}

/// A disk image that could not be written.
public struct VMLikeDiskError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
