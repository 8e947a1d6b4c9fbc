import ICBDProto
import SwiftProtobuf
import NIOCore
import Testing

@testable import ICBDRPC

@Suite("Connection state machines")
struct ConnectionStateMachineTests {
    func frame(_ stream: UInt32, _ kind: RPCFrame.Kind) -> RPCFrame { RPCFrame(stream: stream, kind: kind) }
    let open = Icbd_Rpc_V1_Open.with { $0.method = "/x.Y/Z" }

    @Test func serverAcceptsACallAndIgnoresLateFrames() {
        var machine = ServerConnectionStateMachine()
        #expect(machine.received(frame(1, .open(open))) == .open(stream: 1, open))
        #expect(machine.received(frame(1, .message(ByteBuffer()))) == .deliver(stream: 1, ByteBuffer()))
        #expect(machine.received(frame(1, .end)) == .endOfRequests(stream: 1))
        #expect(machine.received(frame(1, .message(ByteBuffer()))) == .rejectAfterEnd(stream: 1))
        machine.closed(stream: 1)
        #expect(machine.received(frame(1, .cancel)) == .ignore)
        // Stream 2 was skipped when 3 opened: it counts as ended.
        #expect(machine.received(frame(3, .open(open))) == .open(stream: 3, open))
        #expect(machine.received(frame(2, .credit(5))) == .ignore)
    }

    @Test func serverProtocolErrors() {
        var machine = ServerConnectionStateMachine()
        #expect(machine.received(frame(0, .end)).isProtocolError)
        #expect(machine.received(frame(4, .ping(nonce: 1, ack: false))).isProtocolError)
        #expect(machine.received(frame(1, .status(.init()))).isProtocolError)
        #expect(machine.received(frame(9, .message(ByteBuffer()))).isProtocolError)
        #expect(machine.received(frame(5, .open(open))) == .open(stream: 5, open))
        #expect(machine.received(frame(5, .open(open))).isProtocolError)
        #expect(machine.received(frame(4, .open(open))).isProtocolError)
        #expect(machine.received(frame(0, .ping(nonce: 9, ack: false))) == .pong(nonce: 9))
        #expect(machine.received(frame(0, .ping(nonce: 9, ack: true))) == .ignore)
    }

    @Test func clientProtocolErrors() {
        var machine = ClientConnectionStateMachine()
        #expect(machine.openStream() == 1)
        #expect(machine.received(frame(1, .open(open))).isProtocolError)
        #expect(machine.received(frame(1, .end)).isProtocolError)
        #expect(machine.received(frame(1, .cancel)).isProtocolError)
        #expect(machine.received(frame(2, .message(ByteBuffer()))).isProtocolError)
        #expect(machine.received(frame(1, .status(.init()))) == .finish(stream: 1, .init()))
        #expect(machine.received(frame(1, .message(ByteBuffer()))) == .ignore)
    }
}

extension ServerConnectionStateMachine.Action {
    var isProtocolError: Bool { if case .protocolError = self { true } else { false } }
}

extension ClientConnectionStateMachine.Action {
    var isProtocolError: Bool { if case .protocolError = self { true } else { false } }
}
