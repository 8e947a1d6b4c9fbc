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
    var diskSize = ByteSize(bytes: 1 << 30)

    @Option(help: "Size of the kernel.")
    var kernelSize = ByteSize(bytes: 8 << 20)

    @Option(help: "Size of the initrd.")
    var initrdSize = ByteSize(bytes: 32 << 20)

    @Option(name: .customLong("changed-mib"), help: "1 MiB pieces of the disk changed, for a next version (0: the first).")
    var changedMiB: Int64 = 0

    func run() throws {
        let template = SampleTemplate(
            diskSize: diskSize.bytes, kernelSize: Int(kernelSize.bytes), initrdSize: Int(initrdSize.bytes), changedMiB: changedMiB)
        try template.write(to: directory)
        print("sample template in \(directory)")
    }
}
