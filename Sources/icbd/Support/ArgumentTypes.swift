import ArgumentParser
import CacheNode
import Foundation
import ICBDCore
import Logging

// The types of icbd's options and arguments. A command declares an option with its domain type
// (`@Option var site: Name`, `@Option var listen: HostPort`, `@Option var role: NodeRole?`) and
// argument-parser refuses a bad value before the command runs, naming the option (exit 2).
//
// Two kinds of value:
// - Values with a fixed set of spellings (roles, log levels, policies) are
//   `ExpressibleByArgument` and `CaseIterable`: argument-parser lists the valid values in the
//   error ("Please provide one of 'replicator', 'cache' or 'gateway'"), in `--help`
//   ("values: ...") and in shell completions.
// - Values with a syntax (names, addresses, sizes, ranges) are `CommandLineValue`s, parsed by
//   the type's own parser in ICBDCore. `ExpressibleByArgument.init?(argument:)` could only say
//   "invalid"; the initializers below give argument-parser the parser as a transform instead, so
//   its error carries the parser's reason and the expected form: "The value '12XB' is invalid for
//   '--memory-cache <size>': invalid size '12XB': unknown unit 'XB'; use B, KiB, ... (e.g.
//   512MiB, 20GiB)".

extension Role: ExpressibleByArgument {}
extension NodeRole: ExpressibleByArgument {}
extension LinkCompression: ExpressibleByArgument {}
extension EvictionPolicyKind: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

/// A value written as one command-line word in a syntax of its own.
protocol CommandLineValue: Sendable {
    /// Parses `text`; the error says what is wrong and what a valid value looks like.
    init(commandLine text: String) throws

    /// The placeholder `--help` shows for the value (`--listen <host:port>`); nil: the
    /// option's own name.
    static var valueName: String? { get }
}

extension CommandLineValue {
    static var valueName: String? { nil }
}

extension Name: CommandLineValue {
    init(commandLine text: String) throws { try self.init(text) }
}

extension HostPort: CommandLineValue {
    init(commandLine text: String) throws { try self.init(parsing: text) }
    static var valueName: String? { "host:port" }
}

extension ByteSize: CommandLineValue {
    init(commandLine text: String) throws { try self.init(parsing: text) }
    static var valueName: String? { "size" }
}

extension MACAddress: CommandLineValue {
    init(commandLine text: String) throws { try self.init(parsing: text) }
}

extension CIDR: CommandLineValue {
    init(commandLine text: String) throws { try self.init(parsing: text) }
    static var valueName: String? { "cidr" }
}

extension ImageReference: CommandLineValue {
    init(commandLine text: String) throws { try self.init(parsing: text) }
    static var valueName: String? { "image[:ref]" }
}

/// `HOST:PORT[,HOST:PORT…]`: one `--catalog` value, a comma list of catalog processes.
struct HostPortList: CommandLineValue {
    let addresses: [HostPort]

    init(commandLine text: String) throws {
        addresses = try text.split(separator: ",", omittingEmptySubsequences: false).map {
            try HostPort(parsing: $0.trimmingCharacters(in: .whitespaces))
        }
    }

    static var valueName: String? { "host:port" }
}

/// `SITE[=RATE][,compression=auto|on|off]`: a WAN link of `icbd site add --link`.
extension SiteLink: CommandLineValue {
    init(commandLine text: String) throws {
        var settings = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let parts = settings.removeFirst().split(separator: "=", maxSplits: 1).map(String.init)
        self.init(site: try Name(parts.first ?? ""), rateBytesPerSecond: 0)
        if parts.count == 2 { rateBytesPerSecond = try ByteSize(parsing: parts[1]).bytes }
        for setting in settings {
            let pair = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2, pair[0] == "compression", let compression = LinkCompression(rawValue: pair[1]) else {
                throw CommandLineValueError("'\(setting)' is not compression=auto, compression=on or compression=off")
            }
            self.compression = compression
        }
    }
}

/// A word that is not a value of its type: the message says why.
struct CommandLineValueError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

// MARK: - Options and arguments of CommandLineValue types

extension ArgumentHelp {
    /// This help with the value's placeholder and, given one, its default, shown as
    /// argument-parser shows those of the types it parses itself.
    fileprivate static func of<Value: CommandLineValue>(_ help: ArgumentHelp?, _ type: Value.Type, default value: String? = nil)
        -> ArgumentHelp
    {
        var help = help ?? ArgumentHelp()
        help.valueName = help.valueName ?? Value.valueName
        if let value { help.abstract += " (default: \(value))" }
        return help
    }
}

extension Option where Value: CommandLineValue {
    /// A required option.
    init(name: NameSpecification = .long, help: ArgumentHelp? = nil) {
        self.init(name: name, help: .of(help, Value.self), transform: { try Value(commandLine: $0) })
    }
}

extension Option where Value: CommandLineValue & CustomStringConvertible {
    /// An option with a default, shown in `--help` as the value is written.
    init(wrappedValue: Value, name: NameSpecification = .long, help: ArgumentHelp? = nil) {
        self.init(
            wrappedValue: wrappedValue, name: name, help: .of(help, Value.self, default: wrappedValue.description),
            transform: { try Value(commandLine: $0) })
    }
}

extension Option {
    /// An option that may be left out (nil).
    init<Element: CommandLineValue>(name: NameSpecification = .long, help: ArgumentHelp? = nil) where Value == Element? {
        self.init(name: name, help: .of(help, Element.self), transform: { try Element(commandLine: $0) })
    }

    /// An option given any number of times, at least once.
    init<Element: CommandLineValue>(name: NameSpecification = .long, help: ArgumentHelp? = nil) where Value == [Element] {
        self.init(name: name, help: .of(help, Element.self), transform: { try Element(commandLine: $0) })
    }

    /// An option given any number of times, or not at all.
    init<Element: CommandLineValue>(wrappedValue: [Element], name: NameSpecification = .long, help: ArgumentHelp? = nil)
    where Value == [Element] {
        self.init(wrappedValue: wrappedValue, name: name, help: .of(help, Element.self), transform: { try Element(commandLine: $0) })
    }
}

extension Argument where Value: CommandLineValue {
    /// A required positional argument.
    init(help: ArgumentHelp? = nil) {
        self.init(help: .of(help, Value.self), transform: { try Value(commandLine: $0) })
    }
}

/// `5%,25%,100%`: the slices of a rollout, each a percentage of the workstations (at most two
/// decimals), in basis points.
struct RolloutSteps: CommandLineValue {
    let basisPoints: [Int]

    init(commandLine text: String) throws {
        basisPoints = try text.split(separator: ",", omittingEmptySubsequences: false).map { word in
            let number = word.trimmingCharacters(in: .whitespaces)
            guard number.hasSuffix("%"), let percent = Double(number.dropLast()), percent.isFinite,
                let basisPoints = Int(exactly: (percent * 100).rounded()), abs(percent * 100 - Double(basisPoints)) < 1e-6
            else {
                throw CommandLineValueError("'\(word)' is not a percentage such as 5% or 2.5%; give the steps as 5%,25%,100%")
            }
            return basisPoints
        }
    }

    static var valueName: String? { "percent,percent,…" }
}
