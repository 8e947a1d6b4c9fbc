import Foundation
import Logging

/// A logger for a test's services and clients: silent, unless `ICBD_TEST_LOG` names a level
/// (trace, debug, …) to debug a test with.
public func quietLogger(label: String = "test") -> Logger {
    var logger = Logger(label: label)
    logger.logLevel = ProcessInfo.processInfo.environment["ICBD_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}
