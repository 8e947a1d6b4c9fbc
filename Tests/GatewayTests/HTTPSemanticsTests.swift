import Foundation
import ICBDCore
import NIOCore
import Testing

@testable import Gateway

@Suite("HTTP ranges, validators and paths, as plain values")
struct HTTPSemanticsTests {
    /// The client address starts from the socket's peer, read from its bytes.
    @Test func aPeersAddressIsReadFromItsSocketAddress() throws {
        for text in ["127.0.0.1", "10.9.0.2", "255.254.0.1", "::1", "fe80::1:2", "2001:db8::ff00:42:8329"] {
            #expect(IPAddress(peer: try SocketAddress(ipAddress: text, port: 8080)) == (try IPAddress(parsing: text)), "\(text)")
        }
        #expect(IPAddress(peer: try SocketAddress(unixDomainSocketPath: "/run/icbd.sock")) == nil)
    }

    @Test(arguments: [
        ("bytes=0-99", ByteRangeRequest.partial(0...99)),
        ("bytes=100-", .partial(100...999)),
        ("bytes=-10", .partial(990...999)),
        ("bytes=-5000", .partial(0...999)),
        ("bytes=990-5000", .partial(990...999)),
        ("bytes = 5-9", .partial(5...9)),
        ("bytes=1000-", .unsatisfiable),
        ("bytes=-0", .unsatisfiable),
        ("bytes=0-1,5-9", .whole),
        ("bytes=5000-6000,0-1", .whole),
        ("bytes=5000-6000,7000-", .unsatisfiable),
        ("items=0-5", .whole),
        ("bytes=9-5", .malformed("")),
        ("bytes=a-5", .malformed("")),
        ("bytes=5", .malformed("")),
        ("bytes=+5-9", .malformed("")),
        ("bytes=99999999999999999999-", .malformed("")),
        ("garbage", .malformed("")),
    ])
    func rangeHeaders(header: String, expected: ByteRangeRequest) {
        let parsed = ByteRangeRequest(header: header, size: 1000)
        if case .malformed = expected {
            guard case .malformed = parsed else { Issue.record("\(header): \(parsed)"); return }
        } else {
            #expect(parsed == expected, "\(header)")
        }
    }

    @Test func emptyFilesHaveNoSatisfiableRange() {
        #expect(ByteRangeRequest(header: "bytes=0-", size: 0) == .unsatisfiable)
        #expect(ByteRangeRequest(header: nil, size: 0) == .whole)
    }

    @Test func validators() {
        let digest = [UInt8](repeating: 0xab, count: 32)
        let modified = Date(timeIntervalSince1970: 1_700_000_000)
        let validators = EntityValidators(manifestDigest: digest, lastModified: modified)
        #expect(validators.etag == "\"" + String(repeating: "ab", count: 32) + "\"")
        #expect(validators.notModified(ifNoneMatch: validators.etag))
        #expect(validators.notModified(ifNoneMatch: "\"x\", W/\(validators.etag)"))
        #expect(validators.notModified(ifNoneMatch: "*"))
        #expect(!validators.notModified(ifNoneMatch: "\"other\""))
        #expect(!validators.notModified(ifNoneMatch: nil))
        #expect(validators.rangeApplies(ifRange: nil))
        #expect(validators.rangeApplies(ifRange: validators.etag))
        #expect(!validators.rangeApplies(ifRange: "W/\(validators.etag)"))
        #expect(!validators.rangeApplies(ifRange: "\"other\""))
        #expect(validators.rangeApplies(ifRange: HTTPDate.format(modified)))
        #expect(!validators.rangeApplies(ifRange: HTTPDate.format(modified.addingTimeInterval(1))))
        #expect(HTTPDate.format(Date(timeIntervalSince1970: 784_111_777)) == "Sun, 06 Nov 1994 08:49:37 GMT")
        #expect(HTTPDate.parse("Sun, 06 Nov 1994 08:49:37 GMT") == Date(timeIntervalSince1970: 784_111_777))
    }

    @Test(arguments: [
        (0, "Thu, 01 Jan 1970 00:00:00 GMT"),
        (951_782_400, "Tue, 29 Feb 2000 00:00:00 GMT"),
        (4_107_542_399, "Sun, 28 Feb 2100 23:59:59 GMT"),
        (1_795_913_999, "Sun, 29 Nov 2026 00:59:59 GMT"),
        (-1, "Wed, 31 Dec 1969 23:59:59 GMT"),
    ])
    func httpDatesAcrossLeapYearsAndTheEpoch(seconds: Int, text: String) {
        #expect(HTTPDate.format(Date(timeIntervalSince1970: Double(seconds))) == text)
        #expect(HTTPDate.parse(text) == Date(timeIntervalSince1970: Double(seconds)))
        #expect(HTTPDate.parse("Sun, 06 Nov 999999999999999 08:49:37 GMT") == nil)
    }

    @Test func pathsNeverClimb() throws {
        #expect(try RequestPath.segments("/v1/images/win11/1/boot/vmlinuz").get() == ["v1", "images", "win11", "1", "boot", "vmlinuz"])
        #expect(try RequestPath.segments("/boot/52%3A54%3A00%3A12%3A34%3A56.ipxe").get() == ["boot", "52:54:00:12:34:56.ipxe"])
        #expect(try RequestPath.segments("/v1/images/").get() == ["v1", "images"])
        for bad in ["/v1/images/win11/1/../x", "/v1/images/win11/1/%2e%2e/x", "/v1/images/win11/1/a%2Fb", "/v1/%00", "/v1/%zz", "v1"] {
            #expect(throws: GatewayError.self, "\(bad)") { try RequestPath.segments(bad).get() }
        }
    }
}
