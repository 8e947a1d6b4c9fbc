import NIOCore

/// The few pieces of the protobuf wire format the framing layer reads and writes by hand.
package enum ProtobufWire {
    package static func readVarint(_ buffer: inout ByteBuffer) throws(RPCProtocolError) -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard let byte = buffer.readInteger(as: UInt8.self) else { throw RPCProtocolError("truncated varint") }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        throw RPCProtocolError("varint longer than 10 bytes")
    }

    package static func readLengthDelimited(_ buffer: inout ByteBuffer) throws(RPCProtocolError) -> ByteBuffer {
        let length = try readVarint(&buffer)
        guard length <= UInt64(buffer.readableBytes), let slice = buffer.readSlice(length: Int(length)) else {
            throw RPCProtocolError("field length \(length) runs past the end of the frame")
        }
        return slice
    }

    package static func skipField(wireType: UInt64, in buffer: inout ByteBuffer) throws(RPCProtocolError) {
        switch wireType {
        case 0: _ = try readVarint(&buffer)
        case 1: guard buffer.readSlice(length: 8) != nil else { throw RPCProtocolError("truncated fixed64") }
        case 2: _ = try readLengthDelimited(&buffer)
        case 5: guard buffer.readSlice(length: 4) != nil else { throw RPCProtocolError("truncated fixed32") }
        default: throw RPCProtocolError("unsupported wire type \(wireType)")
        }
    }

    /// The key of a length-delimited field.
    package static func writeLengthDelimitedKey(field: UInt64, into out: inout ByteBuffer) {
        writeVarint(field << 3 | 2, into: &out)
    }

    package static func writeVarint(_ value: UInt64, into out: inout ByteBuffer) {
        var value = value
        while value >= 0x80 {
            out.writeInteger(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.writeInteger(UInt8(value))
    }
}
