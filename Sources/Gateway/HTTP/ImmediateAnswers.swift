import HTTPTypes
import Hummingbird
import HummingbirdCore
import ICBDCore
import NIOCore

extension GatewayResponder {
    /// The answer to a GET of a file when no byte of it needs waiting for: every chunk of the
    /// range is zeros or in memory (``HeldRange``), or the range lies within one chunk whose
    /// same-host file was verified before and is in the page cache. ``ImmediateReadHandler``
    /// gives it on the event loop that read the request, with the head, body, metrics and boot
    /// record the long way gives the same request.
    ///
    /// Nil for everything else, refusals included: the long way (a task running
    /// ``respond(to:context:)``) answers those, and counts and logs what it finds.
    func immediateAnswer(to request: HTTPRequest, peer: SocketAddress?) -> (head: HTTPResponse, body: [ByteBuffer])? {
        // A request that asks for the connection to close is left to the request loop, which closes it.
        let closes = request.headerFields[values: .connection].contains { $0.lowercased().contains("close") }
        guard request.method == .get, !closes, let target = request.path,
            let routed = try? routable(request, uri: URI(target)), routed.segments.count >= 5,
            routed.segments[0] == "v1", routed.segments[1] == "images"
        else { return nil }
        let (image, reference) = (routed.segments[2], routed.segments[3])
        let path = routed.segments[4...].joined(separator: "/")
        guard case .body(let body)? = try? fileAnswer(image: image, reference: reference, path: path, request: request),
            let manifest = manifests.held(of: body.version, file: body.file)
        else { return nil }
        let slices: [ByteBuffer]
        if let held = heldBytes(body, of: manifest) {
            slices = held
        } else if let chunk = singleChunk(body, of: manifest, site: configuration.site.rawValue),
            let bytes = chunks.residentSameHostPart(chunk)
        {
            metrics.sent(bytes: body.length)
            slices = [bytes]
        } else {
            return nil
        }
        // The boot's read starts only now that it is answered here: a read started and then
        // passed on would stay in flight for ever, and its boot would never settle.
        if boots.isFollowingReads, let client = clientAddress(request.headerFields, peer: peer),
            let read = boots.readStarted(client: client, image: image, reference: reference, path: path)
        {
            read.ended(.sent(bytes: body.length))
        }
        metrics.request(route: "file", status: Int(body.status.code))
        metrics.immediateResponse()
        return (HTTPResponse(status: body.status, headerFields: body.headers), slices)
    }
}
