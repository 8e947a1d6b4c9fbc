import NIOCore

/// A stream's verified segments cut at validated command boundaries: what ``take()`` hands out
/// may go to `btrfs receive`; the start of a command not yet whole is held back.
struct ValidatedStream: Sendable {
    private(set) var validator: SendStreamValidator
    /// Validated bytes not taken yet.
    private var ready: [ByteBuffer] = []
    /// The start of the command that is not whole yet.
    private var held: [ByteBuffer] = []

    init(limits: SendStreamValidator.Limits) {
        validator = SendStreamValidator(limits: limits)
    }

    /// The stream's first command, once validated.
    var head: SendStreamHead? { validator.head }

    /// Whether the stream ended, after its `end` command.
    var isComplete: Bool { validator.isComplete && held.isEmpty }

    /// Validates the next segment; throws at the first command refused.
    mutating func add(_ segment: ByteBuffer) throws(ReplicationError) {
        var failure: ReplicationError?
        let end = segment.withUnsafeReadableBytes { bytes in
            do { return try validator.consume(bytes) } catch {
                failure = error as? ReplicationError
                return 0
            }
        }
        if let failure { throw failure }
        guard end > 0 else { return held.append(segment) }
        ready += held
        held = []
        ready.append(segment.getSlice(at: segment.readerIndex, length: end)!)
        if end < segment.readableBytes {
            held.append(segment.getSlice(at: segment.readerIndex + end, length: segment.readableBytes - end)!)
        }
    }

    /// The validated bytes not taken yet, handed out once.
    mutating func take() -> [ByteBuffer] {
        defer { ready = [] }
        return ready
    }
}
