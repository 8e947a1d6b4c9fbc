import ArgumentParser
import ICBDCore
import ICBDSample

/// `icbd sample DIR` (hidden): writes the sample template (`icbd up`'s, what `icbd storm`
/// checks against) into DIR, for scripts that publish it themselves (scripts/e2e).
struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample", abstract: "Write the sample template (disk.raw, vmlinuz, initrd.img) into DIR.", shouldDisplay: false)

    @Argument(help: "The directory to write; replaced if it exists.")
    var directory: String

    @Option(help: "Size of the disk image.")
    var diskSize = "1GiB"

    @Option(help: "Size of the kernel.")
    var kernelSize = "8MiB"

    @Option(help: "Size of the initrd.")
    var initrdSize = "32MiB"

    @Option(name: .customLong("changed-mib"), help: "1 MiB pieces of the disk changed, for a next version (0: the first).")
    var changedMiB: Int64 = 0

    func run() throws {
        let template = SampleTemplate(
            diskSize: try ByteSize(parsing: diskSize).bytes, kernelSize: Int(try ByteSize(parsing: kernelSize).bytes),
            initrdSize: Int(try ByteSize(parsing: initrdSize).bytes), changedMiB: changedMiB)
        try template.write(to: directory)
        print("sample template in \(directory)")
    }
}
