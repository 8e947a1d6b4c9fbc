import Foundation
import ICBDCore

/// Waits for the machine to finish writing back, so a timed run does not share the disk and
/// the CPU with the previous run's writeback.
///
/// One `sync` is not enough with loop-mounted filesystems: what BTRFS writes to its loop device
/// lands as dirty pages of the image file on the host's filesystem, which may be synced before
/// it. Measured here: a pipe started right after an icbd transfer with one `sync` took 2.5–3.4 s
/// and 3 core-s, against 1.4–1.7 s and 2 core-s on a settled machine.
enum Writeback {
    /// `sync` until `/proc/meminfo` shows under 16 MiB dirty or under writeback, for at most
    /// 30 s (then the run goes ahead on a busy machine; its figures will show it).
    static func settle() async {
        let deadline = ContinuousClock.now + .seconds(30)
        repeat {
            sync()
            guard let pending = pendingBytes(), pending >= 16 << 20 else { return }
            try? await Task.sleep(for: .milliseconds(100))
        } while ContinuousClock.now < deadline
    }

    /// Dirty plus Writeback, from `/proc/meminfo`; nil where it cannot be read.
    static func pendingBytes() -> Int64? {
        guard let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return nil }
        var total: Int64 = 0
        var seen = 0
        for line in text.split(separator: "\n") where line.hasPrefix("Dirty:") || line.hasPrefix("Writeback:") {
            let fields = line.split(separator: " ")
            guard fields.count >= 2, let kibibytes = Int64(fields[1]) else { return nil }
            total += kibibytes << 10
            seen += 1
        }
        return seen == 2 ? total : nil
    }
}
