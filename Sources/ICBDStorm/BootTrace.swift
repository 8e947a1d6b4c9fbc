/// The disk reads of one boot, in the order a boot makes them: a sequential run through the
/// first part of the disk (boot loader, kernel and early userspace), then scattered reads of
/// 16–256 KiB (services starting, libraries loading). About `fraction` of the disk in all;
/// the same for every workstation of a storm (they boot the same template).
public struct BootTrace: Sendable {
    /// One read: `length` bytes at `offset`.
    public struct Read: Sendable {
        public let offset: Int64
        public let length: Int
    }

    public let reads: [Read]

    public var totalBytes: Int64 { reads.reduce(0) { $0 + Int64($1.length) } }

    public init(diskSize: Int64, fraction: Double = 0.03, seed: UInt64 = 42) {
        let budget = Int64(Double(diskSize) * fraction)
        var reads: [Read] = []
        var offset: Int64 = 0
        // 60%: sequential 128 KiB reads from the start.
        while offset < budget * 6 / 10 {
            reads.append(Read(offset: offset, length: 128 << 10))
            offset += 128 << 10
        }
        var state = seed
        var scattered: Int64 = 0
        while scattered < budget * 4 / 10 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let length = (16 << 10) << Int((state >> 33) % 5)  // 16, 32, 64, 128 or 256 KiB
            let at = Int64((state >> 11) % UInt64(max(1, diskSize - Int64(length)))) & ~4095
            reads.append(Read(offset: at, length: length))
            scattered += Int64(length)
        }
        self.reads = reads
    }
}
