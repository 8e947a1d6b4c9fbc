import Foundation

/// The process's open-file limit, raised from its soft value to its hard one at start.
///
/// A server holds a descriptor per connection, and its connection cap (4096 by default,
/// `RPCServerConfiguration.maximumConnections`) is counted against them; a soft limit of 1024,
/// the usual default, would make a busy server fail accepts (EMFILE) long before its own cap.
enum DescriptorLimit {
    /// Raises the soft limit to the hard limit; returns the soft limit now in force.
    @discardableResult
    static func raise() -> rlim_t {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return raised.rlim_cur }
        }
        return limit.rlim_cur
    }
}
