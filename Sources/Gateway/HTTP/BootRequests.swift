import HTTPTypes
import Hummingbird
import ICBDCore

extension GatewayResponder {
    /// A file request, reported to the boot observer when it is a GET that belongs to a boot in
    /// progress (docs/gateway.md "Boots"): its end (body written whole or cut, or refused), its
    /// bytes and its latency, request to last byte.
    func observedFile(image: String, reference: String, path: String, request: Request, context: Context) async throws -> Response {
        guard request.method == .get, boots.isFollowingReads, let client = clientAddress(request, context: context),
            let (read, started) = boots.readStarted(client: client, image: image, reference: reference, path: path)
        else {
            return try await file(image: image, reference: reference, path: path, request: request, context: context)
        }
        let response: Response
        do {
            response = try await file(image: image, reference: reference, path: path, request: request, context: context)
        } catch {
            boots.readEnded(read, started: started, result: .refused(status: Int((error as? GatewayError)?.status.code ?? 500)))
            throw error
        }
        let length = response.headers[.contentLength].flatMap { Int($0) } ?? 0
        guard response.status == .ok || response.status == .partialContent else {
            boots.readEnded(read, started: started, result: response.status.code >= 400 ? .refused(status: response.status.code) : .sent(bytes: 0))
            return response
        }
        let body = response.body
        let boots = self.boots
        var observed = response
        observed.body = ResponseBody(contentLength: body.contentLength) { writer in
            do {
                try await body.write(writer)
            } catch {
                boots.readEnded(read, started: started, result: .cut)
                throw error
            }
            boots.readEnded(read, started: started, result: .sent(bytes: length))
        }
        return observed
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
