import Foundation
import HTTPTypes
import Hummingbird
import ICBDCore
import ICBDProto
import NIOCore

/// What a GET or HEAD of a file answers, as far as the catalog view alone decides it.
enum FileAnswer {
    /// An answer without bytes of the file to read: 304, a HEAD, an empty file.
    case complete(Response)
    /// The bytes `range` of `file`.
    case body(FileBody)
}

/// A 200 or 206 answer whose body is bytes of a file of a version.
struct FileBody {
    let version: VersionRecord
    let file: FileRecord
    let status: HTTPResponse.Status
    /// Every field of the answer, Content-Length and Content-Range included.
    let headers: HTTPFields
    let range: ClosedRange<Int64>
    var length: Int { Int(range.upperBound - range.lowerBound + 1) }
}

extension GatewayResponder {
    /// GET or HEAD of a file of a version, by number or tag, with ranges and validators. A 200 or
    /// 206 answer reports the end of `bootRead` (a read of a boot in progress): a body in memory
    /// as it is handed over, a streamed one when its last byte is written or it breaks off.
    func file(
        image: String, reference: String, path: String, request: Request, context: Context, bootRead: BootObserver.Read? = nil
    ) async throws -> Response {
        let body: FileBody
        switch try fileAnswer(image: image, reference: reference, path: path, request: request.head) {
        case .complete(let response):
            if response.status == .ok || response.status == .partialContent { bootRead?.ended(.sent(bytes: 0)) }
            return response
        case .body(let planned):
            body = planned
        }
        let manifest: FileManifest
        do { manifest = try await manifests.manifest(of: body.version, file: body.file) } catch {
            throw GatewayError.unavailable("the catalog did not answer with the file's manifest: \(error)", retryAfter: configuration.retryAfterSeconds)
        }
        if let slices = heldBytes(body, of: manifest) {
            bootRead?.ended(.sent(bytes: body.length))
            let bytes = slices.count == 1 ? ResponseBody(byteBuffer: slices[0]) : ResponseBody(contentsOf: slices)
            return Response(status: body.status, headers: body.headers, body: bytes)
        }
        let site = clientSite(request, context: context, snapshot: view.snapshot)
        // A range within one chunk is read before it is answered: from the local cache node's
        // file when it holds the chunk, else through the plan under an admission slot; then
        // one write of head and body, as from memory. Every upstream failing is a 502 or 503
        // before any byte, not a body cut short.
        if let chunk = singleChunk(body, of: manifest, site: site) {
            let bytes: ByteBuffer
            if let local = await chunks.sameHostPart(chunk) {
                bytes = local
            } else {
                let ticket = try admitted()
                defer { ticket.release() }
                bytes = try await chunks.chunk(chunk, sameHostTried: true)
            }
            metrics.sent(bytes: body.length)
            bootRead?.ended(.sent(bytes: body.length))
            return Response(status: body.status, headers: body.headers, body: ResponseBody(byteBuffer: bytes))
        }
        let ticket = needsUpstream(manifest, body.range) ? try admitted() : nil
        let chunks = self.chunks
        let metrics = self.metrics
        let (version, file, range, length) = (body.version, body.file, body.range, body.length)
        let streamer = RangeStreamer(manifest: manifest, readAhead: configuration.readAhead) { index, hash, length, part in
            try await chunks.chunk(
                ChunkRequest(
                    image: version.image.rawValue, version: version.number, path: file.path.rawValue, index: index, hash: hash, length: length,
                    part: part,
                    site: site))
        }
        let streamed = ResponseBody(contentLength: length) { writer in
            defer { ticket?.release() }
            do {
                let written = try await streamer.write(range, to: &writer)
                metrics.sent(bytes: written)
                try await writer.finish(nil)
            } catch {
                bootRead?.ended(.cut)
                throw error
            }
            bootRead?.ended(.sent(bytes: length))
        }
        return Response(status: body.status, headers: body.headers, body: streamed)
    }

    /// What a GET or HEAD of `path` of the version `reference` of `image` answers, decided from
    /// the catalog view: the file, its validators and its range. Throws the refusal (400, 404,
    /// 416).
    func fileAnswer(image: String, reference: String, path: String, request: HTTPRequest) throws -> FileAnswer {
        let ref: VersionReference
        do { ref = try VersionReference(parsing: reference) } catch {
            throw GatewayError.badRequest("'\(reference)' is neither a version number nor a tag name")
        }
        guard (try? VersionFilePath(path)) != nil else { throw GatewayError.badRequest("'\(path)' is not a valid file path") }
        let version = try view.snapshot.resolve(image: image, reference: ref).get()
        guard let file = version.files.first(where: { $0.path.rawValue == path }) else {
            throw GatewayError.notFound("version \(version.number) of '\(image)' has no file '\(path)'")
        }
        let validators = EntityValidators(
            manifestDigest: file.manifestDigest, lastModified: Date(timeIntervalSince1970: version.created.timeIntervalSince1970.rounded(.down)))
        let isVersionURL: Bool
        if case .number = ref { isVersionURL = true } else { isVersionURL = false }
        var headers: HTTPFields = [
            .acceptRanges: "bytes",
            .eTag: validators.etag,
            .lastModified: HTTPDate.format(validators.lastModified),
            // A version never changes; a tag moves, so caches must ask again.
            .cacheControl: isVersionURL ? "public, max-age=31536000, immutable" : "no-cache",
        ]
        if case .tag = ref, let name = HTTPField.Name("X-Icbd-Version") { headers[name] = "\(version.number)" }
        if validators.notModified(ifNoneMatch: request.headerFields[.ifNoneMatch]) {
            return .complete(Response(status: .notModified, headers: headers))
        }
        var selection = ByteRangeRequest.whole
        if validators.rangeApplies(ifRange: request.headerFields[.ifRange]) {
            selection = ByteRangeRequest(header: request.headerFields[.range], size: file.size)
        }
        let range: ClosedRange<Int64>?
        var status = HTTPResponse.Status.ok
        switch selection {
        case .malformed(let reason):
            throw GatewayError.badRequest("malformed Range: \(reason)")
        case .unsatisfiable:
            headers[.contentRange] = "bytes */\(file.size)"
            throw GatewayError(status: .rangeNotSatisfiable, reason: "the range lies outside the file's \(file.size) bytes", headers: headers)
        case .partial(let selected):
            status = .partialContent
            headers[.contentRange] = "bytes \(selected.lowerBound)-\(selected.upperBound)/\(file.size)"
            range = selected
        case .whole:
            range = file.size > 0 ? 0...(file.size - 1) : nil
        }
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? 0
        headers[.contentType] = "application/octet-stream"
        headers[.contentLength] = "\(length)"
        guard request.method == .get, let range else {
            return .complete(Response(status: status, headers: headers, body: .init()))
        }
        return .body(FileBody(version: version, file: file, status: status, headers: headers, range: range))
    }

    /// The body's bytes when each of its chunks is zeros or in memory (``HeldRange``), counted
    /// as memory hits and bytes sent; nil otherwise.
    func heldBytes(_ body: FileBody, of manifest: FileManifest) -> [ByteBuffer]? {
        guard let held = HeldRange(body.range, of: manifest, memory: memory, maximumChunks: configuration.readAhead) else { return nil }
        metrics.memoryRead(hit: true, chunks: held.memoryChunks)
        metrics.sent(bytes: body.length)
        return held.slices
    }

    /// A slot of the admission gate for a response that reads upstream; a 503 when none is free.
    private func admitted() throws -> AdmissionTicket {
        guard let ticket = admission.tryEnter() else {
            metrics.admissionRejected()
            throw GatewayError.unavailable(
                "too many boots in progress (\(admission.limit) upstream reads); retry shortly", retryAfter: configuration.retryAfterSeconds)
        }
        return ticket
    }

    /// The chunk the body lies within, when it lies within one chunk that is not zeros; `site`
    /// is the client's (whose cache nodes come first).
    func singleChunk(_ body: FileBody, of manifest: FileManifest, site: String) -> ChunkRequest? {
        let index = body.range.lowerBound / manifest.chunkSize
        guard index == body.range.upperBound / manifest.chunkSize, let hash = manifest.hash(of: index) else { return nil }
        return ChunkRequest(
            image: body.version.image.rawValue, version: body.version.number, path: body.file.path.rawValue, index: index, hash: hash,
            length: Int(manifest.length(of: index)), part: manifest.part(of: index, in: body.range), site: site)
    }

    /// Whether the range needs a chunk that is neither zeros nor in memory (looking at the
    /// first 64 chunks: a longer range is a disk read that goes upstream anyway).
    private func needsUpstream(_ manifest: FileManifest, _ range: ClosedRange<Int64>) -> Bool {
        let first = range.lowerBound / manifest.chunkSize
        let last = range.upperBound / manifest.chunkSize
        guard last - first < 64 else { return true }
        for index in first...last {
            if let hash = manifest.hash(of: index), !memory.contains(hash) { return true }
        }
        return false
    }
}
