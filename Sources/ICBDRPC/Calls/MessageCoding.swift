import NIOCore
import SwiftProtobuf

/// Turns typed request and response messages into `message` payloads and back.
enum MessageCoding {
    static func encode(_ message: some SwiftProtobuf.Message) throws(RPCError) -> ByteBuffer {
        let bytes: [UInt8]
        do { bytes = try message.serializedBytes() } catch {
            throw RPCError(code: .internal, message: "cannot encode \(type(of: message).protoMessageName): \(error)", cause: error)
        }
        guard bytes.count <= RPCFrame.Limits.maximumMessageLength else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a \(type(of: message).protoMessageName) of \(bytes.count) bytes exceeds the 16 MiB frame limit"
            )
        }
        return ByteBuffer(bytes: bytes)
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
