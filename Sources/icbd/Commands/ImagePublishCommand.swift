import ArgumentParser
import Foundation
import ICBDCore
import ReplicatorClient
import ICBDProto
import ICBDRPC
import NIOCore
import Replicator
import SwiftProtobuf

extension ImageCommand {
    /// `icbd image publish IMAGE DIR --replicator HOST:PORT`: sends a directory of files to a
    /// repository, which publishes them as the image's next version.
    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a directory of files (disk image, kernel, initrd, ...) as the image's next version.")

        @Argument(help: "The image's name.")
        var image: Name

        @Argument(help: "A directory of regular files (no symbolic links), at most 64.")
        var directory: String

        @Option(help: "The HOST:PORT of the repository's replicator (the primary site's).")
        var replicator: HostPort

        @Flag(
            help: ArgumentHelp(
                "On the repository host: the replicator reads DIR itself, without copying it through RPC.",
                discussion: "Files on the repository's BTRFS are reflinked (no data copied); others are copied locally."))
        var local = false

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print JSON.")
        var json = false

        /// What `--json` prints: the new version and, per file, what the repository wrote.
        struct Published: Encodable {
            var image: Name
            var version: Int64
            /// 0: the first version.
            var parent: Int64
            var btrfsUuid: String
            var files: [File]

            struct File: Encodable {
                var path: String
                var size: Int64
                /// The file's ETag: the SHA-256 of its chunk manifest, in hex.
                var etag: String
                var zeroChunks: Int64
                var writtenBytes: Int64
                var reflinked: Bool
            }
        }

        func run() async throws {
            let files = try PublishSource.files(in: directory)
            let absolute = URL(fileURLWithPath: directory).standardizedFileURL.path
            let response = try await client.withClient(replicator, role: .replicator) { client in
                try await client.clientStreaming(ReplicatorMethods.publish) { writer in
                    try await writer.write(
                        .with {
                            $0.start.image = image.rawValue
                            $0.start.files = files.map { file in .with { $0.path = file.path; $0.size = file.size } }
                            if local { $0.start.localDirectory = absolute }
                        })
                    for (index, file) in files.enumerated() where !local {
                        try await PublishSource.stream(file, index: UInt32(index), from: directory, to: writer)
                    }
                }
            }
            if json {
                print(
                    try Output.json(
                        Published(
                            image: image, version: response.version, parent: response.parent, btrfsUuid: response.btrfsUuid,
                            files: response.files.map {
                                Published.File(
                                    path: $0.path, size: $0.size, etag: Array($0.manifestSha256).hexString, zeroChunks: $0.zeroChunks,
                                    writtenBytes: $0.writtenBytes, reflinked: $0.reflinked)
                            })))
            } else {
                print("published \(image) v\(response.version)\(response.parent > 0 ? " (parent v\(response.parent))" : "")")
                for file in response.files {
                    print(
                        "  \(file.path)  \(ByteSize(bytes: file.size))  \(file.reflinked ? "reflinked" : "written \(ByteSize(bytes: file.writtenBytes))")  etag \(Array(file.manifestSha256).hexString)"
                    )
                }
            }
        }
    }
}
