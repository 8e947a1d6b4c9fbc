import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import SwiftProtobuf
@testable import Replicator
import Testing

/// A real version on a loop-mounted BTRFS, its real `btrfs send` stream, and a receiving
/// repository on the same filesystem: crafted variants of the stream are served by a
/// ``FakeSender`` (a peer holding a valid replicator certificate) and pulled as the scheduler
/// pulls them (``VersionPull``).
struct CraftedStreamFixture {
    let root: String
    let stream: CraftedStream
    let original: [UInt8]
    let identity: UUID
    let files: [Icbd_Catalog_V1_File]
    let repository: ImageRepository
    /// A read-only subvolume of another image on the same filesystem, holding `secret.txt`.
    let secret: UUID
    let mint: @Sendable (Role, String) throws -> TLSIdentity
    let logger = Logger(label: "test")
    let image = try! Name("crafted")
    /// Where an escaping path would land: on another filesystem.
    let escapeTarget = "/tmp/icbd-escape-\(UUID().uuidString.lowercased())"
    static let diskSize = 300 << 10

    static func with(_ body: (CraftedStreamFixture) async throws -> Void) async throws {
        try await LoopBtrfs.with(size: "512M") { root in
            let source = root + "/source"
            try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
            try FileManager.default.createDirectory(atPath: root + "/repo", withIntermediateDirectories: true)
            try Subvolume.create(at: source + "/work")
            var generator = SeededGenerator(seed: 22)
            var disk = [UInt8](repeating: 0, count: diskSize)
            fillRandom(&disk, 0..<diskSize, &generator)
            try Data(disk).write(to: URL(fileURLWithPath: source + "/work/disk.raw"))
            try Subvolume.snapshot(of: source + "/work", at: source + "/v1", readOnly: true)
            try Subvolume.create(at: source + "/other")
            try Data("the other image's secret".utf8).write(to: URL(fileURLWithPath: source + "/other/secret.txt"))
            try Subvolume.snapshot(of: source + "/other", at: source + "/secret", readOnly: true)

            let send = try await BtrfsCommand.start(["-q", "send", source + "/v1"], readOutput: true, writeInput: false)
            var bytes: [UInt8] = []
            while let chunk = try await send.read(upTo: 1 << 20) { bytes += chunk.readableBytesView }
            #expect(await send.wait().succeeded)

            let manifest = try await ManifestBuilder().build(path: source + "/v1/disk.raw")
            let file = Icbd_Catalog_V1_File.with {
                $0.path = "disk.raw"
                $0.size = manifest.fileSize
                $0.chunkSize = manifest.chunkSize
                $0.manifestSha256 = Data(manifest.digest)
                $0.chunkCount = Int64(manifest.chunkCount)
            }
            let authority = try CertificateAuthority.create(commonName: "icbd crafted stream test CA \(UUID())")
            let fixture = CraftedStreamFixture(
                root: root, stream: CraftedStream(parsing: bytes), original: bytes, identity: try Subvolume.info(at: source + "/v1").uuid,
                files: [file], repository: try ImageRepository(root: root + "/repo"), secret: try Subvolume.info(at: source + "/secret").uuid,
                mint: { role, name in try authority.issueIdentity(PeerIdentity(role: role, name: name), ipAddresses: ["127.0.0.1"]) })
            try await body(fixture)
        }
    }

    /// Pulls `bytes` from a fake sender; the error, or nil when the version arrived.
    func pull(_ bytes: [UInt8], stallAfter: Int? = nil, options: VersionPull.Options = .init()) async throws -> ReplicationError? {
        var failure: ReplicationError?
        try await FakeSender.with(
            stream: bytes, identity: identity, tls: try mint(.replicator, "repo-evil"), logger: logger, stallAfter: stallAfter
        ) { address in
            let pull = VersionPull(
                repository: repository, tls: try mint(.replicator, "repo-branch"), metrics: ReplicationMetrics(), logger: logger,
                target: .init(image: image, version: 1, identity: identity, files: files))
            do {
                _ = try await pull.run(from: address, parents: [], options: options, progress: { _ in })
            } catch let error as ReplicationError {
                failure = error
            }
        }
        return failure
    }

    /// Pulls the crafted stream and checks what a user sees: the transfer fails naming the
    /// command and its offset, nothing landed outside the image's directory, and no version
    /// (nor its spool) is left.
    func expectRefused(_ stream: CraftedStream, command: String, because reason: String, sourceLocation: SourceLocation = #_sourceLocation)
        async throws
    {
        let error = try await pull(stream.encoded())
        let description = error?.description ?? "the version arrived"
        #expect(description.contains("\(command) command at byte"), "\(description)", sourceLocation: sourceLocation)
        #expect(description.contains(reason), "\(description)", sourceLocation: sourceLocation)
        #expect(!FileManager.default.fileExists(atPath: escapeTarget), "\(escapeTarget) was written", sourceLocation: sourceLocation)
        #expect(!Subvolume.exists(at: repository.versionPath(of: image, 1)), sourceLocation: sourceLocation)
        let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: repository.directory(of: image))) ?? []
        #expect(leftovers.isEmpty, "\(leftovers)", sourceLocation: sourceLocation)
        let spool = (try? FileManager.default.contentsOfDirectory(atPath: ReceiveSpool.directory(root: repository.root))) ?? []
        #expect(spool.isEmpty, "\(spool)", sourceLocation: sourceLocation)
        try? FileManager.default.removeItem(atPath: escapeTarget)
    }

    /// The stream with the file's names (its temporary name and `disk.raw`) replaced by `path`.
    func renamingTheFile(to path: String) -> CraftedStream {
        var crafted = stream
        let names = Set(crafted.commands.compactMap { $0.code == 3 ? $0.value(15) : nil } + [CraftedStream.path("disk.raw")])
        for index in crafted.commands.indices {
            for type: UInt16 in [15, 16] where crafted.commands[index].value(type).map(names.contains) == true {
                crafted.commands[index].set(type, CraftedStream.path(path))
            }
        }
        return crafted
    }

    /// The stream with `command` inserted just before its end.
    func inserting(_ command: CraftedStream.Command) -> CraftedStream {
        var crafted = stream
        crafted.commands.insert(command, at: crafted.first(21)!)
        return crafted
    }
}

@Suite("Crafted send streams from a peer are refused before btrfs receive sees them", .serialized, .requiresLoopBtrfs)
struct CraftedStreamTests {
    typealias C = CraftedStream

    @Test func theRealStreamRebuiltArrives() async throws {
        try await CraftedStreamFixture.with { fixture in
            // The rebuilt stream is the sent one, byte for byte (lengths and CRC32Cs as the kernel's).
            #expect(fixture.stream.encoded() == fixture.original)
            let error = try await fixture.pull(fixture.stream.encoded())
            #expect(error == nil, "\(String(describing: error))")
            let info = try Subvolume.info(at: fixture.repository.versionPath(of: fixture.image, 1))
            #expect(info.isReadOnly && info.receivedUUID == fixture.identity)
        }
    }

    @Test func aPathThatGoesUpIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            let up = String(repeating: "../", count: 24) + String(fixture.escapeTarget.dropFirst())
            try await fixture.expectRefused(fixture.renamingTheFile(to: up), command: "mkfile", because: "goes up")
        }
    }

    @Test func anAbsolutePathIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            try await fixture.expectRefused(fixture.renamingTheFile(to: fixture.escapeTarget), command: "mkfile", because: "absolute")
        }
    }

    @Test func aPathThroughASymlinkTheStreamMadeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            var crafted = fixture.renamingTheFile(to: "tmp/" + (fixture.escapeTarget as NSString).lastPathComponent)
            crafted.commands.insert(C.Command(8, [(15, C.path("tmp")), (3, C.u64(300)), (17, C.path("/tmp"))]), at: 1)
            try await fixture.expectRefused(crafted, command: "mkfile", because: "goes through the symlink 'tmp'")
        }
    }

    @Test func aSecondSubvolumeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            var second = fixture.stream.commands[0]
            second.set(15, C.path("v2"))
            second.set(1, C.uuid(UUID()))
            try await fixture.expectRefused(fixture.inserting(second), command: "subvol", because: "creates a second subvolume")
        }
    }

    @Test func aSecondStreamAfterTheEndIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            var another = fixture.stream
            another.commands[0].set(15, C.path("v2"))
            another.commands[0].set(1, C.uuid(UUID()))
            let error = try await fixture.pull(fixture.stream.encoded() + another.encoded())
            #expect(error?.description.contains("goes on after its end command, at byte \(fixture.original.count)") == true, "\(String(describing: error))")
            #expect(!Subvolume.exists(at: fixture.repository.versionPath(of: fixture.image, 1)))
            #expect(!Subvolume.exists(at: fixture.repository.versionPath(of: fixture.image, 2)))
        }
    }

    @Test func aCloneFromAnotherSubvolumeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            let clone = C.Command(16, [
                (15, C.path("disk.raw")), (18, C.u64(0)), (24, C.u64(4096)), (20, C.uuid(fixture.secret)), (21, C.u64(0)),
                (22, C.path("secret.txt")), (23, C.u64(0)),
            ])
            try await fixture.expectRefused(fixture.inserting(clone), command: "clone", because: "neither the version nor its parent")
        }
    }

    @Test(arguments: [(UInt16(5), "mknod"), (6, "mkfifo"), (7, "mksock")])
    func devicesFifosAndSocketsAreRefused(code: UInt16, name: String) async throws {
        try await CraftedStreamFixture.with { fixture in
            let node = C.Command(code, [(15, C.path("node")), (3, C.u64(301)), (5, C.u64(0o020666)), (8, C.u64(0x0103))])
            try await fixture.expectRefused(fixture.inserting(node), command: name, because: "device node, fifo or socket")
        }
    }

    @Test func aSetuidModeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            let chmod = C.Command(18, [(15, C.path("disk.raw")), (5, C.u64(0o4755))])
            try await fixture.expectRefused(fixture.inserting(chmod), command: "chmod", because: "setuid")
        }
    }

    @Test func aWritePastTheManifestsSizeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            let write = C.Command(15, [(15, C.path("disk.raw")), (18, C.u64(Int64(CraftedStreamFixture.diskSize))), (19, [UInt8](repeating: 1, count: 4096))])
            try await fixture.expectRefused(fixture.inserting(write), command: "write", because: "past the \(CraftedStreamFixture.diskSize) bytes")
        }
    }

    @Test func aFallocateOfATebibyteIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            let fallocate = C.Command(23, [(15, C.path("disk.raw")), (25, C.bytes(0, 4)), (18, C.u64(0)), (4, C.u64(1 << 40))])
            try await fixture.expectRefused(fixture.inserting(fallocate), command: "fallocate", because: "past the")
        }
    }

    @Test func aStreamLongerThanTheVersionsFilesAllowIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            // The same 48 KiB written again and again: no file grows, the stream does.
            var crafted = fixture.stream
            let write = crafted.commands[crafted.first(15)!]
            crafted.commands.insert(contentsOf: Array(repeating: write, count: 400), at: crafted.first(21)!)
            try await fixture.expectRefused(crafted, command: "write", because: "bytes the version's files allow a stream")
        }
    }

    /// A source that sends two segments and then nothing: the attempt ends after the
    /// inactivity timeout, with what it received kept for a resume (not a version).
    @Test func aSourceThatStopsSendingEndsTheAttempt() async throws {
        try await CraftedStreamFixture.with { fixture in
            var options = VersionPull.Options()
            options.inactivityTimeout = .milliseconds(500)
            let error = try await fixture.pull(fixture.original, stallAfter: 2, options: options)
            #expect(error?.code == .unavailable, "\(String(describing: error))")
            #expect(error?.description.contains("the source sent nothing for 0.5 seconds") == true, "\(String(describing: error))")
            let info = try? Subvolume.info(at: fixture.repository.versionPath(of: fixture.image, 1))
            #expect(info.map { !$0.isReadOnly && $0.receivedUUID == nil } ?? true, "a stalled transfer left a version")
        }
    }

    @Test func aRepeatedPathAttributeIsRefused() async throws {
        try await CraftedStreamFixture.with { fixture in
            // btrfs-progs would take the second path; a checker reading the first would not see it.
            var crafted = fixture.stream
            let index = crafted.first(15)!
            crafted.commands[index].attributes.append((15, C.path("../../../x")))
            try await fixture.expectRefused(crafted, command: "write", because: "carries attribute path twice")
        }
    }
}

@Suite("Sources whose stream was refused")
struct SuspectSourcesTests {
    @Test func aSuspectSourceIsTriedLastForItsPeriod() {
        let suspects = SuspectSources(period: .seconds(600))
        let start = ContinuousClock.now
        suspects.suspect("repo-evil", at: start)
        let sources = ["repo-evil", "repo-a", "repo-b"]
        #expect(suspects.ordered(sources, name: { $0 }, at: start + .seconds(599)) == ["repo-a", "repo-b", "repo-evil"])
        #expect(suspects.ordered(["repo-evil"], name: { $0 }, at: start + .seconds(1)) == ["repo-evil"])
        #expect(suspects.ordered(sources, name: { $0 }, at: start + .seconds(601)) == sources)
    }
}

@Suite("Send stream command parsing")
struct SendStreamCommandTests {
    @Test func theLastAttributeOfATypeWins() throws {
        let bytes: [UInt8] =
            CraftedStream.bytes(15, 2) + CraftedStream.bytes(1, 2) + Array("a".utf8)
            + CraftedStream.bytes(18, 2) + CraftedStream.bytes(8, 2) + CraftedStream.u64(7)
            + CraftedStream.bytes(15, 2) + CraftedStream.bytes(2, 2) + Array("bc".utf8)
        try bytes.withUnsafeBytes { raw in
            let attributes = try SendStreamAttributes(raw, version: 1)
            #expect(attributes.bytes(.path) == Array("bc".utf8))
            #expect(attributes.u64(.fileOffset) == 7)
            #expect(attributes.repeated == .path)
            #expect(attributes.present == [.path, .fileOffset])
        }
    }

    @Test func version2DataRunsToTheEndOfItsCommand() throws {
        let bytes: [UInt8] = CraftedStream.bytes(15, 2) + CraftedStream.bytes(1, 2) + Array("a".utf8) + CraftedStream.bytes(19, 2) + [1, 2, 3, 4, 5]
        try bytes.withUnsafeBytes { raw throws in
            #expect(try SendStreamAttributes(raw, version: 2).range(.data)?.count == 5)
            // In version 1 the same bytes read DATA's length from its first two bytes (0x0201): it overruns.
            #expect(throws: SendStreamAttributes.Malformed.self) { try SendStreamAttributes(raw, version: 1) }
        }
    }

    @Test func aStreamThatIsNotASendStreamIsRefused() {
        var validator = SendStreamValidator(limits: .init(fileSizes: [:], maximumStreamLength: 1 << 20))
        #expect(throws: ReplicationError.self) { _ = try Array("not a btrfs stream at all".utf8).withUnsafeBytes { try validator.consume($0) } }
        var partial = SendStreamValidator(limits: .init(fileSizes: [:], maximumStreamLength: 1 << 20))
        #expect((try? Array("btrfs-str".utf8).withUnsafeBytes { try partial.consume($0) }) == 0)
    }
}
