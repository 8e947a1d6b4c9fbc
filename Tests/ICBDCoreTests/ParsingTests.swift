import ICBDCore
import Testing

@Suite("Names, sizes and addresses")
struct ParsingTests {
    @Test(arguments: ["win11", "ubuntu-24.04", "a", "0_x", String(repeating: "a", count: 64)])
    func validNames(_ text: String) throws {
        #expect(try Name(text).rawValue == text)
    }

    @Test(arguments: ["", "Win11", "-x", ".x", "a/b", "a b", "é", String(repeating: "a", count: 65)])
    func invalidNamesSayWhy(_ text: String) {
        #expect(throws: NameError.self) { try Name(text) }
    }

    @Test(arguments: [("512MiB", Int64(512) << 20), ("20GiB", 20 << 30), ("4096", 4096), ("1 TiB", 1 << 40), ("3MB", 3_000_000)])
    func sizes(_ text: String, bytes: Int64) throws {
        #expect(try ByteSize(parsing: text).bytes == bytes)
    }

    @Test(arguments: ["", "MiB", "12XB", "-1GiB", "99999999999999999999GiB"])
    func badSizes(_ text: String) {
        #expect(throws: ByteSizeError.self) { try ByteSize(parsing: text) }
    }

    @Test func addresses() throws {
        #expect(try HostPort(parsing: "127.0.0.1:0") == HostPort(host: "127.0.0.1", port: 0))
        #expect(try HostPort(parsing: "[::1]:7000") == HostPort(host: "::1", port: 7000))
        #expect(try HostPort(parsing: "catalog.hq:7000").description == "catalog.hq:7000")
        for bad in ["", "host", ":80", "host:", "host:70000", "[::1]7000"] {
            #expect(throws: HostPortError.self, "\(bad)") { try HostPort(parsing: bad) }
        }
    }
}
