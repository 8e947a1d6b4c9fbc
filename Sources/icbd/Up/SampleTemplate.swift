import Foundation

/// The template `icbd up` publishes: a sparse VM-like disk, a kernel and an initrd (made-up
/// bytes of realistic sizes; nothing boots from them, they exercise the data path).
struct SampleTemplate {
    var diskSize: Int64

    func write(to directory: String) throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try VMLikeDisk(size: diskSize).write(to: directory + "/disk.raw")
        try Self.blob(size: 8 << 20, seed: 1).write(to: URL(fileURLWithPath: directory + "/vmlinuz"))
        try Self.blob(size: 32 << 20, seed: 2).write(to: URL(fileURLWithPath: directory + "/initrd.img"))
    }

    private static func blob(size: Int, seed: UInt64) -> Data {
        var generator = VMLikeDisk.Generator(state: seed &* 0x9E37_79B9_7F4A_7C15)
        return Data(generator.bytes(size))
    }
}
