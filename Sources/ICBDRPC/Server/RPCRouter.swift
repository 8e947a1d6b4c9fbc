import ICBDCore
import NIOCore
import SwiftProtobuf

/// A set of RPC methods a server answers. Each method is registered once with a typed handler;
/// one generic dispatch (``RPCHandler``) runs them all.
public struct RPCRouter: Sendable {
    private(set) var handlers: [String: RPCHandler] = [:]

    public init() {}

    /// Adds every method of `service`.
    public mutating func register(_ service: some RPCService) {
        service.register(into: &self)
    }

    public mutating func unary<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ body: @escaping @Sendable (Request, RPCCallContext) async throws -> Response
    ) {
        add(method) { stream in
            let request = try MessageCoding.decode(try await stream.singleRequest(), as: Request.self)
            return try MessageCoding.encode(try await body(request, stream.context))
        }
    }

    public mutating func serverStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ body: @escaping @Sendable (Request, RPCResponseWriter<Response>, RPCCallContext) async throws -> Void
    ) {
        add(method) { stream in
            let request = try MessageCoding.decode(try await stream.singleRequest(), as: Request.self)
            try await body(request, RPCResponseWriter(stream: stream), stream.context)
            return nil
        }
    }

    public mutating func clientStreaming<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ body: @escaping @Sendable (RPCRequestStream<Request>, RPCCallContext) async throws -> Response
    ) {
        add(method) { stream in
            let response = try await body(RPCRequestStream(messages: stream.requests, decodeFailure: .invalidArgument), stream.context)
            return try MessageCoding.encode(response)
        }
    }

    public mutating func bidirectional<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        _ body: @escaping @Sendable (RPCRequestStream<Request>, RPCResponseWriter<Response>, RPCCallContext) async throws
            -> Void
    ) {
        add(method) { stream in
            try await body(RPCRequestStream(messages: stream.requests, decodeFailure: .invalidArgument), RPCResponseWriter(stream: stream), stream.context)
            return nil
        }
    }

    private mutating func add<Request, Response>(
        _ method: RPCMethod<Request, Response>,
        run: @escaping @Sendable (ServerStream) async throws -> ByteBuffer?
    ) {
        precondition(handlers[method.path] == nil, "\(method.path) registered twice")
        handlers[method.path] = RPCHandler(allowedRoles: method.allowedRoles, run: run)
    }
}

/// A service: a group of methods registered together.
public protocol RPCService: Sendable {
    func register(into router: inout RPCRouter)
}

/// The type-erased handler of one method. It returns the single response of a unary or
/// client-streaming call, which goes out together with the Status.
struct RPCHandler: Sendable {
    let allowedRoles: Set<Role>
    let run: @Sendable (ServerStream) async throws -> ByteBuffer?
}

/// Sends the response messages of a streaming call; waits while the client's window is used up.
public struct RPCResponseWriter<Response: SwiftProtobuf.Message>: Sendable {
    let stream: ServerStream

    public func write(_ response: Response) async throws {
        try await stream.send(MessageCoding.encode(response))
    }
}

/// Messages of a stream, decoded as they are read: a server's requests or a client's
/// responses. Reading returns credit to the sender, so a slow reader slows the sender down.
public struct RPCMessageStream<Message: SwiftProtobuf.Message>: AsyncSequence, Sendable {
    public typealias Element = Message
    let messages: InboundMessages
    /// The status a message that does not decode ends the call with.
    let decodeFailure: RPCError.Code

    public struct AsyncIterator: AsyncIteratorProtocol {
        let messages: InboundMessages
        let decodeFailure: RPCError.Code

        public mutating func next() async throws -> Message? {
            guard let bytes = try await messages.next() else { return nil }
            do {
                return try MessageCoding.decode(bytes, as: Message.self)
            } catch {
                throw RPCError(code: decodeFailure, message: error.message)
            }
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(messages: messages, decodeFailure: decodeFailure)
    }
}

/// The requests a server handler reads.
public typealias RPCRequestStream<Request: SwiftProtobuf.Message> = RPCMessageStream<Request>
/// The responses a client reads.
public typealias RPCResponseStream<Response: SwiftProtobuf.Message> = RPCMessageStream<Response>

/// Sends the requests of a client-streaming or bidirectional call; waits while the server's
/// window is used up.
public struct RPCRequestWriter<Request: SwiftProtobuf.Message>: Sendable {
    let stream: ClientStream

    public func write(_ request: Request) async throws {
        try await stream.send(MessageCoding.encode(request))
    }

    /// Ends the requests (half-close); the server still answers.
    public func finish() {
        stream.endRequests()
    }
}
