import AsyncHTTPClient
import Foundation
import ICBDCore
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
    /// Workstation i sends the (i+1)-th address of this IPv4 range as `X-Forwarded-For`, so that
    /// a gateway that trusts the storm's host (`--trusted-proxy`) tells the workstations apart;
    /// nil: none (they all boot from the storm's one address).
    public var clientAddresses: CIDR?
    /// A version whose kernel does not start (its boots fail by starting over, as a machine's
    /// would, until the gateway gives them another version: a rollout that rolled back).
    public var failVersion: Int64?
    /// How long a workstation waits before it starts over, and how often at most.
    public var restartDelay: Duration = .seconds(1)
    public var maximumRestarts = 60
    /// Whether each workstation sends the booted signal (`GET /boot/MAC/up`) once it booted,
    /// as an iCBD boot layer does (a gateway then records the boot as booted at once).
    public var sendsBootedSignal = false

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
        /// Workstations by the version they finally booted.
        public var versions: [Int64: Int] = [:]
        /// Boots of the failing version that started over.
        public var restarts = 0

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
        await withTaskGroup(of: Result<(Double, Workstation.Boot), StormError>.self) { group in
            for index in 0..<workstations {
                let mac = Self.mac(firstMAC + UInt32(index))
                var workstation = Workstation(mac: mac, gateway: gateway, expected: expected)
                workstation.address = clientAddresses.flatMap { Self.address($0, index) }
                workstation.failVersion = failVersion
                workstation.restartDelay = restartDelay
                workstation.maximumRestarts = maximumRestarts
                workstation.sendsBootedSignal = sendsBootedSignal
                group.addTask { [workstation] in
                    let start = ContinuousClock.now
                    do {
                        let boot = try await workstation.boot(with: client)
                        let elapsed = ContinuousClock.now - start
                        return .success((Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, boot))
                    } catch let error as StormError {
                        return .failure(error)
                    } catch {
                        return .failure(StormError("\(mac): \(error)"))
                    }
                }
            }
            for await result in group {
                switch result {
                case .success(let (seconds, boot)):
                    outcome.seconds.append(seconds)
                    outcome.bytes += boot.bytes
                    outcome.versions[boot.version, default: 0] += 1
                    outcome.restarts += boot.restarts
                case .failure(let error):
                    outcome.failures.append(error.description)
                }
            }
        }
        try await client.shutdown()
        return outcome
    }

    /// The (index+1)-th IPv4 address of `range`; nil past its end or for IPv6.
    static func address(_ range: CIDR, _ index: Int) -> String? {
        guard range.network.isIPv4, index + 1 < 1 << (32 - range.prefixLength) - 1 else { return nil }
        let base = range.network.bytes.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        let value = base + UInt32(index + 1)
        return "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
    }

    static func mac(_ low: UInt32) -> String {
        String(format: "52:54:00:%02x:%02x:%02x", (low >> 16) & 0xFF, (low >> 8) & 0xFF, low & 0xFF)
    }
}
