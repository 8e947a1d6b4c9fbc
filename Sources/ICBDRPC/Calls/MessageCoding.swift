import NIOCore
import SwiftProtobuf

/// Turns typed request and response messages into `message` payloads and back.
enum MessageCoding {
    static func encode(_ message: some SwiftProtobuf.Message) throws(RPCError) -> ByteBuffer {
        let bytes: SerializedBytes
        do { bytes = try message.serializedBytes() } catch {
            throw RPCError(code: .internal, message: "cannot encode \(type(of: message).protoMessageName)", cause: error)
        }
        guard bytes.count <= RPCFrame.Limits.maximumMessageLength else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a \(type(of: message).protoMessageName) of \(bytes.count) bytes exceeds the 16 MiB frame limit"
            )
        }
        return bytes.buffer
    }

    static func decode<Message: SwiftProtobuf.Message>(_ buffer: ByteBuffer, as type: Message.Type) throws(RPCError) -> Message {
        do {
            return try Message(serializedBytes: buffer.readableBytesSpan)
        } catch {
            throw RPCError(
                code: .invalidArgument,
                message: "the message does not decode as \(Message.protoMessageName): \(error)",
                cause: error
            )
        }
    }
}

/// Lets swift-protobuf serialize straight into a `ByteBuffer`, so a message is copied once on its
/// way to the socket.
struct SerializedBytes: SwiftProtobufContiguousBytes {
    var buffer: ByteBuffer

    init(repeating byte: UInt8, count: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: count)
        if byte == 0 {
            // swift-protobuf asks for zeros, then overwrites every byte: skip the fill.
            buffer.moveWriterIndex(forwardBy: count)
        } else {
            buffer.writeRepeatingByte(byte, count: count)
        }
    }

    init<S: Sequence>(_ sequence: S) where S.Element == UInt8 {
        buffer = ByteBuffer(bytes: sequence)
    }

    var count: Int { buffer.readableBytes }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeReadableBytes(body)
    }

    mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try buffer.withUnsafeMutableReadableBytes(body)
    }
}
