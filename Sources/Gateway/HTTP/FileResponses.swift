import Foundation
import HTTPTypes
import Hummingbird
import ICBDCore
import ICBDProto
import NIOCore

extension GatewayResponder {
    /// GET or HEAD of a file of a version, by number or tag, with ranges and validators. A 200 or
    /// 206 answer reports the end of `bootRead` (a read of a boot in progress): a body in memory
    /// as it is handed over, a streamed one when its last byte is written or it breaks off.
    func file(
        image: String, reference: String, path: String, request: Request, context: Context, bootRead: BootObserver.Read? = nil
    ) async throws -> Response {
        let ref: VersionReference
        do { ref = try VersionReference(parsing: reference) } catch {
            throw GatewayError.badRequest("'\(reference)' is neither a version number nor a tag name")
        }
        guard (try? VersionFilePath(path)) != nil else { throw GatewayError.badRequest("'\(path)' is not a valid file path") }
        let snapshot = view.snapshot
        let version = try snapshot.resolve(image: image, reference: ref).get()
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
        if validators.notModified(ifNoneMatch: request.headers[.ifNoneMatch]) {
            return Response(status: .notModified, headers: headers)
        }
        var selection = ByteRangeRequest.whole
        if validators.rangeApplies(ifRange: request.headers[.ifRange]) {
            selection = ByteRangeRequest(header: request.headers[.range], size: file.size)
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
            bootRead?.ended(.sent(bytes: 0))
            return Response(status: status, headers: headers, body: .init())
        }
        let manifest: FileManifest
        do { manifest = try await manifests.manifest(of: version, file: file) } catch {
            throw GatewayError.unavailable("the catalog did not answer with the file's manifest: \(error)", retryAfter: configuration.retryAfterSeconds)
        }
        if let held = HeldRange(range, of: manifest, memory: memory, maximumChunks: configuration.readAhead) {
            metrics.memoryRead(hit: true, chunks: held.memoryChunks)
            metrics.sent(bytes: Int(length))
            bootRead?.ended(.sent(bytes: Int(length)))
            let body = held.slices.count == 1 ? ResponseBody(byteBuffer: held.slices[0]) : ResponseBody(contentsOf: held.slices)
            return Response(status: status, headers: headers, body: body)
        }
        // A range within one chunk whose file the local cache node holds: read and answered at
        // once, one write of head and body, as from memory. (Not held: the streamer below does
        // not read the file again.)
        var sameHostTried = false
        if range.lowerBound / manifest.chunkSize == range.upperBound / manifest.chunkSize,
            let hash = manifest.hash(of: range.lowerBound / manifest.chunkSize)
        {
            let index = range.lowerBound / manifest.chunkSize
            let request = ChunkRequest(
                image: version.image.rawValue, version: version.number, path: file.path.rawValue, index: index, hash: hash,
                length: Int(manifest.length(of: index)), part: manifest.part(of: index, in: range), site: configuration.site.rawValue)
            if let bytes = await chunks.sameHostPart(request) {
                metrics.sent(bytes: Int(length))
                bootRead?.ended(.sent(bytes: Int(length)))
                return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: bytes))
            }
            sameHostTried = true
        }
        let upstreamBound = needsUpstream(manifest, range)
        let ticket = upstreamBound ? admission.tryEnter() : nil
        if upstreamBound {
            guard ticket != nil else {
                metrics.admissionRejected()
                throw GatewayError.unavailable(
                    "too many boots in progress (\(admission.limit) upstream reads); retry shortly", retryAfter: configuration.retryAfterSeconds)
            }
        }
        let site = clientSite(request, context: context, snapshot: snapshot)
        let chunks = self.chunks
        let metrics = self.metrics
        let sameHostRead = sameHostTried
        let streamer = RangeStreamer(manifest: manifest, readAhead: configuration.readAhead) { index, hash, length, part in
            try await chunks.chunk(
                ChunkRequest(
                    image: version.image.rawValue, version: version.number, path: file.path.rawValue, index: index, hash: hash, length: length,
                    part: part,
                    site: site),
                sameHostTried: sameHostRead)
        }
        let body = ResponseBody(contentLength: Int(length)) { writer in
            defer { ticket?.release() }
            do {
                let written = try await streamer.write(range, to: &writer)
                metrics.sent(bytes: written)
                try await writer.finish(nil)
            } catch {
                bootRead?.ended(.cut)
                throw error
            }
            bootRead?.ended(.sent(bytes: Int(length)))
        }
        return Response(status: status, headers: headers, body: body)
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
