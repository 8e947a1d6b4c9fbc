import ICBDCore
import Testing

@Suite("Catalog: addresses, ranges, MACs and references")
struct CatalogParsingTests {
    @Test(arguments: [
        ("10.1.0.0/16", "10.1.0.0/16"),
        ("0.0.0.0/0", "0.0.0.0/0"),
        ("192.168.7.1/32", "192.168.7.1/32"),
        ("2001:db8::/32", "2001:db8::/32"),
        ("2001:DB8:0:0::/64", "2001:db8::/64"),
        ("::/0", "::/0"),
        ("::ffff:10.0.0.0/104", "::ffff:a00:0/104"),
        ("fe80:0:0:0:0:0:0:1/128", "fe80::1/128"),
    ])
    func validRangesParseToOneSpelling(text: String, canonical: String) throws {
        #expect(try CIDR(parsing: text).description == canonical)
    }

    @Test(arguments: [
        ("10.1.0.0", "prefix length"),
        ("10.1.0.0/33", "0 to 32"),
        ("10.1.2.3/16", "did you mean 10.1.0.0/16"),
        ("10.1.0/16", "not an IPv4 address"),
        ("010.1.0.0/16", "not an IPv4 address"),
        ("256.1.0.0/16", "not an IPv4 address"),
        ("2001:db8::1::/64", "not an IPv6 address"),
        ("2001:db8::/129", "0 to 128"),
        ("2001:db8::1/64", "host bits"),
        ("/8", "not an IPv4 address"),
        ("10.0.0.0/-1", "prefix length"),
    ])
    func invalidRangesSayWhatIsWrong(text: String, problem: String) {
        #expect(throws: CIDRError.self) { try CIDR(parsing: text) }
        do {
            _ = try CIDR(parsing: text)
        } catch {
            #expect(error.description.contains(problem), "\(error)")
            #expect(error.description.contains(text))
        }
    }

    @Test(arguments: [
        ("0.0.0.0", [0, 0, 0, 0] as [UInt8]?), ("10.9.0.1", [10, 9, 0, 1]), ("255.255.255.255", [255, 255, 255, 255]),
        ("192.168.100.7", [192, 168, 100, 7]), ("256.0.0.1", nil), ("1.2.3", nil), ("1.2.3.4.5", nil), ("01.2.3.4", nil),
        ("1.2.3.00", nil), ("1..3.4", nil), ("1.2.3.", nil), (".1.2.3", nil), ("1.2.3.4 ", nil), ("1.2.3.-4", nil),
        ("1000.2.3.4", nil), ("", nil), ("１.2.3.4", nil),
    ])
    func ipv4AddressesParseStrictly(text: String, bytes: [UInt8]?) {
        #expect((try? IPAddress(parsing: text))?.bytes == bytes, "\(text)")
    }

    @Test(arguments: [
        ("10.0.0.0/8", "10.1.0.0/16", true),
        ("10.1.0.0/16", "10.0.0.0/8", true),
        ("10.1.0.0/16", "10.2.0.0/16", false),
        ("10.1.0.0/24", "10.1.0.0/24", true),
        ("0.0.0.0/0", "192.168.0.0/16", true),
        ("2001:db8::/32", "2001:db8:1::/48", true),
        ("2001:db8::/32", "2001:db9::/32", false),
        ("10.0.0.0/8", "::/0", false),
    ])
    func overlapIsSymmetricContainment(a: String, b: String, overlaps: Bool) throws {
        let first = try CIDR(parsing: a)
        let second = try CIDR(parsing: b)
        #expect(first.overlaps(second) == overlaps)
        #expect(second.overlaps(first) == overlaps)
    }

    @Test func containmentChecksTheFamilyAndTheMask() throws {
        let range = try CIDR(parsing: "10.1.0.0/16")
        #expect(range.contains(try IPAddress(parsing: "10.1.255.7")))
        #expect(!range.contains(try IPAddress(parsing: "10.2.0.1")))
        #expect(!range.contains(try IPAddress(parsing: "::ffff:10.1.0.1")))
        #expect(try CIDR(parsing: "2001:db8::/32").contains(try IPAddress(parsing: "2001:db8:ffff::1")))
    }

    @Test(arguments: [
        ("52:54:00:12:34:56", "52:54:00:12:34:56"),
        ("52-54-00-AB-cd-0F", "52:54:00:ab:cd:0f"),
        ("525400123456", "52:54:00:12:34:56"),
    ])
    func macAddressesHaveOneSpelling(text: String, canonical: String) throws {
        #expect(try MACAddress(parsing: text).description == canonical)
    }

    @Test(arguments: ["52:54:00:12:34", "52:54:00-12:34:56", "52:54:00:12:34:5g", "", "52%3A54%3A00%3A12%3A34%3A56"])
    func badMACAddressesAreRefused(text: String) {
        #expect(throws: MACAddressError.self) { try MACAddress(parsing: text) }
    }

    @Test func imageReferencesReadNumbersAsVersionsAndNamesAsTags() throws {
        #expect(try ImageReference(parsing: "win11").version == .latest)
        #expect(try ImageReference(parsing: "win11:7").version == .number(7))
        #expect(try ImageReference(parsing: "win11:stable").version == .tag(try Name("stable")))
        #expect(throws: NameError.self) { try ImageReference(parsing: "win11:") }
        #expect(throws: NameError.self) { try ImageReference(parsing: "Win11:1") }
        #expect(throws: NameError.self) { try ImageReference(parsing: "win11:0") }
    }

    @Test(arguments: ["disk.raw", "vmlinuz", "boot/initrd.img", "vm.xml"])
    func versionFilePathsAcceptRelativePaths(path: String) throws {
        #expect(try VersionFilePath(path).rawValue == path)
    }

    @Test(arguments: ["", "/etc/passwd", "../x", "a//b", "a/./b", "a/", "dísk.raw", "a b"])
    func versionFilePathsRefuseEscapes(path: String) {
        #expect(throws: VersionFilePathError.self) { try VersionFilePath(path) }
    }

    @Test func manifestDigestCoversSizesAsWellAsEntries() {
        let entries = [UInt8](repeating: 7, count: 64)
        let digest = ChunkManifest.digest(fileSize: 2 << 20, chunkSize: 1 << 20, entries: entries)
        #expect(digest.count == 32)
        #expect(digest != ChunkManifest.digest(fileSize: (2 << 20) - 1, chunkSize: 1 << 20, entries: entries))
        #expect(digest != ChunkManifest.digest(fileSize: 2 << 20, chunkSize: 2 << 20, entries: entries))
        var hasher = ChunkManifest.Hasher(fileSize: 2 << 20, chunkSize: 1 << 20)
        hasher.update(entries: Array(entries[0..<10]))
        hasher.update(entries: Array(entries[10...]))
        #expect(hasher.finalize() == digest)
        #expect([UInt8](hex: digest.hexString) == digest)
        #expect(ChunkManifest.chunkCount(fileSize: 0, chunkSize: 1 << 20) == 0)
        #expect(ChunkManifest.chunkCount(fileSize: 1, chunkSize: 1 << 20) == 1)
        #expect(ChunkManifest.chunkCount(fileSize: 80 << 30, chunkSize: 1 << 20) == 81_920)
    }
}
