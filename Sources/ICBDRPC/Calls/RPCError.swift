/// The outcome of a call that did not succeed, as carried by the wire's `Status` frame.
///
/// Every error that leaves a service becomes exactly one `RPCError`, and every `RPCError` a
/// client sees came from a `Status` frame or from the connection.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    /// A wire status code (the gRPC numbering, docs/wire.md "2. Frames").
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }

        public static let ok = Code(rawValue: 0)
        public static let cancelled = Code(rawValue: 1)
        public static let invalidArgument = Code(rawValue: 3)
        public static let deadlineExceeded = Code(rawValue: 4)
        public static let notFound = Code(rawValue: 5)
        public static let alreadyExists = Code(rawValue: 6)
        public static let permissionDenied = Code(rawValue: 7)
        public static let resourceExhausted = Code(rawValue: 8)
        public static let failedPrecondition = Code(rawValue: 9)
        public static let aborted = Code(rawValue: 10)
        public static let unimplemented = Code(rawValue: 12)
        public static let `internal` = Code(rawValue: 13)
        public static let unavailable = Code(rawValue: 14)
        public static let dataLoss = Code(rawValue: 15)
        public static let unauthenticated = Code(rawValue: 16)

        public var description: String {
            switch self {
            case .ok: "OK"
            case .cancelled: "CANCELLED"
            case .invalidArgument: "INVALID_ARGUMENT"
            case .deadlineExceeded: "DEADLINE_EXCEEDED"
            case .notFound: "NOT_FOUND"
            case .alreadyExists: "ALREADY_EXISTS"
            case .permissionDenied: "PERMISSION_DENIED"
            case .resourceExhausted: "RESOURCE_EXHAUSTED"
            case .failedPrecondition: "FAILED_PRECONDITION"
            case .aborted: "ABORTED"
            case .unimplemented: "UNIMPLEMENTED"
            case .internal: "INTERNAL"
            case .unavailable: "UNAVAILABLE"
            case .dataLoss: "DATA_LOSS"
            case .unauthenticated: "UNAUTHENTICATED"
            default: "CODE_\(rawValue)"
            }
        }
    }

    public var code: Code
    /// For people: what went wrong and, where possible, what to do.
    public var message: String
    public var details: [String: String]
    /// The error underneath, kept for logs; never sent over the wire.
    public var cause: (any Error)?

    public init(code: Code, message: String, details: [String: String] = [:], cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.cause = cause
    }

    /// Maps any error to an `RPCError`, for the side that reports it locally (a client's
    /// caller): an unknown error keeps its description in the message. A server sends callers
    /// no such text (``ServerConnection/status(for:logger:)``).
    public init(_ error: any Error) {
        switch error {
        case let error as RPCError:
            self = error
        case let error as any RPCErrorConvertible:
            self = error.rpcError
        case is CancellationError:
            self.init(code: .cancelled, message: "the call was cancelled", cause: error)
        default:
            self.init(code: .internal, message: "internal error: \(error)", cause: error)
        }
    }

    public var description: String { "\(code): \(message)" }
}

/// A domain error that knows which wire status it maps to.
public protocol RPCErrorConvertible: Error {
    var rpcError: RPCError { get }
}
