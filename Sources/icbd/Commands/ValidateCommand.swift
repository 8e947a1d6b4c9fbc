import ArgumentParser

/// `icbd validate-command ARGS...` (hidden): parses ARGS as an `icbd` command line, with every
/// check the command makes before it runs, and runs nothing. Deployment files (docker-compose)
/// are checked with it: each service's command must be one `icbd` accepts.
struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate-command", abstract: "Check that ARGS is a command line icbd accepts, without running it.",
        shouldDisplay: false)

    @Argument(parsing: .captureForPassthrough, help: "An icbd command line, without the leading `icbd`.")
    var arguments: [String] = []

    func run() throws {
        guard !arguments.isEmpty else { throw ValidationError("give the command line to check, e.g. catalog --listen 0.0.0.0:7000 ...") }
        let command = try ICBD.parseAsRoot(arguments)
        print("ok: icbd \(type(of: command).configuration.commandName ?? "") accepts \(arguments.joined(separator: " "))")
    }
}
