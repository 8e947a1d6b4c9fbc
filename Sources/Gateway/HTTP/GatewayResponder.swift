import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import ICBDProto
import ICBDCore
import Logging
import NIOCore

/// Answers every HTTP request of the gateway (docs/gateway.md "HTTP surface"). Routing is by
/// path segments so that file paths with slashes (`boot/vmlinuz`) and MACs with `%3A` route
/// without surprises; every refusal is a short plain-text reason.
struct GatewayResponder: HTTPResponder {
    typealias Context = GatewayRequestContext

    let configuration: GatewayConfiguration
    let view: CatalogView
    let manifests: ManifestStore
    let chunks: ChunkSource
    let memory: ChunkMemoryCache
    let admission: AdmissionGate
    let health: PassiveHealth
    let metrics: GatewayMetrics
    let boots: BootObserver
    let logger: Logger

    func respond(to request: Request, context: Context) async throws -> Response {
        var route: String
        var response: Response
        do {
            (route, response) = try await dispatch(request, context: context)
        } catch let error as GatewayError {
            (route, response) = ("error", Self.plain(error.status, error.reason, headers: error.headers, head: request.method == .head))
        } catch {
            logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            (route, response) = ("error", Self.plain(.internalServerError, "internal error", head: request.method == .head))
        }
        metrics.request(route: route, status: response.status.code)
        return response
    }

    private func dispatch(_ request: Request, context: Context) async throws -> (String, Response) {
        let (segments, authority) = try routable(request.head, uri: request.uri)
        let head = request.method == .head
        switch segments.first {
        case nil:
            return ("status", Self.html(StatusPage.render(gateway: self), head: head))
        case "healthz" where segments.count == 1:
            return ("healthz", Self.plain(.ok, "ok", head: head))
        case "readyz" where segments.count == 1:
            let problem = readinessProblem()
            return ("readyz", Self.plain(problem == nil ? .ok : .serviceUnavailable, problem ?? "ready", head: head))
        case "metrics" where segments.count == 1:
            var response = Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"], body: .init(byteBuffer: ByteBuffer(bytes: metrics.render(admission: admission, memory: memory))))
            if head { response.body = .init() }
            return ("metrics", response)
        case "v1" where segments.count >= 2 && segments[1] == "images":
            switch segments.count {
            case 2: return ("images", try Listings.images(view.snapshot, head: head))
            case 3: return ("image", try Listings.image(segments[2], view.snapshot, head: head))
            case 4: throw GatewayError.notFound("name a file: /v1/images/IMAGE/REF/FILE")
            default:
                let path = segments[4...].joined(separator: "/")
                return ("file", try await observedFile(image: segments[2], reference: segments[3], path: path, request: request, context: context))
            }
        case "boot" where segments.count == 2:
            let client = clientAddress(request, context: context)
            let site = client.flatMap { view.snapshot.site(of: $0) } ?? configuration.site.rawValue
            return ("boot", try BootScript.response(segment: segments[1], authority: authority, head: head, client: client, site: site, gateway: self))
        case "boot" where segments.count == 3 && segments[2] == "up":
            return ("boot_up", try bootedSignal(macSegment: segments[1], request: request, context: context))
        default:
            throw GatewayError.notFound("no such page: try /v1/images, /boot/MAC.ipxe, /boot/MAC/up or /")
        }
    }

    /// The checks every request passes before it is routed (the URL's and header fields'
    /// lengths, the method, the Host field): the path's decoded segments and the authority.
    func routable(_ head: HTTPRequest, uri: URI) throws -> (segments: [String], authority: String?) {
        guard uri.string.utf8.count <= configuration.maximumURILength else {
            throw GatewayError(status: .uriTooLong, reason: "the URL is longer than \(configuration.maximumURILength) bytes")
        }
        for field in head.headerFields where field.value.utf8.count > configuration.maximumHeaderFieldBytes {
            throw GatewayError(
                status: .requestHeaderFieldsTooLarge,
                reason: "header \(field.name) is longer than \(configuration.maximumHeaderFieldBytes) bytes")
        }
        guard head.method == .get || head.method == .head else {
            throw GatewayError(status: .methodNotAllowed, reason: "only GET and HEAD", headers: [.allow: "GET, HEAD"])
        }
        let authority = try HostHeader.validated(
            head.authority, extraHostFields: head.headerFields.count { $0.name.canonicalName == "host" }
        ).get()
        return (try RequestPath.segments(uri.path).get(), authority)
    }

    /// Nil when ready: the catalog view is loaded and some cache or repository is up.
    func readinessProblem() -> String? {
        guard view.isLoaded else { return "the catalog view is not loaded yet" }
        let snapshot = view.snapshot
        guard !(snapshot.upNodes(role: .cache) + snapshot.upNodes(role: .replicator)).isEmpty else {
            return "no cache node or repository is up"
        }
        return nil
    }

    /// The site of the client: its address (``clientAddress(_:context:)``) in a site's CIDRs;
    /// otherwise the gateway's own site.
    func clientSite(_ request: Request, context: Context, snapshot: CatalogSnapshot) -> String {
        clientAddress(request, context: context).flatMap { snapshot.site(of: $0) } ?? configuration.site.rawValue
    }

    /// The client's address: the peer's, or, from a trusted proxy, the nearest untrusted address
    /// of `X-Forwarded-For`; nil when the peer has no IP address.
    func clientAddress(_ request: Request, context: Context) -> IPAddress? {
        clientAddress(request.headers, peer: context.remoteAddress)
    }

    /// The client's address, from the request's fields and the peer's socket address.
    func clientAddress(_ fields: HTTPFields, peer: SocketAddress?) -> IPAddress? {
        guard var client = peer.flatMap(IPAddress.init(peer:)) else { return nil }
        guard configuration.trustedProxies.contains(where: { $0.contains(client) }) else { return client }
        for value in fields[values: .xForwardedFor].reversed() {
            for hop in value.split(separator: ",").reversed() {
                guard let address = try? IPAddress(parsing: String(hop.trimmingSpaces)) else { return client }
                client = address
                if !configuration.trustedProxies.contains(where: { $0.contains(address) }) { return client }
            }
        }
        return client
    }

    static func plain(_ status: HTTPResponse.Status, _ text: String, headers: HTTPFields = [:], head: Bool = false) -> Response {
        var fields = headers
        fields[.contentType] = "text/plain; charset=utf-8"
        let body = ByteBuffer(string: text + "\n")
        fields[.contentLength] = "\(body.readableBytes)"
        return Response(status: status, headers: fields, body: head ? .init() : .init(byteBuffer: body))
    }

    static func html(_ text: String, head: Bool) -> Response {
        let body = ByteBuffer(string: text)
        return Response(
            status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentLength: "\(body.readableBytes)", .cacheControl: "no-cache"],
            body: head ? .init() : .init(byteBuffer: body))
    }
}
