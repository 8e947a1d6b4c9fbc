import HTTPTypes
import Hummingbird
import ICBDCore

extension GatewayResponder {
    /// A file request, reported to the boot observer when it is a GET that belongs to a boot in
    /// progress (docs/gateway.md "Boots"): its end (body sent whole or cut, or refused), its bytes
    /// and its latency. The body is not wrapped: ``file(image:reference:path:request:context:bootRead:)``
    /// reports the end where it makes the body, so a body in one buffer keeps its single write of
    /// head, body and end.
    func observedFile(image: String, reference: String, path: String, request: Request, context: Context) async throws -> Response {
        guard request.method == .get, boots.isFollowingReads, let client = clientAddress(request, context: context),
            let read = boots.readStarted(client: client, image: image, reference: reference, path: path)
        else {
            return try await file(image: image, reference: reference, path: path, request: request, context: context)
        }
        let response: Response
        do {
            response = try await file(image: image, reference: reference, path: path, request: request, context: context, bootRead: read)
        } catch {
            read.ended(.refused(status: Int((error as? GatewayError)?.status.code ?? 500)))
            throw error
        }
        // A 200 or 206 reported its end itself; any other answer (304) is one now.
        if response.status != .ok && response.status != .partialContent {
            read.ended(response.status.code >= 400 ? .refused(status: response.status.code) : .sent(bytes: 0))
        }
        return response
    }

    /// `GET /boot/{mac}/up`, the boot layer's "the OS is up": 204, and the MAC's boot in progress
    /// is recorded as booted if its script went to the same client address.
    func bootedSignal(macSegment: String, request: Request, context: Context) throws -> Response {
        guard let mac = try? MACAddress(parsing: macSegment) else {
            throw GatewayError.badRequest("the path does not name a MAC address; send /boot/52:54:00:12:34:56/up")
        }
        if request.method == .get, let client = clientAddress(request, context: context) {
            boots.bootedSignal(mac: mac, client: client)
        }
        return Response(status: .noContent, headers: [.cacheControl: "no-cache"])
    }
}
