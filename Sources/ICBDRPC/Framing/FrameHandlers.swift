import NIOCore

/// Splits the byte stream into frames. The 4-byte length is checked the moment it arrives, so a
/// zero or over-maximum length closes the connection before any of its bytes are buffered.
package struct FrameDecoder: NIOSingleStepByteToMessageDecoder {
    package typealias InboundOut = RPCFrame

    let maximumFrameLength: Int

    package init(maximumFrameLength: Int = RPCFrame.Limits.maximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    package mutating func decode(buffer: inout ByteBuffer) throws -> RPCFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length >= 1, Int(length) <= maximumFrameLength else {
            throw RPCProtocolError("frame length \(length) is outside 1...\(maximumFrameLength)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        guard var body = buffer.readSlice(length: Int(length)) else { return nil }
        return try FrameCodec.decode(&body)
    }

    package mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RPCFrame? {
        try decode(buffer: &buffer)
    }
}

/// Writes frames; a `message` payload is written as its own buffer after the header, uncopied.
package final class FrameEncoder: ChannelOutboundHandler, RemovableChannelHandler {
    package typealias OutboundIn = RPCFrame
    package typealias OutboundOut = ByteBuffer

    package init() {}

    package func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let frame = unwrapOutboundIn(data)
        var header = context.channel.allocator.buffer(capacity: 32)
        do {
            if let payload = try FrameCodec.encodeHeader(frame, into: &header) {
                context.write(wrapOutboundOut(header), promise: nil)
                context.write(wrapOutboundOut(payload), promise: promise)
            } else {
                context.write(wrapOutboundOut(header), promise: promise)
            }
        } catch {
            promise?.fail(error)
        }
    }
}
