import Foundation
import ICBDProcess
import ICBDSample

/// The sample template laid out for nginx at the URLs a gateway's boot script names, so that the
/// same storm client (`icbd storm`'s workstations, every byte checked) boots from either.
struct NginxTemplateSite {
    /// The `server` lines that answer every `/boot/MAC.ipxe` with `ROOT/boot.ipxe`.
    static let locations = "location /boot/ { default_type text/plain; try_files /boot.ipxe =404; }"

    /// Fetches `gateway`'s boot script for a workstation without an assignment (every storm
    /// workstation boots the default image), writes it as `ROOT/boot.ipxe` with its URLs made
    /// relative (to whichever server answers), and the template's files in the directory its
    /// `kernel` line names under `root`.
    static func write(_ template: SampleTemplate, bootScriptOf gateway: String, root: String) async throws {
        let script = try await SystemCommand.run("/usr/bin/curl", ["-sf", "\(gateway)/boot/52:54:00:00:00:01.ipxe"])
        let relative = script.replacingOccurrences(of: gateway, with: "")
        guard let kernel = relative.split(separator: "\n").first(where: { $0.hasPrefix("kernel /") })?.split(separator: " ").dropFirst().first,
            let slash = kernel.lastIndex(of: "/")
        else { throw BenchError("the boot script of \(gateway) has no `kernel` line with a URL of the gateway:\n\(script)") }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        try relative.write(toFile: root + "/boot.ipxe", atomically: true, encoding: .utf8)
        try template.write(to: root + kernel[..<slash])
    }
}
