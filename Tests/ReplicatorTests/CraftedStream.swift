import Foundation
import ICBDCore
import ICBDProto
import ICBDRPC
import ICBDTestSupport
import Logging
import NIOCore
import ReplicatorClient
import SwiftProtobuf
@testable import Replicator

/// A real `btrfs send` stream taken apart into commands, so a test can rewrite its attributes
/// and put it back together with the command lengths and CRC32Cs recomputed: a stream
/// `btrfs receive` itself accepts.
struct CraftedStream {
    struct Command {
        var code: UInt16
        var attributes: [(type: UInt16, value: [UInt8])]

        init(_ code: UInt16, _ attributes: [(type: UInt16, value: [UInt8])]) {
            self.code = code
            self.attributes = attributes
        }

        /// The last value of `type`.
        func value(_ type: UInt16) -> [UInt8]? { attributes.last { $0.type == type }?.value }

        mutating func set(_ type: UInt16, _ value: [UInt8]) {
            attributes = attributes.map { $0.type == type ? (type, value) : $0 }
        }
    }

    var version: UInt32
    var commands: [Command]

    init(parsing bytes: [UInt8]) {
        version = UInt32(bytes[13]) | UInt32(bytes[14]) << 8 | UInt32(bytes[15]) << 16 | UInt32(bytes[16]) << 24
        commands = []
        var at = 17
        while at + 10 <= bytes.count {
            let length = Int(Self.le(bytes, at, 4))
            let code = UInt16(Self.le(bytes, at + 4, 2))
            var attributes: [(UInt16, [UInt8])] = []
            var position = at + 10
            while position < at + 10 + length {
                let type = UInt16(Self.le(bytes, position, 2))
                if version >= 2 && type == 19 {
                    attributes.append((type, Array(bytes[position + 2..<at + 10 + length])))
                    position = at + 10 + length
                } else {
                    let size = Int(Self.le(bytes, position + 2, 2))
                    attributes.append((type, Array(bytes[position + 4..<position + 4 + size])))
                    position += 4 + size
                }
            }
            commands.append(Command(code, attributes))
            at += 10 + length
        }
    }

    /// The stream's bytes, each command's length and CRC32C computed as the kernel does.
    func encoded() -> [UInt8] {
        var bytes = SendStreamHead.magic + Self.bytes(UInt64(version), 4)
        for command in commands { bytes += Self.encode(command, version: version) }
        return bytes
    }

    static func encode(_ command: Command, version: UInt32) -> [UInt8] {
        var body: [UInt8] = []
        for (type, value) in command.attributes {
            body += bytes(UInt64(type), 2)
            if !(version >= 2 && type == 19) { body += bytes(UInt64(value.count), 2) }
            body += value
        }
        var whole = bytes(UInt64(body.count), 4) + bytes(UInt64(command.code), 2) + [0, 0, 0, 0] + body
        let crc = crc32c(whole)
        whole.replaceSubrange(6..<10, with: bytes(UInt64(crc), 4))
        return whole
    }

    /// The index of the first command with `code`.
    func first(_ code: UInt16) -> Int? { commands.firstIndex { $0.code == code } }

    static func path(_ text: String) -> [UInt8] { Array(text.utf8) }
    static func bytes(_ value: UInt64, _ count: Int) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }
    static func u64(_ value: Int64) -> [UInt8] { bytes(UInt64(bitPattern: value), 8) }
    static func uuid(_ uuid: UUID) -> [UInt8] { withUnsafeBytes(of: uuid.uuid) { Array($0) } }

    private static func le(_ bytes: [UInt8], _ at: Int, _ count: Int) -> UInt64 {
        (0..<count).reduce(0) { $0 | UInt64(bytes[at + $1]) << (8 * UInt64($1)) }
    }

    /// CRC32C (Castagnoli) as btrfs send computes it: seed 0, no final inversion.
    static func crc32c(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 { crc = crc & 1 != 0 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1 }
        }
        return crc
    }
}

/// An RPC server holding a real replicator certificate that answers `SendVersion` with the
/// bytes it is given, framed as a real sender frames them (header, hashed segments, trailer);
/// `stallAfter`: it sends that many segments and then nothing more.
enum FakeSender {
    static func with(
        stream: [UInt8], identity: UUID, tls: TLSIdentity, logger: Logger, stallAfter: Int? = nil, _ body: (HostPort) async throws -> Void
    ) async throws {
        var router = RPCRouter()
        router.serverStreaming(ReplicationMethods.sendVersion) { request, writer, _ in
            var digest = StreamDigest(list: request.digestList)
            try await writer.write(
                .with {
                    $0.header.btrfsUuid = identity.uuidString.lowercased()
                    $0.header.digestList = request.digestList
                })
            let size = SegmentCodec.minimumSegmentSize
            for (index, start) in stride(from: 0, to: stream.count, by: size).enumerated() {
                if index == stallAfter { try await Task.sleep(for: .seconds(3600)) }
                let raw = ByteBuffer(bytes: stream[start..<min(stream.count, start + size)])
                let encoded = SegmentCodec.encode(raw, compression: .none)
                raw.withUnsafeReadableBytes { digest.add($0, digest: encoded.sha256) }
                try await writer.write(
                    .with {
                        $0.offset = Int64(start)
                        $0.rawLength = UInt32(raw.readableBytes)
                        $0.sha256 = Data(encoded.sha256)
                    }, payload: encoded.data)
            }
            try await writer.write(.with { $0.trailer.length = Int64(stream.count); $0.trailer.sha256 = Data(digest.finalize()) })
        }
        let server = try RPCServer(
            configuration: RPCServerConfiguration(listen: HostPort(host: "127.0.0.1", port: 0), tls: tls), router: router, logger: logger)
        try await withRunningServices([server], logger: logger) {
            try await body(HostPort(host: "127.0.0.1", port: try await server.localAddress().port ?? 0))
        }
    }
}
