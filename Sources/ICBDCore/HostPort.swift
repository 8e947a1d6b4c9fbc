/// A `HOST:PORT` pair as given on the command line (`127.0.0.1:0`, `[::1]:7000`, `catalog.hq:7000`).
public struct HostPort: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`; IPv6 addresses go in brackets.
    public init(parsing text: String) throws(HostPortError) {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                throw HostPortError(text: text, problem: "an IPv6 address must look like [::1]:PORT")
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else {
                throw HostPortError(text: text, problem: "the port is missing")
            }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty else { throw HostPortError(text: text, problem: "the host is missing") }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw HostPortError(text: text, problem: "the port must be a number from 0 to 65535")
        }
        self.init(host: String(host), port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// A `HOST:PORT` that does not parse.
public struct HostPortError: Error, Sendable, CustomStringConvertible {
    public let text: String
    public let problem: String
    public var description: String { "invalid address '\(text)': \(problem) (expected HOST:PORT)" }
}
