// Feeds a real btrfs send stream (a file) to SendStreamValidator in 1 MiB segments, as the
// receiver does, ROUNDS times; prints the CPU seconds (getrusage: user + system) per GiB of each.
// Usage: bench STREAM ROUNDS FILE_SIZE (see run).
import Foundation
import Glibc

let path = CommandLine.arguments[1]
let rounds = Int(CommandLine.arguments[2]) ?? 5
let fileSize = Int64(CommandLine.arguments[3]) ?? (1 << 30)
let data = try! Data(contentsOf: URL(fileURLWithPath: path))
let bytes = [UInt8](data)
func cpu() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}
var results: [Double] = []
for _ in 0..<rounds {
    var validator = SendStreamValidator(limits: .init(files: [("disk.raw", fileSize)]))
    let start = cpu()
    bytes.withUnsafeBytes { all in
        var at = 0
        while at < all.count {
            let end = min(all.count, at + (1 << 20))
            _ = try! validator.consume(UnsafeRawBufferPointer(rebasing: all[at..<end]))
            at = end
        }
    }
    let seconds = cpu() - start
    precondition(validator.isComplete)
    let perGiB = seconds / (Double(bytes.count) / Double(1 << 30))
    results.append(perGiB)
    print(String(format: "round: %.4f CPU-s for %d bytes = %.4f CPU-s per GiB", seconds, bytes.count, perGiB))
}
print(String(format: "median %.4f CPU-s per GiB", results.sorted()[results.count / 2]))
