import Crypto
import Foundation
import Testing

@Suite("Generated protobuf code")
struct GeneratedCodeTests {
    /// Sources/ICBDProto/PROTOS.sha256 fingerprints the protos the committed code was generated
    /// from; a changed, added or removed proto without regeneration fails here.
    @Test func committedCodeMatchesTheProtos() throws {
        let root = CommandRunner.packageRoot
        let fingerprint = try String(
            contentsOf: root.appendingPathComponent("Sources/ICBDProto/PROTOS.sha256"), encoding: .utf8)
        var recorded: [String: String] = [:]
        for line in fingerprint.split(separator: "\n") {
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count == 2 else { continue }
            recorded[String(parts[1])] = String(parts[0])
        }
        let protos = root.appendingPathComponent("Protos")
        let files = FileManager.default.enumerator(atPath: protos.path)?.compactMap { $0 as? String }
            .filter { $0.hasSuffix(".proto") } ?? []
        #expect(!files.isEmpty)
        var current: [String: String] = [:]
        for file in files {
            let data = try Data(contentsOf: protos.appendingPathComponent(file))
            current[file] = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        }
        #expect(current == recorded, "run scripts/generate-protos and commit Sources/ICBDProto")
    }
}
