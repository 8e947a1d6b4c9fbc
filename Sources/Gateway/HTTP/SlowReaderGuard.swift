import ICBDCore
import NIOCore
import NIOHTTPTypes

/// How fast a client must take the response bytes waiting for it (``SlowReaderGuard``).
public struct MinimumSendRate: Sendable, Equatable {
    /// Bytes per second the client must take while bytes wait for it.
    public var bytesPerSecond: Int
    /// The span over which the rate is measured; a client that stops reading is cut within two.
    public var window: Duration

    public init(bytesPerSecond: Int, window: Duration) {
        self.bytesPerSecond = bytesPerSecond
        self.window = window
    }

    /// What a client must take in one window.
    var bytesPerWindow: Int {
        Int(Int64(bytesPerSecond) * window.wholeMilliseconds / 1000)
    }
}

/// Closes an HTTP connection whose client takes response bytes slower than a minimum rate, so
/// a reader that stalls (or trickles) cannot hold its admission slot, its read-ahead chunks and
/// its socket for ever: the response body's write then fails and the response ends.
///
/// Body parts are passed on in pieces of at most 64 KiB; a piece counts as taken when the socket
/// accepted all of it (its write promise). Every `window`, if body bytes waited for the client
/// during the whole window and it took fewer than `bytesPerSecond × window` of them, the
/// connection is closed: a client reading steadily at `bytesPerSecond` plus 64 KiB a window is
/// never cut. A window in which nothing waited for a moment (the client is idle between
/// requests, or upstream reads are slow) holds the client to nothing.
final class SlowReaderGuard: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Body parts are passed on in pieces of at most this many bytes.
    static let pieceBytes = 64 << 10

    private let rate: MinimumSendRate
    private let onClose: @Sendable (_ peer: SocketAddress?, _ taken: Int, _ waiting: Int) -> Void
    /// Body bytes written but not yet accepted by the socket.
    private var waiting = 0
    /// Body bytes the socket accepted in the current window.
    private var taken = 0
    /// Whether `waiting` was zero at some moment of the current window.
    private var drained = false
    private var check: Scheduled<Void>?

    init(rate: MinimumSendRate, onClose: @escaping @Sendable (_ peer: SocketAddress?, _ taken: Int, _ waiting: Int) -> Void) {
        self.rate = rate
        self.onClose = onClose
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .body(var rest) = unwrapOutboundIn(data), rest.readableBytes > 0 else {
            context.write(data, promise: promise)
            return
        }
        // In pieces (slices, uncopied) so that progress is seen to within a piece: a write's
        // promise completes only once the socket took all of it.
        while rest.readableBytes > 0, let piece = rest.readSlice(length: min(rest.readableBytes, Self.pieceBytes)) {
            let bytes = piece.readableBytes
            let written = context.eventLoop.makePromise(of: Void.self)
            waiting += bytes
            written.futureResult.assumeIsolated().whenComplete { [self] result in
                waiting -= bytes
                if case .success = result { taken += bytes }
                if waiting == 0 { drained = true }
            }
            if rest.readableBytes == 0, let promise { written.futureResult.cascade(to: promise) }
            context.write(wrapOutboundOut(.body(piece)), promise: written)
        }
        if check == nil { startWindow(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        check?.cancel()
        check = nil
    }

    private func startWindow(_ context: ChannelHandlerContext) {
        taken = 0
        drained = waiting == 0
        check = context.eventLoop.assumeIsolated().scheduleTask(in: TimeAmount(rate.window)) { [self] in
            endWindow(context)
        }
    }

    private func endWindow(_ context: ChannelHandlerContext) {
        check = nil
        guard waiting > 0 else { return }  // nothing waits: the next body write starts a window
        guard drained || taken >= rate.bytesPerWindow else {
            onClose(context.channel.remoteAddress, taken, waiting)
            context.close(promise: nil)
            return
        }
        startWindow(context)
    }
}
