import ICBDProto
import NIOCore

/// The client's view of one connection's streams: allocates stream ids and judges each frame the
/// server sends (docs/wire.md "3. Calls"). Pure state; the connection executes the returned action.
package struct ClientConnectionStateMachine {
    package enum Action: Equatable {
        case deliver(stream: UInt32, ByteBuffer)
        case finish(stream: UInt32, Icbd_Rpc_V1_Status)
        case credit(stream: UInt32, bytes: UInt32)
        case pong(nonce: UInt64)
        case pingAnswered(nonce: UInt64)
        case ignore
        case protocolError(String)
    }

    private var lastOpened: UInt32 = 0
    private var open: Set<UInt32> = []

    package init() {}

    /// The next stream id, or nil when the connection has used them all (open a new one).
    package mutating func openStream() -> UInt32? {
        guard lastOpened < UInt32.max else { return nil }
        lastOpened += 1
        open.insert(lastOpened)
        return lastOpened
    }

    /// The client gave up on a stream (Cancel sent): its later frames are ignored.
    package mutating func abandon(stream id: UInt32) {
        open.remove(id)
    }

    package mutating func received(_ frame: RPCFrame) -> Action {
        let id = frame.stream
        if case .ping(let nonce, let ack) = frame.kind {
            guard id == 0 else { return .protocolError("Ping on stream \(id)") }
            return ack ? .pingAnswered(nonce: nonce) : .pong(nonce: nonce)
        }
        guard id != 0 else { return .protocolError("\(frame.kind.name) on stream 0") }
        switch frame.kind {
        case .open, .end, .cancel: return .protocolError("\(frame.kind.name) sent by a server")
        default: break
        }
        guard id <= lastOpened else { return .protocolError("\(frame.kind.name) for unopened stream \(id)") }
        guard open.contains(id) else { return .ignore }
        switch frame.kind {
        case .message(let bytes): return .deliver(stream: id, bytes)
        case .status(let status):
            open.remove(id)
            return .finish(stream: id, status)
        case .credit(let bytes): return .credit(stream: id, bytes: bytes)
        case .open, .end, .cancel, .ping: return .ignore
        }
    }
}
