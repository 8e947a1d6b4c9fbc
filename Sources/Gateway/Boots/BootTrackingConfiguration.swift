/// How the gateway follows boots (docs/gateway.md "Boots"): when a boot counts as settled or is
/// given up on, how often a workstation that cannot boot asks again, and the bounds of what is
/// kept in memory.
public struct BootTrackingConfiguration: Sendable {
    /// A boot whose kernel and initrd are loaded and whose workstation then reads nothing for
    /// this long, without sending the booted signal, is recorded as settled (at its last read).
    public var settleQuietTime: Duration = .seconds(30)
    /// A boot neither booted nor settled this long after its script ends: unsettled if it
    /// loaded its kernel and initrd (still reading), failed otherwise.
    public var maximumBootTime: Duration = .seconds(600)
    /// How long the waiting script of a workstation that cannot boot sleeps before it asks again.
    public var waitingRetry: Duration = .seconds(10)
    /// Finished boots kept per workstation (the oldest forgotten first).
    public var bootsPerWorkstation = 10
    /// Workstations followed at once; beyond it the one least recently heard from is forgotten.
    public var maximumWorkstations = 4096
    /// How often boots are checked for settling, giving up, and waiting workstations that went away.
    public var sweepInterval: Duration = .seconds(1)
    /// How often boots that ended are reported to the catalog (`ReportBoots`).
    public var reportInterval: Duration = .seconds(1)
    /// Boots that ended kept for the catalog while it is unreachable (the oldest dropped first).
    public var reportQueue = 4096

    public init() {}
}
