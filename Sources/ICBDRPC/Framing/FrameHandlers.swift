import NIOCore

/// Splits the byte stream into frames.
///
/// The 4-byte length is checked the moment it arrives, so a zero or over-maximum length closes
/// the connection before any of its bytes are buffered. A frame that arrives whole within one
/// read is passed on as a slice of it, uncopied; a frame spread over reads is gathered into one
/// buffer of exactly its length (one copy, no regrowth).
package final class FrameDecoder: ChannelInboundHandler, RemovableChannelHandler {
    package typealias InboundIn = ByteBuffer
    package typealias InboundOut = RPCFrame

    private enum State {
        /// Reading a length prefix; holds the bytes of it seen so far.
        case header(ByteBuffer)
        /// Gathering a frame of `length` bytes.
        case body(ByteBuffer, length: Int)
        case failed
    }

    private let maximumFrameLength: Int
    private var state = State.header(ByteBuffer())

    package init(maximumFrameLength: Int = RPCFrame.Limits.maximumFrameLength) {
        self.maximumFrameLength = maximumFrameLength
    }

    package func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var input = unwrapInboundIn(data)
        do {
            while input.readableBytes > 0 {
                if let frame = try consume(&input, allocator: context.channel.allocator) {
                    context.fireChannelRead(wrapInboundOut(frame))
                }
            }
        } catch {
            state = .failed
            context.fireErrorCaught(error)
            context.close(promise: nil)
        }
    }

    /// Takes bytes from `input`; returns a frame once one is complete.
    private func consume(_ input: inout ByteBuffer, allocator: ByteBufferAllocator) throws -> RPCFrame? {
        switch state {
        case .failed:
            input.moveReaderIndex(to: input.writerIndex)
            return nil
        case .header(var header):
            guard var slice = input.readSlice(length: min(4 - header.readableBytes, input.readableBytes)) else { return nil }
            header.writeBuffer(&slice)
            guard let length = header.getInteger(at: header.readerIndex, as: UInt32.self) else {
                state = .header(header)
                return nil
            }
            guard length >= 1, Int(length) <= maximumFrameLength else {
                throw RPCProtocolError("frame length \(length) is outside 1...\(maximumFrameLength)")
            }
            state = .header(ByteBuffer())
            if var whole = input.readSlice(length: Int(length)) {
                return try FrameCodec.decode(&whole)
            }
            var body = allocator.buffer(capacity: Int(length))
            body.writeBuffer(&input)
            state = .body(body, length: Int(length))
            return nil
        case .body(var body, let length):
            guard var part = input.readSlice(length: min(length - body.readableBytes, input.readableBytes)) else { return nil }
            state = .failed  // not holding a second reference to `body` while writing to it
            body.writeBuffer(&part)
            guard body.readableBytes == length else {
                state = .body(body, length: length)
                return nil
            }
            state = .header(ByteBuffer())
            return try FrameCodec.decode(&body)
        }
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
            let payload = try FrameCodec.encodeHeader(frame, into: &header)
            context.write(wrapOutboundOut(header), promise: payload.isEmpty ? promise : nil)
            for (index, part) in payload.enumerated() {
                context.write(wrapOutboundOut(part), promise: index == payload.count - 1 ? promise : nil)
            }
        } catch {
            promise?.fail(error)
        }
    }
}
