import Foundation

/// The CPU time of one process and its descendants (`/proc/PID/stat`: user and system time of
/// every thread), so a bench can say what each server process spent: the gateway, the cache
/// node, or nginx's master and workers together.
enum ProcessCPU {
    /// CPU seconds so far of `pid` and of every live process descending from it; nil when
    /// `pid` is gone or `/proc` cannot be read.
    static func seconds(ofTree pid: pid_t) -> Double? {
        seconds(ofTree: pid, among: allTimes())
    }

    /// The CPU seconds of `pid` and its descendants among `processes`; nil when `pid` is not there.
    static func seconds(ofTree pid: pid_t, among processes: [Times]) -> Double? {
        guard let root = processes.first(where: { $0.pid == pid }) else { return nil }
        let children = Dictionary(grouping: processes.filter { $0.pid != pid }, by: \.parent)
        var total = 0.0
        var pending = [root]
        while let next = pending.popLast() {
            total += next.seconds
            pending += children[next.pid] ?? []
        }
        return total
    }

    /// One process's line of `/proc/PID/stat`, as far as the bench needs it.
    struct Times: Equatable {
        let pid: pid_t
        let parent: pid_t
        /// User plus system time (the process's own threads, not its reaped children).
        let seconds: Double
    }

    /// Parses a `/proc/PID/stat` line: `PID (COMM) STATE PPID …`, utime and stime the 14th and
    /// 15th fields, in clock ticks of `ticksPerSecond`. COMM may hold spaces and parentheses, so
    /// the fields after it are counted from its last `)`.
    static func parse(_ line: String, ticksPerSecond: Double) -> Times? {
        guard let close = line.lastIndex(of: ")"), let pid = pid_t(line.prefix { $0 != " " }) else { return nil }
        let fields = line[line.index(after: close)...].split(separator: " ")
        // fields[0] is the state (field 3); ppid is field 4, utime 14, stime 15.
        guard fields.count > 12, let parent = pid_t(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]),
            ticksPerSecond > 0
        else { return nil }
        return Times(pid: pid, parent: parent, seconds: (user + system) / ticksPerSecond)
    }

    private static var ticksPerSecond: Double { Double(sysconf(Int32(_SC_CLK_TCK))) }

    private static func allTimes() -> [Times] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let ticks = ticksPerSecond
        return entries.compactMap { pid_t($0) }.compactMap { pid in
            (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)).flatMap { parse($0, ticksPerSecond: ticks) }
        }
    }
}

/// CPU seconds spent per GiB of response bodies served: how a server's cost compares with
/// another's, whatever their throughput.
func cpuSecondsPerGiB(cpuSeconds: Double, bytes: Int64) -> Double {
    bytes > 0 ? cpuSeconds / (Double(bytes) / Double(1 << 30)) : 0
}
