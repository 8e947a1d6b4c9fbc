import Foundation
import ICBDProto
import NIOCore
import NIOEmbedded
import SwiftProtobuf
import Testing

@testable import ICBDRPC

@Suite("Frame codec and decoder")
struct FrameCodecTests {
    static let frames: [Icbd_Rpc_V1_Frame] = [
        .with { $0.stream = 1; $0.open = .with { $0.method = "/a.B/C"; $0.timeoutMs = 250; $0.metadata = ["k": "v"] } },
        .with { $0.stream = 7; $0.message = Data((0..<300).map { UInt8($0 % 256) }) },
        .with { $0.stream = 7; $0.message = Data() },
        .with { $0.stream = 2; $0.end = .init() },
        .with { $0.stream = 3; $0.status = .with { $0.code = 5; $0.message = "no such image"; $0.details = ["image": "x"] } },
        .with { $0.stream = 3; $0.cancel = .init() },
        .with { $0.stream = 4_000_000_000; $0.credit = .with { $0.bytes = 1 << 20 } },
        .with { $0.ping = .with { $0.nonce = .max; $0.ack = true } },
    ]

    @Test(arguments: frames)
    func encodesExactlyWhatSwiftProtobufEncodes(frame: Icbd_Rpc_V1_Frame) throws {
        let reference: [UInt8] = try frame.serializedBytes()
        var decodedBuffer = ByteBuffer(bytes: reference)
        let decoded = try FrameCodec.decode(&decodedBuffer)
        var encoded = try FrameCodec.encode(decoded)
        #expect(encoded.readInteger(as: UInt32.self) == UInt32(reference.count))
        #expect(Array(encoded.readableBytesView) == reference)
        #expect(try Icbd_Rpc_V1_Frame(serializedBytes: Array(encoded.readableBytesView)) == frame)
    }

    @Test func skipsUnknownFields() throws {
        // Field 15 (varint) before a Credit: a newer peer's addition must not break decoding.
        var frame = Icbd_Rpc_V1_Frame.with { $0.stream = 9; $0.credit = .with { $0.bytes = 10 } }
        var bytes: [UInt8] = [0x78, 0x2A]
        bytes += try frame.serializedBytes() as [UInt8]
        var buffer = ByteBuffer(bytes: bytes)
        let decoded = try FrameCodec.decode(&buffer)
        guard case .credit(10) = decoded.kind else { Issue.record("got \(decoded.kind)"); return }
        frame.stream = decoded.stream
        #expect(frame.stream == 9)
    }

    @Test(arguments: [
        ("a frame with no kind", [0x08, 0x01] as [UInt8]),
        ("a truncated field", [0x1A, 0x05, 0x01]),
        ("a varint of 11 bytes", [0x08] + Array(repeating: 0xFF, count: 10) + [0x01]),
        ("a known field with the wrong wire type", [0x18, 0x01]),
        ("a group wire type", [0x0B]),
    ])
    func rejectsMalformedFrames(_ description: String, bytes: [UInt8]) {
        var buffer = ByteBuffer(bytes: bytes)
        #expect(throws: RPCProtocolError.self, "\(description)") { try FrameCodec.decode(&buffer) }
    }

    @Test(arguments: [UInt32(0), UInt32(16 * 1024 * 1024 + 1), UInt32.max])
    func decoderRejectsBadLengthsBeforeBuffering(length: UInt32) throws {
        let channel = EmbeddedChannel(handler: FrameDecoder())
        var header = ByteBuffer()
        header.writeInteger(length)
        #expect(throws: RPCProtocolError.self) { try channel.writeInbound(header) }
        #expect(!channel.isActive, "the connection must close")
    }

    @Test(arguments: [1, 2, 3, 5, 7, 1000])
    func decoderReassemblesFramesSplitAnywhere(pieceSize: Int) throws {
        let channel = EmbeddedChannel(handler: FrameDecoder())
        var bytes = try FrameCodec.encode(RPCFrame(stream: 5, kind: .credit(42)))
        bytes.writeImmutableBuffer(try FrameCodec.encode(RPCFrame(stream: 6, kind: .message(ByteBuffer(repeating: 7, count: 300)))))
        while bytes.readableBytes > 0 {
            try channel.writeInbound(bytes.readSlice(length: min(pieceSize, bytes.readableBytes))!)
        }
        let first = try #require(try channel.readInbound(as: RPCFrame.self))
        let second = try #require(try channel.readInbound(as: RPCFrame.self))
        #expect(first.stream == 5)
        guard case .message(let payload) = second.kind else { Issue.record("got \(second.kind)"); return }
        #expect(payload == ByteBuffer(repeating: 7, count: 300))
        #expect(try channel.readInbound(as: RPCFrame.self) == nil)
        _ = try channel.finish()
    }
}
