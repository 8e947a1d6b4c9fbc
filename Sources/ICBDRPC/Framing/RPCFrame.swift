import ICBDProto
import NIOCore

/// One frame of the icbd/1 wire (docs/wire.md "2. Frames"), decoded.
///
/// This mirrors `Icbd_Rpc_V1_Frame` but keeps a `message` payload as a `ByteBuffer` slice of
/// what was read from the socket, so megabyte messages are never copied by the framing layer.
package struct RPCFrame: Sendable {
    package enum Kind: Sendable {
        case open(Icbd_Rpc_V1_Open)
        case message(ByteBuffer)
        case end
        case status(Icbd_Rpc_V1_Status)
        case cancel
        case credit(UInt32)
        case ping(nonce: UInt64, ack: Bool)
    }

    package var stream: UInt32
    package var kind: Kind
    /// Outbound only: bytes that end a `message` payload, written as their own buffer so a large
    /// chunk is never copied into the frame (see ``RPCPayloadCarrying``). Decoding never sets it.
    package var messageTail: ByteBuffer?

    package init(stream: UInt32, kind: Kind, messageTail: ByteBuffer? = nil) {
        self.stream = stream
        self.kind = kind
        self.messageTail = messageTail
    }

    /// Limits fixed by icbd/1.
    package enum Limits {
        /// The largest `length` a sender may announce (16 MiB).
        package static let maximumFrameLength = 16 * 1024 * 1024
        /// The per-stream flow-control window each side starts with (4 MiB).
        package static let initialWindow = 4 * 1024 * 1024
        /// Bytes a `message` frame adds around its payload, at most: field 1 (5-byte varint key
        /// and value), field 3 key and a 5-byte length.
        package static let messageOverhead = 1 + 5 + 1 + 5
        /// The largest message payload one frame can carry.
        package static let maximumMessageLength = maximumFrameLength - messageOverhead
    }
}

extension RPCFrame.Kind {
    /// The frame kind's name, for logs and protocol-error messages.
    package var name: String {
        switch self {
        case .open: "Open"
        case .message: "message"
        case .end: "End"
        case .status: "Status"
        case .cancel: "Cancel"
        case .credit: "Credit"
        case .ping: "Ping"
        }
    }
}
