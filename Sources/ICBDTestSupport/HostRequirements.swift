import Foundation
import Testing

/// What a test needs of the machine beyond the package's own code, declared as Swift Testing
/// traits on the test or its suite: where the machine lacks it, the run reports the test as
/// skipped with the reason, never as passed. (Test support shared by the test targets.)
///
/// CI (`CI` set in the environment) runs as root with everything `scripts/bootstrap` installs;
/// there a missing requirement fails the test instead of skipping it.
extension Trait where Self == ConditionTrait {
    /// The test mounts loop-file BTRFS filesystems (``LoopBtrfs``), which needs root.
    public static var requiresLoopBtrfs: Self {
        requires(LoopBtrfs.canMount, "needs root to loop-mount BTRFS (CI runs as root)")
    }

    /// The test needs root to do `purpose` (e.g. "mount a tmpfs").
    public static func requiresRoot(to purpose: String) -> Self {
        requires(getuid() == 0, "needs root to \(purpose) (CI runs as root)")
    }

    /// The test runs the program at `path`, which `installedBy` says how to install.
    public static func requiresProgram(_ path: String, installedBy: String) -> Self {
        requires(FileManager.default.isExecutableFile(atPath: path), "needs \(path) (\(installedBy))")
    }

    /// The test starts PostgreSQL servers (``PostgresServer``).
    public static var requiresPostgreSQL: Self {
        requires(try PostgresServer.isAvailable(), "needs PostgreSQL 15 (scripts/bootstrap installs it)")
    }

    /// Enabled where `condition` holds; elsewhere skipped with `reason`, or failed in CI.
    private static func requires(_ condition: @autoclosure @escaping @Sendable () throws -> Bool, _ reason: String) -> Self {
        .enabled(Comment(rawValue: reason)) {
            if try condition() { return true }
            if ProcessInfo.processInfo.environment["CI"] != nil {
                throw HostRequirementError("CI runs every test, but this one \(reason) and cannot run here")
            }
            return false
        }
    }
}

/// A requirement of a test that the machine does not meet, in CI (where tests never skip).
struct HostRequirementError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
