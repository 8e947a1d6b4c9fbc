import NIOCore
import SwiftProtobuf

/// A message with one large `bytes` field (a chunk of a disk image) that travels uncopied.
///
/// The sender hands the payload as a `ByteBuffer`; it is written to the socket as its own buffer
/// after the rest of the message. The receiver can read it as a slice of the frame it received.
/// On the wire this is the ordinary protobuf encoding with the field last, so every peer (the C
/// client too) decodes it as usual, and a receiver may still read the plain message.
public protocol RPCPayloadCarrying: SwiftProtobuf.Message {
    /// The number of the `bytes` field that carries the payload.
    static var payloadField: Int { get }
}

/// A message read together with its payload, which was not copied.
public struct RPCPayloadMessage<Message: RPCPayloadCarrying>: Sendable {
    /// The message, its payload field left empty.
    public var message: Message
    public var payload: ByteBuffer
}

extension MessageCoding {
    /// Encodes `message` (its payload field left empty) and the key and length of the payload
    /// field; the payload itself follows as the frame's tail.
    static func encode<Message: RPCPayloadCarrying>(_ message: Message, payload: ByteBuffer) throws(RPCError)
        -> (head: ByteBuffer, tail: ByteBuffer)
    {
        var head = try encode(message)
        ProtobufWire.writeLengthDelimitedKey(field: UInt64(Message.payloadField), into: &head)
        ProtobufWire.writeVarint(UInt64(payload.readableBytes), into: &head)
        guard head.readableBytes + payload.readableBytes <= RPCFrame.Limits.maximumMessageLength else {
            throw RPCError(
                code: .resourceExhausted,
                message: "a \(Message.protoMessageName) with \(payload.readableBytes) payload bytes exceeds the 16 MiB frame limit")
        }
        return (head, payload)
    }

    /// Decodes a message whose payload field becomes a slice of `buffer` rather than a copy.
    static func decodeSplitting<Message: RPCPayloadCarrying>(_ buffer: ByteBuffer, as type: Message.Type) throws(RPCError)
        -> RPCPayloadMessage<Message>
    {
        var reader = buffer
        var rest = ByteBuffer()
        var payload = ByteBuffer()
        do {
            while reader.readableBytes > 0 {
                let fieldStart = reader.readerIndex
                let key = try ProtobufWire.readVarint(&reader)
                if key >> 3 == UInt64(Message.payloadField) && key & 7 == 2 {
                    payload = try ProtobufWire.readLengthDelimited(&reader)  // the last one wins, as in protobuf
                } else {
                    try ProtobufWire.skipField(wireType: key & 7, in: &reader)
                    if let field = buffer.getSlice(at: fieldStart, length: reader.readerIndex - fieldStart) {
                        rest.writeImmutableBuffer(field)
                    }
                }
            }
        } catch {
            throw RPCError(code: .invalidArgument, message: "the message does not decode as \(Message.protoMessageName): \(error.reason)")
        }
        return RPCPayloadMessage(message: try decode(rest, as: Message.self), payload: payload)
    }
}

extension RPCResponseWriter where Response: RPCPayloadCarrying {
    /// Sends `response` with `payload` as its payload field, without copying the payload.
    public func write(_ response: Response, payload: ByteBuffer) async throws {
        let (head, tail) = try MessageCoding.encode(response, payload: payload)
        try await stream.send(head, tail: tail)
    }
}

extension RPCRequestWriter where Request: RPCPayloadCarrying {
    /// Sends `request` with `payload` as its payload field, without copying the payload.
    public func write(_ request: Request, payload: ByteBuffer) async throws {
        let (head, tail) = try MessageCoding.encode(request, payload: payload)
        try await stream.send(head, tail: tail)
    }
}

extension RPCMessageStream where Message: RPCPayloadCarrying {
    /// The same messages, each with its payload as a slice of the received frame.
    public var withPayloads: RPCPayloadStream<Message> {
        RPCPayloadStream(messages: messages, decodeFailure: decodeFailure)
    }
}

/// Messages of a stream read with their payloads uncopied (``RPCMessageStream/withPayloads``).
public struct RPCPayloadStream<Message: RPCPayloadCarrying>: AsyncSequence, Sendable {
    public typealias Element = RPCPayloadMessage<Message>
    let messages: InboundMessages
    let decodeFailure: RPCError.Code

    public struct AsyncIterator: AsyncIteratorProtocol {
        let messages: InboundMessages
        let decodeFailure: RPCError.Code

        public mutating func next() async throws -> RPCPayloadMessage<Message>? {
            guard let bytes = try await messages.next() else { return nil }
            do {
                return try MessageCoding.decodeSplitting(bytes, as: Message.self)
            } catch {
                throw RPCError(code: decodeFailure, message: error.message)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(messages: messages, decodeFailure: decodeFailure)
    }
}
