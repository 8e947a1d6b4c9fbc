import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A real HTTP/1.1 client over a real TCP socket that sends several requests in one write
/// (pipelined, as HTTP/1.1 allows) and reads the responses, in order, until the server closes
/// the connection (the last request should ask it to: `Connection: close`).
enum PipelinedExchange {
    struct Answer {
        let status: Int
        /// Field names in lower case.
        let headers: [String: String]
        let body: [UInt8]
    }

    /// `GET path` with an optional range and `Connection: close`.
    static func get(_ path: String, range: ClosedRange<Int>? = nil, close: Bool = false) -> String {
        "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n" + (range.map { "Range: bytes=\($0.lowerBound)-\($0.upperBound)\r\n" } ?? "")
            + (close ? "Connection: close\r\n" : "") + "\r\n"
    }

    static func run(port: Int, requests: [String], seconds: Int = 60) throws -> [Answer] {
        let socket = try loopbackSocket(port: port)
        defer { close(socket) }
        let bytes = Array(requests.joined().utf8)
        guard send(socket, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw DeploymentError("send: errno \(errno)") }
        var timeout = timeval(tv_sec: seconds, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = recv(socket, &buffer, buffer.count, 0)
            if count == 0 { break }
            guard count > 0 else { throw DeploymentError("recv after \(received.count) bytes: errno \(errno)") }
            received += buffer[0..<count]
        }
        return try parse(received)
    }

    /// The responses in `bytes`, each with a Content-Length body.
    static func parse(_ bytes: [UInt8]) throws -> [Answer] {
        var answers: [Answer] = []
        var at = 0
        let separator: [UInt8] = Array("\r\n\r\n".utf8)
        while at < bytes.count {
            guard bytes.count - at >= 4, let end = (at...(bytes.count - 4)).first(where: { bytes[$0..<$0 + 4].elementsEqual(separator) }) else {
                throw DeploymentError("a response head without its end at byte \(at)")
            }
            let lines = String(decoding: bytes[at..<end], as: UTF8.self).components(separatedBy: "\r\n")
            let statusLine = lines[0].split(separator: " ")
            guard statusLine.count >= 2, let status = Int(statusLine[1]) else { throw DeploymentError("status line '\(lines[0])'") }
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            guard end + 4 + length <= bytes.count else { throw DeploymentError("a body of \(length) bytes cut short") }
            answers.append(Answer(status: status, headers: headers, body: Array(bytes[end + 4..<end + 4 + length])))
            at = end + 4 + length
        }
        return answers
    }
}
