import Foundation

/// The machine's busy CPU time (every core, every process and kernel thread: `/proc/stat`),
/// so a bench can say how much CPU a transfer cost besides how long it took. On a machine
/// with few cores, a design that burns more CPU than its baseline cannot be as fast.
struct SystemCPU {
    /// Busy time so far, in seconds (user, nice, system, irq, softirq, steal; not idle or
    /// iowait); nil where `/proc/stat` cannot be read.
    static func busySeconds() -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        guard fields.count >= 8 else { return nil }
        let busy = fields[0] + fields[1] + fields[2] + fields[5] + fields[6] + fields[7]
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks > 0 ? busy / ticks : nil
    }

    /// CPU time of this process's threads so far (user and system, `getrusage`), in seconds:
    /// what icbd itself spent, apart from its `btrfs` children, the kernel's threads and
    /// whatever else the machine ran.
    static func processSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}

/// How long something took and how much CPU the whole machine spent meanwhile.
struct TimedRun {
    let elapsed: Duration
    /// Core-seconds; 0 where the machine does not tell.
    let cpuSeconds: Double
    /// Core-seconds of this process alone.
    let processSeconds: Double
}

/// Started when made; ``stop()`` tells the time and the machine's CPU time since.
struct CPUStopwatch {
    private let cpu = SystemCPU.busySeconds()
    private let process = SystemCPU.processSeconds()
    private let start = ContinuousClock.now

    func stop() -> TimedRun {
        let elapsed = ContinuousClock.now - start
        let used = cpu.flatMap { before in SystemCPU.busySeconds().map { $0 - before } } ?? 0
        return TimedRun(elapsed: elapsed, cpuSeconds: used, processSeconds: SystemCPU.processSeconds() - process)
    }
}
