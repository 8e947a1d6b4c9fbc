import ICBDProto
import NIOCore
import SwiftProtobuf

/// Encodes and decodes the protobuf `icbd.rpc.v1.Frame` directly to and from `ByteBuffer`.
///
/// The outer `Frame` is parsed by hand (it has eight fields) so that `message` payloads stay
/// zero-copy slices; the small sub-messages (`Open`, `Status`, …) go through swift-protobuf.
/// Tests check both directions against the generated `Icbd_Rpc_V1_Frame`.
package enum FrameCodec {
    // MARK: Decoding

    /// Decodes one Frame from exactly the bytes in `buffer`.
    package static func decode(_ buffer: inout ByteBuffer) throws(RPCProtocolError) -> RPCFrame {
        var stream: UInt32 = 0
        var kind: RPCFrame.Kind?
        while buffer.readableBytes > 0 {
            let key = try ProtobufWire.readVarint(&buffer)
            let field = key >> 3
            let wireType = key & 7
            switch (field, wireType) {
            case (1, 0):
                stream = UInt32(truncatingIfNeeded: try ProtobufWire.readVarint(&buffer))
            case (2...8, 2):
                let body = try ProtobufWire.readLengthDelimited(&buffer)
                kind = try decodeKind(field: field, body: body)
            case (1...8, _):
                throw RPCProtocolError("Frame field \(field) has wire type \(wireType)")
            default:
                try ProtobufWire.skipField(wireType: wireType, in: &buffer)
            }
        }
        guard let kind else { throw RPCProtocolError("frame on stream \(stream) has no kind") }
        return RPCFrame(stream: stream, kind: kind)
    }

    private static func decodeKind(field: UInt64, body: ByteBuffer) throws(RPCProtocolError) -> RPCFrame.Kind {
        do {
            switch field {
            case 2: return .open(try Icbd_Rpc_V1_Open(serializedBytes: body.readableBytesSpan))
            case 3: return .message(body)
            case 4: _ = try Icbd_Rpc_V1_End(serializedBytes: body.readableBytesSpan); return .end
            case 5: return .status(try Icbd_Rpc_V1_Status(serializedBytes: body.readableBytesSpan))
            case 6: _ = try Icbd_Rpc_V1_Cancel(serializedBytes: body.readableBytesSpan); return .cancel
            case 7: return .credit(try Icbd_Rpc_V1_Credit(serializedBytes: body.readableBytesSpan).bytes)
            default:
                let ping = try Icbd_Rpc_V1_Ping(serializedBytes: body.readableBytesSpan)
                return .ping(nonce: ping.nonce, ack: ping.ack)
            }
        } catch {
            throw RPCProtocolError("Frame field \(field) does not decode: \(error)")
        }
    }

    // MARK: Encoding

    /// Writes the frame's 4-byte length and every byte of the Frame except a `message` payload
    /// (and its tail), which the caller writes right after, in order, so they are never copied.
    /// Returns those buffers.
    package static func encodeHeader(_ frame: RPCFrame, into out: inout ByteBuffer) throws(RPCProtocolError) -> [ByteBuffer] {
        let lengthIndex = out.writerIndex
        out.writeInteger(UInt32(0))
        let start = out.writerIndex
        if frame.stream != 0 {
            out.writeInteger(UInt8(0x08))
            ProtobufWire.writeVarint(UInt64(frame.stream), into: &out)
        }
        var payload: [ByteBuffer] = []
        switch frame.kind {
        case .open(let open): try writeSubmessage(field: 2, open, into: &out)
        case .message(let bytes):
            payload = [bytes] + (frame.messageTail.map { [$0] } ?? [])
            ProtobufWire.writeLengthDelimitedKey(field: 3, into: &out)
            ProtobufWire.writeVarint(UInt64(payload.reduce(0) { $0 + $1.readableBytes }), into: &out)
        case .end: try writeSubmessage(field: 4, Icbd_Rpc_V1_End(), into: &out)
        case .status(let status): try writeSubmessage(field: 5, status, into: &out)
        case .cancel: try writeSubmessage(field: 6, Icbd_Rpc_V1_Cancel(), into: &out)
        case .credit(let bytes): try writeSubmessage(field: 7, Icbd_Rpc_V1_Credit.with { $0.bytes = bytes }, into: &out)
        case .ping(let nonce, let ack):
            try writeSubmessage(field: 8, Icbd_Rpc_V1_Ping.with { $0.nonce = nonce; $0.ack = ack }, into: &out)
        }
        let length = out.writerIndex - start + payload.reduce(0) { $0 + $1.readableBytes }
        guard length <= RPCFrame.Limits.maximumFrameLength else {
            throw RPCProtocolError("frame of \(length) bytes exceeds the 16 MiB maximum")
        }
        out.setInteger(UInt32(length), at: lengthIndex)
        return payload
    }

    /// The whole frame in one buffer (length prefix included): for tests and small frames.
    package static func encode(_ frame: RPCFrame) throws(RPCProtocolError) -> ByteBuffer {
        var out = ByteBuffer()
        for var part in try encodeHeader(frame, into: &out) {
            out.writeBuffer(&part)
        }
        return out
    }

    private static func writeSubmessage(field: UInt64, _ message: some SwiftProtobuf.Message, into out: inout ByteBuffer)
        throws(RPCProtocolError)
    {
        let bytes: [UInt8]
        do { bytes = try message.serializedBytes() } catch { throw RPCProtocolError("cannot encode \(type(of: message)): \(error)") }
        ProtobufWire.writeLengthDelimitedKey(field: field, into: &out)
        ProtobufWire.writeVarint(UInt64(bytes.count), into: &out)
        out.writeBytes(bytes)
    }

}

/// A peer broke the icbd/1 protocol; the connection is closed (docs/wire.md "2. Frames", "3. Calls").
package struct RPCProtocolError: Error, Sendable, CustomStringConvertible {
    package let reason: String
    package init(_ reason: String) { self.reason = reason }
    package var description: String { "icbd/1 protocol error: \(reason)" }
}
