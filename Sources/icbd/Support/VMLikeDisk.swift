import Foundation

/// A disk image shaped like a VM template's: a third zeros (unused space), a third
/// compressible (text- and code-like), a third random (compressed data), in 4 MiB regions.
struct VMLikeDisk {
    let size: Int64

    func write(to path: String) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
            throw VMLikeDiskError("cannot create \(path)")
        }
        defer { try? handle.close() }
        var generator = Generator(state: 0x1234_5678_9ABC_DEF1)
        let region = 4 << 20
        var offset: Int64 = 0
        while offset < size {
            let length = Int(min(Int64(region), size - offset))
            switch (offset / Int64(region)) % 3 {
            case 0:
                try handle.seek(toOffset: UInt64(offset + Int64(length)))  // a hole
            case 1:
                let line = Array("kernel: [    0.000000] Linux version 6.1.0 (debian-kernel@lists.debian.org) #\(offset)\n".utf8)
                try handle.write(contentsOf: (0..<length).map { line[$0 % line.count] })
            default:
                try handle.write(contentsOf: generator.bytes(length))
            }
            offset += Int64(length)
        }
        try handle.truncate(atOffset: UInt64(size))
    }

    /// Overwrites `amount` bytes, in 1 MiB pieces spread over the disk, with new random bytes.
    func change(_ amount: Int64, of path: String) throws {
        guard let handle = FileHandle(forUpdatingAtPath: path) else { throw VMLikeDiskError("cannot open \(path)") }
        defer { try? handle.close() }
        var generator = Generator(state: 0xFEED_FACE_CAFE_BEEF)
        let pieces = amount >> 20
        for piece in 0..<pieces {
            try handle.seek(toOffset: UInt64((size / pieces) * piece))
            try handle.write(contentsOf: generator.bytes(1 << 20))
        }
    }

    /// A fast deterministic source of bytes that do not compress.
    struct Generator {
        var state: UInt64

        mutating func bytes(_ count: Int) -> [UInt8] {
            var bytes = [UInt8](repeating: 0, count: count)
            for index in stride(from: 0, to: count, by: 8) {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                withUnsafeBytes(of: state) { word in
                    for byte in 0..<min(8, count - index) { bytes[index + byte] = word[byte] }
                }
            }
            return bytes
        }
    }
}

struct VMLikeDiskError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
