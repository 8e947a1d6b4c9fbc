import Foundation
import ICBDProcess
import Synchronization

/// A real PostgreSQL server (Debian's `postgresql` package) for one test: its own cluster in a
/// temporary directory, listening on a free loopback port, run as the unprivileged user
/// `icbd-pg` when the tests run as root (PostgreSQL refuses root), and always stopped and
/// deleted at the end of ``with(_:)``. (Test support shared by the test targets.)
///
/// The cluster's superuser is `icbd` with a password (host connections use SCRAM), so tests
/// exercise the password path of `postgres://` URLs. Tests that only need a database of
/// their own share one server per test process (``sharedDatabase()``, each with a fresh
/// database), stopped when the test process exits.
///
/// The PostgreSQL tools run as children through ICBDProcess (awaited, never blocking one of the
/// few threads of Swift's cooperative pool that every test shares).
///
/// Where PostgreSQL is not installed, ``with(_:)`` prints why and returns nil — except in CI
/// (`CI` set in the environment), where it throws: PostgreSQL tests never skip there.
public final class PostgresServer: Sendable {
    /// The superuser the tests connect as.
    public static let user = "icbd"
    /// That user's password.
    public static let password = "icbd-test-\(UInt32.random(in: 0 ... .max))"
    /// The system user that runs the servers when the tests run as root.
    public static let systemUser = "icbd-pg"

    /// The loopback port the server listens on.
    public let port: Int
    /// The temporary directory holding the cluster, its log and its Unix socket.
    public let directory: String

    private init(port: Int, directory: String) {
        self.port = port
        self.directory = directory
    }

    /// `postgres://icbd@127.0.0.1:PORT/DATABASE?sslmode=disable` (the password goes by `PGPASSWORD`).
    public func url(database: String = "postgres") -> String {
        "postgres://\(Self.user)@127.0.0.1:\(port)/\(database)?sslmode=disable"
    }

    /// Runs `body` with a fresh server, stopped and deleted afterwards whatever happens.
    /// Returns nil, having printed the reason, where PostgreSQL is not installed (never in CI).
    public static func with<R>(_ body: (PostgresServer) async throws -> R) async throws -> R? {
        guard let server = try await start() else { return nil }
        do {
            let result = try await body(server)
            await server.stop()
            return result
        } catch {
            await server.stop()
            throw error
        }
    }

    /// Creates an empty database on this server.
    public func createDatabase(_ name: String) async throws {
        try await Self.runAsServerUser(
            "\(Self.binDirectory)/createdb", ["-h", directory, "-p", "\(port)", "-U", Self.user, name], in: directory)
    }

    /// Runs SQL through `psql` as the superuser (for tests that tamper with a database).
    @discardableResult
    public func psql(_ sql: String, database: String) async throws -> String {
        try await Self.runAsServerUser(
            "\(Self.binDirectory)/psql",
            ["-h", directory, "-p", "\(port)", "-U", Self.user, "-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql], in: directory)
    }

    /// Stops the server (fast shutdown: open connections are closed), keeping its data.
    public func shutDown() async throws {
        try await Self.runAsServerUser("\(Self.binDirectory)/pg_ctl", ["-D", dataDirectory, "-m", "fast", "-w", "stop"], in: directory)
    }

    /// Starts the stopped server again on the same port.
    public func startAgain() async throws {
        try await Self.pgCtlStart(dataDirectory: dataDirectory, port: port, directory: directory)
    }

    private var dataDirectory: String { directory + "/data" }

    /// Stops the server at once and deletes its directory. Runs to its end also when the
    /// caller's task is cancelled (a cleanup path).
    public func stop() async {
        await Task {
            _ = try? await Self.runAsServerUser(
                "\(Self.binDirectory)/pg_ctl", ["-D", dataDirectory, "-m", "immediate", "-w", "stop"], in: directory)
        }.value
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// At the test process's exit, where nothing can be awaited (the exiting thread may block):
    /// an immediate shutdown as `pg_ctl -m immediate -w` makes it (SIGQUIT to the postmaster,
    /// then up to 10 s for it to go), then the directory is deleted.
    private func stopImmediately() {
        if let pid = (try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8))?
            .split(separator: "\n").first.flatMap({ pid_t($0) }), pid > 0, kill(pid, SIGQUIT) == 0
        {
            for _ in 0..<200 where kill(pid, 0) == 0 { usleep(50_000) }
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Starting

    static let binDirectory = "/usr/lib/postgresql/15/bin"

    /// Whether PostgreSQL tests can run here; in CI they must (throws when they cannot).
    public static func isAvailable() throws -> Bool {
        try locateBinaries() != nil
    }

    private static func locateBinaries() throws -> String? {
        let needed = ["initdb", "pg_ctl", "createdb", "psql"]
        if needed.allSatisfy({ FileManager.default.isExecutableFile(atPath: "\(binDirectory)/\($0)") }) { return binDirectory }
        let reason = "PostgreSQL 15 is not installed (\(binDirectory)/initdb missing); run scripts/bootstrap as root"
        if ProcessInfo.processInfo.environment["CI"] != nil {
            throw PostgresServerError("PostgreSQL tests must not skip in CI: \(reason)")
        }
        print("skipping PostgreSQL test: \(reason)")
        return nil
    }

    /// Starts a fresh server; nil (with the reason printed) where PostgreSQL is not installed
    /// and this is not CI. Stop it with ``stop()``.
    public static func start() async throws -> PostgresServer? {
        guard try locateBinaries() != nil else { return nil }
        await reapOrphans()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("icbd-pg-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        do {
            try Data("\(getpid())".utf8).write(to: URL(fileURLWithPath: directory + "/owner"))
            let passwordFile = directory + "/password"
            try Data(password.utf8).write(to: URL(fileURLWithPath: passwordFile))
            try await chownToServerUser(directory)
            try await runAsServerUser(
                "\(binDirectory)/initdb",
                [
                    "-D", directory + "/data", "-U", user, "--pwfile=\(passwordFile)", "--auth-local=trust", "--auth-host=scram-sha-256",
                    "--no-sync", "--no-instructions", "-E", "UTF8", "--locale=C.UTF-8",
                ], in: directory)
            var lastError: (any Error)?
            for _ in 0..<5 {  // a free port may be taken between choosing and binding it
                let port = try freeLoopbackPort()
                do {
                    try await pgCtlStart(dataDirectory: directory + "/data", port: port, directory: directory)
                    return PostgresServer(port: port, directory: directory)
                } catch {
                    lastError = error
                }
            }
            throw lastError ?? PostgresServerError("PostgreSQL did not start")
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw error
        }
    }

    /// Stops and deletes the servers of test processes that died without stopping them (killed
    /// by a signal: no `atexit`), so that aborted runs do not pile up servers and ports.
    private static func reapOrphans() async {
        let temporary = FileManager.default.temporaryDirectory.path
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
        for entry in entries where entry.hasPrefix("icbd-pg-") {
            let directory = temporary + "/" + entry
            guard let owner = (try? String(contentsOfFile: directory + "/owner", encoding: .utf8)).flatMap({ pid_t($0) }),
                kill(owner, 0) == -1, errno == ESRCH
            else { continue }
            await PostgresServer(port: 0, directory: directory).stop()
        }
    }

    private static func pgCtlStart(dataDirectory: String, port: Int, directory: String) async throws {
        let options = "-p \(port) -h 127.0.0.1 -k \(directory) -c fsync=off -c shared_buffers=16MB -c max_connections=300"
        try await runAsServerUser(
            "\(binDirectory)/pg_ctl", ["-D", dataDirectory, "-l", directory + "/server.log", "-o", options, "-w", "-t", "60", "start"],
            in: directory)
    }

    // MARK: Shared

    /// The server this test process shares, started on first use and stopped at exit.
    private actor Shared {
        static let instance = Shared()
        private var starting: Task<PostgresServer?, any Error>?
        private var databases = 0

        func database() async throws -> (server: PostgresServer, database: String)? {
            let task =
                starting
                ?? Task {
                    guard let server = try await PostgresServer.start() else { return nil }
                    PostgresServer.stopAtExit(server)
                    return server
                }
            starting = task
            guard let server = try await task.value else { return nil }
            databases += 1
            let name = "catalog_\(databases)"
            try await server.createDatabase(name)
            return (server, name)
        }
    }

    /// A fresh database on the server this test process shares. Nil where PostgreSQL is not
    /// installed and this is not CI.
    public static func sharedDatabase() async throws -> (server: PostgresServer, database: String)? {
        try await Shared.instance.database()
    }

    private static let exitServers = Mutex<[PostgresServer]>([])

    private static func stopAtExit(_ server: PostgresServer) {
        let first = exitServers.withLock { servers in
            servers.append(server)
            return servers.count == 1
        }
        if first {
            atexit {
                for server in PostgresServer.exitServers.withLock({ $0 }) { server.stopImmediately() }
            }
        }
    }

    // MARK: Processes

    private static var runningAsRoot: Bool { getuid() == 0 }

    private static func ensureServerUser() async throws {
        guard runningAsRoot else { return }
        if (try? await SystemCommand.run("/usr/bin/id", [systemUser])) != nil { return }
        do {
            try await SystemCommand.run(
                "/usr/sbin/useradd",
                ["--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", systemUser])
        } catch {
            // Another test process may have created it at the same moment.
            guard (try? await SystemCommand.run("/usr/bin/id", [systemUser])) != nil else { throw error }
        }
    }

    fileprivate static func chownToServerUser(_ path: String) async throws {
        guard runningAsRoot else { return }
        try await ensureServerUser()
        try await SystemCommand.run("/bin/chown", ["-R", "\(systemUser):", path])
    }

    /// Runs a PostgreSQL tool as `icbd-pg` (when root) through ICBDProcess, its output in files
    /// (``ChildRun/run(_:_:killAfter:environment:)``), so that a server it leaves running
    /// (`pg_ctl start`) holds no pipe of ours. Returns its standard output.
    @discardableResult
    fileprivate static func runAsServerUser(_ executable: String, _ arguments: [String], in directory: String) async throws -> String {
        let argv = runningAsRoot ? ["/usr/sbin/runuser", "-u", systemUser, "--", executable] + arguments : [executable] + arguments
        let (exit, stdout, stderr) = try await ChildRun.run(argv[0], Array(argv.dropFirst()), environment: ["PGPASSWORD": password])
        guard exit.succeeded else {
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8))?.suffix(2000) ?? ""
            throw PostgresServerError(
                "\((executable as NSString).lastPathComponent) \(arguments.joined(separator: " ")) \(exit): \(stdout)\(stderr)\(log.isEmpty ? "" : "\nserver log: \(log)")"
            )
        }
        return stdout
    }

    private static func freeLoopbackPort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw PostgresServerError("socket() failed: errno \(errno)") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw PostgresServerError("bind() failed: errno \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { throw PostgresServerError("getsockname() failed: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
