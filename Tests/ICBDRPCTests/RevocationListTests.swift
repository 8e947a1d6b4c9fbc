import ICBDRPC
import Logging
import Testing

@Suite("The revocation list a server holds")
struct RevocationListTests {
    @Test func aSerialIsTheSameHoweverItIsWritten() throws {
        let canonical = try #require(CertificateSerial(parsing: "3a:5f:0"))
        #expect(canonical.hex == "3a5f00")
        #expect(CertificateSerial(parsing: "serial=3A5F00") == canonical, "as openssl prints it")
        #expect(CertificateSerial(parsing: "003A5F00") == canonical, "a DER integer's sign byte")
        for bad in ["", "serial=", "3g", "+3", "-1", "3a::5f", "00", String(repeating: "ab", count: 21), "3a5f\n"] {
            #expect(CertificateSerial(parsing: bad) == nil, "\(bad)")
        }
    }

    /// A catalog (or a peer impersonating one) cannot make a server hold an unbounded list.
    @Test func theListHeldIsCapped() {
        let list = RevocationList()
        let serials = (1...(RevocationList.maximumEntries + 500)).map { number in
            CertificateSerial(parsing: String(number, radix: 16))!
        }
        list.replace(with: serials, logger: Logger(label: "test"))
        #expect(list.serials.count == RevocationList.maximumEntries)
        #expect(list.isRevoked(serials[0]))
        list.replace(with: [], logger: Logger(label: "test"))
        #expect(!list.isRevoked(serials[0]), "a list replaced, not merged")
    }
}
