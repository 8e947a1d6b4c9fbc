/// What a `Range` header asks of a representation of `size` bytes (RFC 9110 §14).
///
/// Only single byte ranges are served as 206; several ranges are answered with the whole body
/// (200), which RFC 9110 allows and every client copes with. A header in another unit is
/// ignored; a `bytes=` header that does not parse is a bad request.
enum ByteRangeRequest: Equatable, Sendable {
    /// No range (or one to ignore): the whole body, 200.
    case whole
    /// One satisfiable range: 206 with `Content-Range: bytes lower-upper/size` (`upper` inclusive).
    case partial(ClosedRange<Int64>)
    /// Nothing of the body is selected: 416 with `Content-Range: bytes */size`.
    case unsatisfiable
    /// The header is malformed: 400 with this reason.
    case malformed(String)

    /// At most this many ranges are read in one header; more are malformed (a cheap denial of service otherwise).
    static let maximumRanges = 64

    init(header: String?, size: Int64) {
        guard let header else { self = .whole; return }
        // Byte-wise throughout: every delimiter is ASCII, and this runs for every range read.
        let trimmed = header.trimmingSpaces
        guard let equals = trimmed.utf8.firstIndex(of: UInt8(ascii: "=")) else { self = .malformed("Range must read bytes=FIRST-LAST"); return }
        guard Self.isBytesUnit(trimmed[..<equals].trimmingSpaces) else { self = .whole; return }
        let specs = trimmed.utf8[trimmed.utf8.index(after: equals)...].split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false)
        guard specs.count <= Self.maximumRanges else { self = .malformed("Range has more than \(Self.maximumRanges) ranges"); return }
        var satisfiable: [ClosedRange<Int64>] = []
        for spec in specs {
            switch Self.parse(trimmed[spec.startIndex..<spec.endIndex].trimmingSpaces, size: size) {
            case .failure(let failure): self = .malformed(failure.reason); return
            case .success(let range?): satisfiable.append(range)
            case .success(nil): break
            }
        }
        if satisfiable.isEmpty {
            self = .unsatisfiable
        } else if specs.count == 1, let only = satisfiable.first {
            self = .partial(only)
        } else {
            self = .whole
        }
    }

    /// `bytes`, in any case.
    private static func isBytesUnit(_ unit: Substring) -> Bool {
        unit.utf8.count == 5 && zip(unit.utf8, "bytes".utf8).allSatisfy { $0 | 0x20 == $1 }
    }

    /// One `first-last`, `first-` or `-suffix`: the range it selects (nil: unsatisfiable).
    private static func parse(_ spec: Substring, size: Int64) -> Result<ClosedRange<Int64>?, ByteRangeParseFailure> {
        guard let dash = spec.utf8.firstIndex(of: UInt8(ascii: "-")) else { return .failure("a range needs a '-': bytes=FIRST-LAST, FIRST- or -SUFFIX") }
        let first = spec[..<dash]
        let last = spec[spec.utf8.index(after: dash)...]
        if first.isEmpty {
            guard let suffix = number(last) else { return .failure("'\(spec)' is not a suffix range -N") }
            guard suffix > 0, size > 0 else { return .success(nil) }
            return .success(max(0, size - suffix)...(size - 1))
        }
        guard let lower = number(first) else { return .failure("'\(spec)' does not start with a byte position") }
        var upper = size - 1
        if !last.isEmpty {
            guard let parsed = number(last) else { return .failure("'\(spec)' does not end with a byte position") }
            guard parsed >= lower else { return .failure("'\(spec)' ends before it starts") }
            upper = min(parsed, size - 1)
        }
        guard lower < size else { return .success(nil) }
        return .success(lower...upper)
    }

    /// Decimal digits only, no sign, at most 18 of them (fits Int64).
    private static func number(_ text: Substring) -> Int64? {
        guard !text.isEmpty, text.utf8.count <= 18, text.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) else {
            return nil
        }
        return Int64(text)
    }
}

/// Why a range spec does not parse.
struct ByteRangeParseFailure: Error, ExpressibleByStringLiteral, ExpressibleByStringInterpolation {
    let reason: String
    init(stringLiteral value: String) { reason = value }
    init(stringInterpolation: DefaultStringInterpolation) { reason = String(stringInterpolation: stringInterpolation) }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (HTTP's optional whitespace).
    var trimmingSpaces: Substring {
        let text = Substring(self)
        let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = text.utf8.firstIndex(where: { !isSpace($0) }), let last = text.utf8.lastIndex(where: { !isSpace($0) }) else {
            return text[text.endIndex...]
        }
        return text[first..<text.utf8.index(after: last)]
    }
}
