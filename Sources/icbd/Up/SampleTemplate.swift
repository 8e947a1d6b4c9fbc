import Foundation

/// The template `icbd up` publishes and the boot storm reads: a sparse VM-like disk, a kernel
/// and an initrd (made-up bytes of realistic sizes; nothing boots from them, they exercise the
/// data path). Every byte is known without the files, so readers can check what they get.
struct SampleTemplate: Sendable {
    var diskSize: Int64
    var kernelSize = 8 << 20
    var initrdSize = 32 << 20
    /// For a next version: 1 MiB pieces of the disk changed.
    var changedMiB: Int64 = 0

    var disk: VMLikeDisk { VMLikeDisk(size: diskSize, changedPieces: changedMiB) }
    var kernel: Data { Self.blob(size: kernelSize, seed: 1) }
    var initrd: Data { Self.blob(size: initrdSize, seed: 2) }

    func write(to directory: String) throws {
        try? FileManager.default.removeItem(atPath: directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try disk.write(to: directory + "/disk.raw")
        try kernel.write(to: URL(fileURLWithPath: directory + "/vmlinuz"))
        try initrd.write(to: URL(fileURLWithPath: directory + "/initrd.img"))
    }

    private static func blob(size: Int, seed: UInt64) -> Data {
        var generator = VMLikeDisk.Generator(state: seed &* 0x9E37_79B9_7F4A_7C15)
        return Data(generator.bytes(size))
    }
}
