import HTTPTypes
import Hummingbird
import ICBDCore
import NIOCore

/// `/boot/{mac}.ipxe`: the iPXE script of a workstation's assigned image, with version-number
/// URLs (a tag moving mid-boot cannot mix versions) built from the request's `Host`. A
/// workstation that cannot boot (no assignment, a version not ready or held by no repository, no
/// kernel or disk) gets a waiting script instead: 200, the reason and the fix on its console, a
/// sleep, and the same URL chained again, so it boots by itself once the operator acts.
///
/// Nothing of the request reaches a script as sent: the MAC is written as parsed (a path that
/// is not one gets a fixed refusal, never an echo of it), the `Host` only once ``HostHeader``
/// has checked it, and every `echo` line is cut to printable ASCII without `$` (no line
/// breaks, no iPXE settings expansion).
enum BootScript {
    /// The script for path segment `segment` (`MAC.ipxe`, percent-decoded); `authority` is the
    /// request's validated `Host`, nil when it sent none (the URLs are then relative). A GET from
    /// a known `client` is reported to the boot observer (the start of a boot, or a wait).
    static func response(
        segment: String, authority: String?, head: Bool, client: IPAddress?, site: String, gateway: GatewayResponder
    ) throws -> Response {
        guard segment.hasSuffix(".ipxe") else { throw GatewayError.notFound("boot scripts are /boot/MAC.ipxe") }
        let mac: MACAddress
        do { mac = try MACAddress(parsing: String(segment.dropLast(".ipxe".count))) } catch {
            return script(
                .badRequest,
                "#!ipxe\n" + echo("icbd: the path does not name a MAC address; ask for /boot/52:54:00:12:34:56.ipxe") + "exit 1\n",
                head: head)
        }
        let base = authority.map { "http://\($0)" } ?? ""
        func waiting(_ reason: String, fix: String) -> Response {
            if !head, let client { gateway.boots.scriptServed(mac: mac, client: client, site: site, target: nil, waitingReason: reason) }
            let retry = gateway.boots.configuration.waitingRetry
            let seconds = max(1, retry.components.seconds + (retry.components.attoseconds > 0 ? 1 : 0))
            return script(
                .ok,
                "#!ipxe\n" + echo("icbd: \(reason)") + echo("icbd: \(fix)") + echo("icbd: asking again in \(seconds) s")
                    + "sleep \(seconds)\nchain --replace --autofree \(base)/boot/\(mac).ipxe\n",
                head: head)
        }
        let assignFix = "assign an image with: icbd assign \(mac) IMAGE[:REF]"
        let snapshot = gateway.view.snapshot
        let assigned: ImageReference
        if let assignment = snapshot.assignments[mac.description] {
            assigned = ImageReference(image: assignment.image, version: assignment.version)
        } else if let fallback = gateway.configuration.defaultImage {
            assigned = fallback
        } else {
            return waiting("no image is assigned to \(mac) and site \(gateway.configuration.site) has no default image", fix: assignFix)
        }
        let version: VersionRecord
        switch snapshot.resolve(image: assigned.image.rawValue, reference: assigned.version, workstation: (mac, try? Name(site))) {
        case .success(let found): version = found
        case .failure(let error): return waiting("\(mac) boots \(assigned), but \(error.reason)", fix: assignFix)
        }
        guard !snapshot.repositories(holding: version.image.rawValue, version: version.number).isEmpty else {
            return waiting(
                "version \(version.number) of \(version.image) is on no repository yet",
                fix: "it boots once replication ends (icbd replication status), or \(assignFix)")
        }
        let prefix = "\(base)/v1/images/\(version.image)/\(version.number)/"
        // Paths as the catalog checked them (letters, digits, '.', '_', '-', '/'): safe in a URL and a script line.
        let files = version.files.map(\.path.rawValue)
        let kernel = files.first { name(of: $0).hasPrefix("vmlinuz") || name(of: $0).hasPrefix("bzImage") || name(of: $0) == "kernel" }
        let initrd = files.first { name(of: $0).hasPrefix("initrd") }
        let disk = files.first { ["raw", "img", "qcow2"].contains(name(of: $0).split(separator: ".").last.map(String.init) ?? "") }
        var lines = ["#!ipxe", "# \(mac) boots \(version.image) version \(version.number)"]
        if let kernel {
            var arguments = "initrd=\(name(of: initrd ?? "initrd.img")) icbd.image=\(version.image) icbd.version=\(version.number)"
            if let disk { arguments += " icbd.disk=\(prefix)\(disk)" }
            lines.append("kernel \(prefix)\(kernel) \(arguments)")
            if let initrd { lines.append("initrd \(prefix)\(initrd)") }
            lines.append("boot")
        } else if let disk {
            lines.append("sanboot \(prefix)\(disk)")
        } else {
            return waiting("\(version.image) version \(version.number) has no kernel or disk to boot", fix: assignFix)
        }
        if !head, let client {
            let target = BootRecord.Target(
                image: version.image.rawValue, version: version.number, loads: Set([kernel, initrd].compactMap { $0 }))
            gateway.boots.scriptServed(mac: mac, client: client, site: site, target: target)
        }
        return script(.ok, lines.joined(separator: "\n") + "\n", head: head)
    }

    /// An `echo` line of `text` cut to printable ASCII without `$`: whatever the text holds, it
    /// stays one line that iPXE prints as it is.
    private static func echo(_ text: String) -> String {
        let printable = text.utf8.map { (0x20...0x7E).contains($0) && $0 != UInt8(ascii: "$") ? $0 : UInt8(ascii: "?") }
        return "echo " + String(decoding: printable, as: UTF8.self) + "\n"
    }

    private static func name(of path: String) -> String {
        path.split(separator: "/").last.map(String.init) ?? path
    }

    private static func script(_ status: HTTPResponse.Status, _ text: String, head: Bool) -> Response {
        let body = ByteBuffer(string: text)
        return Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8", .contentLength: "\(body.readableBytes)", .cacheControl: "no-cache"],
            body: head ? .init() : .init(byteBuffer: body))
    }
}
