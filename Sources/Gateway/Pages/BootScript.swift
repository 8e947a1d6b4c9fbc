import HTTPTypes
import Hummingbird
import ICBDCore
import ICBDProto
import NIOCore

/// `/boot/{mac}.ipxe`: the iPXE script of a workstation's assigned image, with version-number
/// URLs (a tag moving mid-boot cannot mix versions) built from the request's `Host`.
enum BootScript {
    static func response(segment: String, request: Request, gateway: GatewayResponder) throws -> Response {
        let head = request.method == .head
        guard segment.hasSuffix(".ipxe") else { throw GatewayError.notFound("boot scripts are /boot/MAC.ipxe") }
        let macText = String(segment.dropLast(".ipxe".count))
        let mac: MACAddress
        do { mac = try MACAddress(parsing: macText) } catch {
            return script(.badRequest, "#!ipxe\necho icbd: '\(macText)' is not a MAC address\nexit 1\n", head: head)
        }
        let snapshot = gateway.view.snapshot
        let assigned: ImageReference
        if let assignment = snapshot.assignments[mac.description],
            let reference = try? ImageReference(parsing: assignment.ref.isEmpty ? assignment.image : "\(assignment.image):\(assignment.ref)")
        {
            assigned = reference
        } else if let fallback = gateway.configuration.defaultImage {
            assigned = fallback
        } else {
            return script(
                .notFound,
                "#!ipxe\necho icbd: no image is assigned to \(mac) and site \(gateway.configuration.site) has no default image\necho assign one with: icbd assign \(mac) IMAGE\nsleep 30\nexit 1\n",
                head: head)
        }
        let version: Icbd_Catalog_V1_Version
        switch snapshot.resolve(image: assigned.image.rawValue, reference: assigned.version) {
        case .success(let found): version = found
        case .failure(let error):
            return script(.notFound, "#!ipxe\necho icbd: \(mac) boots \(assigned), but \(error.reason)\nsleep 30\nexit 1\n", head: head)
        }
        let base = request.head.authority.map { "http://\($0)" } ?? ""
        let prefix = "\(base)/v1/images/\(version.image)/\(version.number)/"
        let files = version.files.map(\.path)
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
            return script(.notFound, "#!ipxe\necho icbd: \(version.image) version \(version.number) has no kernel or disk to boot\nexit 1\n", head: head)
        }
        return script(.ok, lines.joined(separator: "\n") + "\n", head: head)
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
