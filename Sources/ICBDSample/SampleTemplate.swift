import Foundation

/// The template `icbd up` publishes and the boot storm reads: a sparse VM-like disk, a kernel
/// and an initrd (made-up bytes of realistic sizes; nothing boots from them, they exercise the
/// data path). Every byte is known without the files, so readers can check what they get.
public struct SampleTemplate: Sendable {
    public var diskSize: Int64
    public var kernelSize = 8 << 20
    public var initrdSize = 32 << 20
    /// For a next version: 1 MiB pieces of the disk changed.
    public var changedMiB: Int64 = 0

    public init(diskSize: Int64, kernelSize: Int = 8 << 20, initrdSize: Int = 32 << 20, changedMiB: Int64 = 0) {
        self.diskSize = diskSize
        self.kernelSize = kernelSize
        self.initrdSize = initrdSize
        self.changedMiB = changedMiB
    }

    public var disk: VMLikeDisk { VMLikeDisk(size: diskSize, changedPieces: changedMiB) }
    public var kernel: Data { Self.blob(size: kernelSize, seed: 1) }
    public var initrd: Data { Self.blob(size: initrdSize, seed: 2) }

    public func write(to directory: String) throws {
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
