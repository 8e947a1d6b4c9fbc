import ICBDProto
import NIOCore

/// The server's view of one connection's streams (docs/wire.md "3. Calls"): which frames are legal, and
/// what each received frame means. Pure state; the connection executes the returned action.
package struct ServerConnectionStateMachine {
    package enum Action: Equatable {
        case open(stream: UInt32, Icbd_Rpc_V1_Open)
        case deliver(stream: UInt32, ByteBuffer)
        case endOfRequests(stream: UInt32)
        /// A message or End after the client's End: answer INVALID_ARGUMENT.
        case rejectAfterEnd(stream: UInt32)
        case cancel(stream: UInt32)
        case credit(stream: UInt32, bytes: UInt32)
        case pong(nonce: UInt64)
        /// A frame that may have been in flight when its stream ended.
        case ignore
        case protocolError(String)
    }

    private var highestOpened: UInt32 = 0
    /// Open streams; the value says whether the client has sent End.
    private var requestsEnded: [UInt32: Bool] = [:]

    package init() {}

    package var openStreams: Int { requestsEnded.count }

    package mutating func received(_ frame: RPCFrame) -> Action {
        let id = frame.stream
        if case .ping(let nonce, let ack) = frame.kind {
            guard id == 0 else { return .protocolError("Ping on stream \(id)") }
            return ack ? .ignore : .pong(nonce: nonce)
        }
        guard id != 0 else { return .protocolError("\(frame.kind.name) on stream 0") }
        if case .open(let open) = frame.kind {
            guard id > highestOpened else {
                return .protocolError("Open of stream \(id), not above the last opened \(highestOpened)")
            }
            highestOpened = id
            requestsEnded[id] = false
            return .open(stream: id, open)
        }
        guard id <= highestOpened else { return .protocolError("\(frame.kind.name) for unopened stream \(id)") }
        switch frame.kind {
        case .status: return .protocolError("Status sent by a client")
        case .open, .ping: return .ignore  // handled above
        default: break
        }
        guard let ended = requestsEnded[id] else { return .ignore }
        switch frame.kind {
        case .message(let bytes): return ended ? .rejectAfterEnd(stream: id) : .deliver(stream: id, bytes)
        case .end:
            if ended { return .rejectAfterEnd(stream: id) }
            requestsEnded[id] = true
            return .endOfRequests(stream: id)
        case .cancel: return .cancel(stream: id)
        case .credit(let bytes): return .credit(stream: id, bytes: bytes)
        case .open, .ping, .status: return .ignore
        }
    }

    /// The server sent the stream's Status: later frames for it are ignored.
    package mutating func closed(stream id: UInt32) {
        requestsEnded[id] = nil
    }
}
