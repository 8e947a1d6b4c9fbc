import ICBDRPC
import CatalogClient

/// Why the store refused or failed a request. Each code maps to one wire status
/// (``rpcError``), in this one place.
public struct CatalogStoreError: Error, Sendable, CustomStringConvertible, RPCErrorConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The request is malformed whatever the catalog holds.
        public static let invalidArgument = Code(rawValue: "invalid-argument")
        /// An object the request names does not exist.
        public static let notFound = Code(rawValue: "not-found")
        /// The object to create exists.
        public static let alreadyExists = Code(rawValue: "already-exists")
        /// The catalog is not in a state that allows the request (a tag on a retired version).
        public static let failedPrecondition = Code(rawValue: "failed-precondition")
        /// Someone else changed the object since the caller read it (optimistic concurrency).
        public static let conflict = Code(rawValue: "conflict")
        /// The changes asked for are no longer in the retained log: list again.
        public static let compacted = Code(rawValue: "compacted")
        /// The caller may not do this to this object (a replicator publishing another site's image).
        public static let permissionDenied = Code(rawValue: "permission-denied")
        /// The store cannot answer now (busy, disk full); retrying may help.
        public static let unavailable = Code(rawValue: "unavailable")
        /// The database is damaged, from a newer schema or not a catalog database.
        public static let storage = Code(rawValue: "storage")

        public var description: String { rawValue }
    }

    public var code: Code
    /// For people: names the object and the problem, and where possible what to do.
    public var message: String
    public var details: [String: String]
    public var cause: (any Error)?

    public init(_ code: Code, _ message: String, details: [String: String] = [:], cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.details = details
        self.cause = cause
    }

    public var description: String { "\(code): \(message)" }

    public var rpcError: RPCError {
        let wire: RPCError.Code =
            switch code {
            case .invalidArgument: .invalidArgument
            case .notFound: .notFound
            case .alreadyExists: .alreadyExists
            case .failedPrecondition, .compacted: .failedPrecondition
            case .conflict: .aborted
            case .permissionDenied: .permissionDenied
            case .unavailable: .unavailable
            default: .internal
            }
        var details = self.details
        if code == .compacted { details["reason"] = "compacted" }
        return RPCError(code: wire, message: message, details: details, cause: cause)
    }

    static func notFound(_ message: String) -> CatalogStoreError { CatalogStoreError(.notFound, message) }
    static func precondition(_ message: String) -> CatalogStoreError { CatalogStoreError(.failedPrecondition, message) }
    static func permissionDenied(_ message: String) -> CatalogStoreError { CatalogStoreError(.permissionDenied, message) }
    static func invalid(_ message: String) -> CatalogStoreError { CatalogStoreError(.invalidArgument, message) }
}
