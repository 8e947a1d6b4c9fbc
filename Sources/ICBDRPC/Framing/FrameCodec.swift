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
            let key = try readVarint(&buffer)
            let field = key >> 3
            let wireType = key & 7
            switch (field, wireType) {
            case (1, 0):
                stream = UInt32(truncatingIfNeeded: try readVarint(&buffer))
            case (2...8, 2):
                let body = try readLengthDelimited(&buffer)
                kind = try decodeKind(field: field, body: body)
            case (1...8, _):
                throw RPCProtocolError("Frame field \(field) has wire type \(wireType)")
            default:
                try skipField(wireType: wireType, in: &buffer)
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

    private static func readVarint(_ buffer: inout ByteBuffer) throws(RPCProtocolError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw RPCProtocolError("truncated varint") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        throw RPCProtocolError("varint longer than 10 bytes")
    }

    private static func readLengthDelimited(_ buffer: inout ByteBuffer) throws(RPCProtocolError) -> ByteBuffer {
        let length = try readVarint(&buffer)
        guard length <= UInt64(buffer.readableBytes), let slice = buffer.readSlice(length: Int(length)) else {
            throw RPCProtocolError("field length \(length) runs past the end of the frame")
        }
        return slice
    }

    private static func skipField(wireType: UInt64, in buffer: inout ByteBuffer) throws(RPCProtocolError) {
        switch wireType {
        case 0: _ = try readVarint(&buffer)
        case 1: guard buffer.readSlice(length: 8) != nil else { throw RPCProtocolError("truncated fixed64") }
        case 2: _ = try readLengthDelimited(&buffer)
        case 5: guard buffer.readSlice(length: 4) != nil else { throw RPCProtocolError("truncated fixed32") }
        default: throw RPCProtocolError("unsupported wire type \(wireType)")
        }
    }

    // MARK: Encoding

    /// Writes the frame's 4-byte length and every byte of the Frame except a `message` payload,
    /// which the caller writes right after (so it is never copied). Returns that payload, if any.
    package static func encodeHeader(_ frame: RPCFrame, into out: inout ByteBuffer) throws(RPCProtocolError) -> ByteBuffer? {
        let lengthIndex = out.writerIndex
        out.writeInteger(UInt32(0))
        let start = out.writerIndex
        if frame.stream != 0 {
            out.writeInteger(UInt8(0x08))
            writeVarint(UInt64(frame.stream), into: &out)
        }
        var payload: ByteBuffer?
        switch frame.kind {
        case .open(let open): try writeSubmessage(field: 2, open, into: &out)
        case .message(let bytes):
            writeKey(field: 3, into: &out)
            writeVarint(UInt64(bytes.readableBytes), into: &out)
            payload = bytes
        case .end: try writeSubmessage(field: 4, Icbd_Rpc_V1_End(), into: &out)
        case .status(let status): try writeSubmessage(field: 5, status, into: &out)
        case .cancel: try writeSubmessage(field: 6, Icbd_Rpc_V1_Cancel(), into: &out)
        case .credit(let bytes): try writeSubmessage(field: 7, Icbd_Rpc_V1_Credit.with { $0.bytes = bytes }, into: &out)
        case .ping(let nonce, let ack):
            try writeSubmessage(field: 8, Icbd_Rpc_V1_Ping.with { $0.nonce = nonce; $0.ack = ack }, into: &out)
        }
        let length = out.writerIndex - start + (payload?.readableBytes ?? 0)
        guard length <= RPCFrame.Limits.maximumFrameLength else {
            throw RPCProtocolError("frame of \(length) bytes exceeds the 16 MiB maximum")
        }
        out.setInteger(UInt32(length), at: lengthIndex)
        return payload
    }

    /// The whole frame in one buffer (length prefix included): for tests and small frames.
    package static func encode(_ frame: RPCFrame) throws(RPCProtocolError) -> ByteBuffer {
        var out = ByteBuffer()
        if var payload = try encodeHeader(frame, into: &out) {
            out.writeBuffer(&payload)
        }
        return out
    }

    private static func writeKey(field: UInt64, into out: inout ByteBuffer) {
        writeVarint(field << 3 | 2, into: &out)
    }

    private static func writeSubmessage(field: UInt64, _ message: some SwiftProtobuf.Message, into out: inout ByteBuffer)
        throws(RPCProtocolError)
    {
        let bytes: [UInt8]
        do { bytes = try message.serializedBytes() } catch { throw RPCProtocolError("cannot encode \(type(of: message)): \(error)") }
        writeKey(field: field, into: &out)
        writeVarint(UInt64(bytes.count), into: &out)
        out.writeBytes(bytes)
    }

    private static func writeVarint(_ value: UInt64, into out: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.writeInteger(UInt8(value))
    }
}

/// A peer broke the icbd/1 protocol; the connection is closed (WIRE.md "Framing", "Calls").
package struct RPCProtocolError: Error, Sendable, CustomStringConvertible {
    package let reason: String
    package init(_ reason: String) { self.reason = reason }
    package var description: String { "icbd/1 protocol error: \(reason)" }
}
