import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import ICBDSample

/// N workstations booting at once through one gateway; each one's time from its first request
/// to its last byte.
public struct BootStorm {
    public var gateway: String
    public var workstations: Int
    public var expected: ExpectedTemplate
    /// The first MAC's last three bytes; workstation i has the next ones.
    public var firstMAC: UInt32 = 0x10_0000

    public init(gateway: String, workstations: Int, expected: ExpectedTemplate) {
        self.gateway = gateway
        self.workstations = workstations
        self.expected = expected
    }

    /// Each completed boot's seconds, the bytes read and checked, and what failed.
    public struct Outcome {
        public var seconds: [Double] = []
        public var bytes: Int64 = 0
        public var failures: [String] = []

        public func percentile(_ p: Double) -> Double {
            let sorted = seconds.sorted()
            guard !sorted.isEmpty else { return 0 }
            return sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
        }
    }

    public func run() async throws -> Outcome {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: max(8, workstations))
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(120))
        let client = HTTPClient(eventLoopGroupProvider: .shared(MultiThreadedEventLoopGroup.singleton), configuration: configuration)
        defer { _ = client.shutdown() }
        var outcome = Outcome()
        await withTaskGroup(of: Result<(Double, Int64), StormError>.self) { group in
            for index in 0..<workstations {
                let mac = Self.mac(firstMAC + UInt32(index))
                let workstation = Workstation(mac: mac, gateway: gateway, expected: expected)
                group.addTask {
                    let start = ContinuousClock.now
                    do {
                        let bytes = try await workstation.boot(with: client)
                        let elapsed = ContinuousClock.now - start
                        return .success((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, bytes))
                    } catch let error as StormError {
                        return .failure(error)
                    } catch {
                        return .failure(StormError("\(mac): \(error)"))
                    }
                }
            }
            for await result in group {
                switch result {
                case .success(let (seconds, bytes)):
                    outcome.seconds.append(seconds)
                    outcome.bytes += bytes
                case .failure(let error):
                    outcome.failures.append(error.description)
                }
            }
        }
        try await client.shutdown()
        return outcome
    }

    static func mac(_ low: UInt32) -> String {
        String(format: "52:54:00:%02x:%02x:%02x", (low >> 16) & 0xFF, (low >> 8) & 0xFF, low & 0xFF)
    }
}
