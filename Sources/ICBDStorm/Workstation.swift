import AsyncHTTPClient
import Foundation
import ICBDCore
import NIOCore
import NIOHTTP1
import ICBDSample

/// One simulated diskless workstation booting through a gateway the way iPXE and the iCBD boot
/// layer do: its boot script, the kernel and initrd it names, then its boot trace of the disk
/// as Range reads. Every byte is checked against what the template holds; a 503 is retried
/// after its Retry-After, as iPXE does.
struct Workstation: Sendable {
    let mac: String
    let gateway: String  // http://HOST:PORT
    let expected: ExpectedTemplate
    /// Sent as `X-Forwarded-For`, so that a gateway that trusts the storm's host as a proxy
    /// tells the workstations apart (docs/gateway.md "Boots"); nil: none.
    var address: String?
    /// A version whose kernel does not start here (`icbd storm --fail-version`): the machine
    /// loads it and starts over.
    var failVersion: Int64?
    var restartDelay: Duration = .seconds(1)
    var maximumRestarts = 60
    /// Whether it sends the boot layer's booted signal (`GET /boot/MAC/up`) once it booted.
    var sendsBootedSignal = false

    /// How one workstation's boot went: the bytes read and checked, the version that booted,
    /// and how often it started over on the failing version first.
    struct Boot: Sendable {
        var bytes: Int64 = 0
        var version: Int64 = 0
        var restarts = 0
    }

    /// Boots until a version other than `failVersion` came up (then sends the booted signal,
    /// if it does).
    /// Throws, saying what was wrong, on a failed or wrong read, or when the failing version is
    /// all it is ever given.
    func boot(with client: HTTPClient) async throws -> Boot {
        var boot = Boot()
        var script: String
        while true {
            script = String(decoding: try await get("\(gateway)/boot/\(mac).ipxe", client: client), as: UTF8.self)
            guard script.hasPrefix("#!ipxe") else { throw StormError("\(mac): the boot script is not an iPXE script: \(script.prefix(200))") }
            boot.version = Self.version(in: script) ?? 0
            guard let failVersion, boot.version == failVersion else { break }
            // Its kernel and initrd load, and the kernel does not start: the machine starts over.
            for command in ["kernel", "initrd"] { boot.bytes += Int64(try await get(try url(after: command, in: script), client: client).count) }
            guard boot.restarts < maximumRestarts else {
                throw StormError("\(mac): given version \(failVersion), which does not boot here, \(boot.restarts + 1) times; nothing rolled it back")
            }
            boot.restarts += 1
            try await Task.sleep(for: restartDelay)
        }
        boot.bytes += try await load(script, with: client)
        if sendsBootedSignal { _ = try await get("\(gateway)/boot/\(mac)/up", client: client, status: .noContent) }
        return boot
    }

    /// The version a boot script names (`# MAC boots IMAGE version N`).
    static func version(in script: String) -> Int64? {
        script.split(separator: "\n").first { $0.hasPrefix("# ") && $0.contains(" version ") }?.split(separator: " ").last.flatMap { Int64($0) }
    }

    /// Loads what `script` names, checked against the template, and reads the trace; returns
    /// the bytes read.
    private func load(_ script: String, with client: HTTPClient) async throws -> Int64 {
        let kernelURL = try url(after: "kernel", in: script)
        let initrdURL = try url(after: "initrd", in: script)
        var bytes: Int64 = 0
        for (url, want) in [(kernelURL, expected.kernel), (initrdURL, expected.initrd)] {
            let body = try await get(url, client: client)
            guard body.count == want.count, body == want else {
                throw StormError("\(mac): \(url) served \(body.count) bytes that are not the template's \(want.count)")
            }
            bytes += Int64(body.count)
        }
        let disk = String(kernelURL[..<(kernelURL.lastIndex(of: "/") ?? kernelURL.endIndex)]) + "/disk.raw"
        for (index, read) in expected.trace.reads.enumerated() {
            let body = try await get(disk, client: client, range: read)
            guard body == expected.traceBytes[index] else {
                throw StormError("\(mac): bytes \(read.offset)-\(read.offset + Int64(read.length) - 1) of \(disk) are not the template's")
            }
            bytes += Int64(body.count)
        }
        return bytes
    }

    private func url(after command: String, in script: String) throws -> String {
        guard let line = script.split(separator: "\n").first(where: { $0.hasPrefix(command + " ") }),
            let target = line.split(separator: " ").dropFirst().first
        else { throw StormError("\(mac): the boot script has no `\(command)` line:\n\(script)") }
        return target.hasPrefix("http") ? String(target) : gateway + (target.hasPrefix("/") ? "" : "/") + target
    }

    /// GET, following 503 + Retry-After (at most 30 times), expecting `status` (200), or 206 for a range.
    private func get(
        _ url: String, client: HTTPClient, range: BootTrace.Read? = nil, status expected: HTTPResponseStatus = .ok
    ) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        if let range { request.headers.add(name: "Range", value: "bytes=\(range.offset)-\(range.offset + Int64(range.length) - 1)") }
        if let address { request.headers.add(name: "X-Forwarded-For", value: address) }
        for _ in 0..<30 {
            let response = try await client.execute(request, timeout: .seconds(120))
            let body = try await response.body.collect(upTo: 256 << 20)
            switch response.status {
            case expected where range == nil, .partialContent where range != nil:
                return Array(body.readableBytesView)
            case .serviceUnavailable:
                let wait = Int(response.headers.first(name: "Retry-After") ?? "") ?? 1
                try await Task.sleep(for: .milliseconds(min(wait, 2) * 500))
            default:
                throw StormError("\(mac): GET \(url)\(range.map { " (bytes \($0.offset)+\($0.length))" } ?? ""): \(response.status): \(String(buffer: body).prefix(200))")
            }
        }
        throw StormError("\(mac): GET \(url): still 503 after 30 tries")
    }
}

/// What every workstation must read: the template's kernel, initrd and the trace's disk bytes.
public struct ExpectedTemplate: Sendable {
    let kernel: [UInt8]
    let initrd: [UInt8]
    let trace: BootTrace
    let traceBytes: [[UInt8]]

    public init(template: SampleTemplate, trace: BootTrace) {
        kernel = Array(template.kernel)
        initrd = Array(template.initrd)
        self.trace = trace
        let disk = template.disk
        traceBytes = trace.reads.map { disk.bytes(at: $0.offset, count: $0.length) }
    }
}

/// A boot that failed, or a storm with failed boots: what was wrong.
public struct StormError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
