import Foundation
import ICBDProcess

/// nginx (Debian nginx-light: 2 workers, sendfile) serving one directory on a free loopback
/// port, while ``with(root:directory:locations:_:)`` runs: the baseline of the gateway and storm
/// benches.
final class Nginx: Sendable {
    let port: Int
    private let daemon: SpawnedChild

    /// The master's pid (`daemon off`): its workers are its children (``ProcessCPU``).
    var pid: pid_t { daemon.pid }

    private init(port: Int, daemon: SpawnedChild) {
        self.port = port
        self.daemon = daemon
    }

    /// Runs `body` with nginx serving `root`, its files in `directory`; stops it afterwards.
    /// `locations`: more lines of the `server` block (e.g. `location` blocks).
    static func with<R>(root: String, directory: String, locations: String = "", _ body: (Nginx) async throws -> R) async throws -> R {
        let nginx = try await start(root: root, directory: directory, locations: locations)
        do {
            let result = try await body(nginx)
            await nginx.stop()
            return result
        } catch {
            await nginx.stop()
            throw error
        }
    }

    private static func start(root: String, directory: String, locations: String) async throws -> Nginx {
        var chosen: Int?
        for _ in 0..<20 {
            let candidate = Int.random(in: 20_000..<60_000)
            let probe = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(probe)
            if bound == 0 { chosen = candidate; break }
        }
        guard let chosen else { throw BenchError("no free port for nginx") }
        let configuration = """
            worker_processes 2;
            daemon off;
            pid \(directory)/nginx.pid;
            error_log \(directory)/nginx-error.log;
            events { worker_connections 1024; }
            http {
              access_log off;
              sendfile on;
              client_body_temp_path \(directory)/nginx-body;
              proxy_temp_path \(directory)/nginx-proxy;
              fastcgi_temp_path \(directory)/nginx-fastcgi;
              uwsgi_temp_path \(directory)/nginx-uwsgi;
              scgi_temp_path \(directory)/nginx-scgi;
              server { listen 127.0.0.1:\(chosen); root \(root); \(locations) }
            }
            """
        let path = directory + "/nginx.conf"
        try configuration.write(toFile: path, atomically: true, encoding: .utf8)
        let nginx = Nginx(port: chosen, daemon: try await SpawnedChild("/usr/sbin/nginx", ["-c", path, "-e", "\(directory)/nginx-error.log"]))
        for _ in 0..<100 {
            // Any HTTP answer (curl without -f) means it listens.
            if (try? await SystemCommand.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "http://127.0.0.1:\(chosen)/"])) != nil { return nginx }
            try await Task.sleep(for: .milliseconds(50))
        }
        await nginx.stop()
        throw BenchError("nginx did not start (see \(directory)/nginx-error.log)")
    }

    private func stop() async {
        // SIGTERM: a fast stop of the master and its workers.
        daemon.send(SIGTERM)
        _ = try? await daemon.exit()
    }
}
