import CatalogClient
import Foundation
import ICBDCore

/// Where the catalog keeps its data. Everything the RPC layer needs goes through this
/// protocol, in domain values only, so another database (PostgreSQL) can take SQLite's place
/// without the handlers changing (docs/catalog.md).
///
/// Contract of every implementation:
/// - each mutating call is one transaction: it commits whole or not at all;
/// - a call that changes anything bumps the global revision by exactly one and records the
///   events of that revision in the change log, in the same transaction; a call that changes
///   nothing does neither;
/// - `expected` revisions are compared inside that transaction (a mismatch is `.conflict`);
/// - the revision never goes back, also across crashes: a call that returned has committed
///   durably;
/// - reads answer with the revision they were read at;
/// - the rules of the data model live in ``CatalogRules`` (plain functions shared by stores),
///   the store only loads what they need and writes what they decide.
public protocol CatalogStore: Sendable {
    /// The revision of the last committed change.
    func currentRevision() async throws -> Revision

    // MARK: Images and versions
    /// Creates an image. An admin's image gets `homeSite` (which must exist; nil: the first
    /// replicator to create a version records its own); a replicator's image its registered site.
    func createImage(
        name: Name, description: String, homeSite: Name?, ifMissing: Bool, by publisher: Publisher, at now: Date
    ) async throws -> Revisioned<(ImageRecord, created: Bool)>
    func listImages(after: Name?, limit: Int) async throws -> Revisioned<Page<ImageSummary>>
    func image(_ name: Name) async throws -> Revisioned<ImageDetail>
    func resolveVersion(image: Name, reference: VersionReference) async throws -> Revisioned<VersionRecord>
    /// Creates a publishing version; `publisher` must have authority over the image
    /// (``CatalogRules/checkAuthority(of:over:site:version:)``), checked in the same transaction.
    func createVersion(_ version: NewVersion, by publisher: Publisher, at now: Date) async throws -> Revisioned<VersionRecord>
    /// Stores a file's manifest from `entries` (pieces of 32-byte entries, in order), checks
    /// its count and digest against the file, and marks it stored. Memory stays bounded by one
    /// page whatever the manifest's size. `publisher`'s authority is checked before anything is
    /// read from `entries` or written.
    func storeManifest<Entries: AsyncSequence<[UInt8], any Error>>(
        _ locator: ManifestLocator, entries: Entries, by publisher: Publisher, at now: Date
    ) async throws -> Revisioned<FileRecord>
    /// Makes a publishing version ready and moves `latest` to it when it is the newest.
    func completeVersion(image: Name, number: Int64, by publisher: Publisher, at now: Date) async throws -> Revisioned<(VersionRecord, latest: TagRecord?)>
    /// Removes a version still publishing, as if it had never been created; a replicator
    /// abandons only its own, an admin anyone's. With `dropImageIfUnused`, the image goes too when no other
    /// version, tag, policy or assignment refers to it. Returns whether the image went.
    func abandonVersion(image: Name, number: Int64, by publisher: Publisher, dropImageIfUnused: Bool) async throws -> Revisioned<Bool>
    func retireVersion(image: Name, number: Int64, expected: ExpectedRevision, at now: Date) async throws -> Revisioned<VersionRecord>
    /// The file of a ready or retired version and how many manifest pages it has.
    func manifestFile(_ locator: ManifestLocator) async throws -> (file: FileRecord, pages: Int)
    /// One page (up to ``ManifestPaging/entriesPerPage`` entries) of a stored manifest.
    func manifestPage(_ locator: ManifestLocator, index: Int) async throws -> [UInt8]

    // MARK: Tags
    func moveTag(image: Name, tag: Name, version: Int64, expected: ExpectedRevision) async throws -> Revisioned<TagRecord>
    func deleteTag(image: Name, tag: Name, expected: ExpectedRevision) async throws -> Revision

    // MARK: Sites
    func listSites() async throws -> Revisioned<[SiteRecord]>
    func putSite(_ site: SiteSpec, expected: ExpectedRevision) async throws -> Revisioned<(SiteRecord, created: Bool)>
    func deleteSite(_ name: Name, expected: ExpectedRevision) async throws -> Revision

    // MARK: Nodes
    func listNodes(_ filter: NodeFilter) async throws -> Revisioned<[NodeRecord]>
    /// Registers or updates a node; only an admin (`byAdmin`) moves a registered node to another
    /// site (``CatalogRules/checkSiteMove(_:to:byAdmin:)``).
    func registerNode(_ node: NodeRegistration, byAdmin: Bool, at now: Date) async throws -> Revisioned<NodeRecord>
    /// Records a heartbeat; a down node comes back up (a change), otherwise only the time (and,
    /// for a cache node, `usage`) is kept, which is not a change and bumps nothing.
    func heartbeat(_ name: Name, usage: CacheUsage?, at now: Date) async throws -> Revisioned<NodeRecord>
    func setNodeState(_ name: Name, _ state: NodeState, expected: ExpectedRevision) async throws -> Revisioned<NodeRecord>
    func deleteNode(_ name: Name, expected: ExpectedRevision) async throws -> Revision
    /// Marks `up` nodes whose last heartbeat (or `graceStart`, when later) is older than their
    /// TTL at `now` as `down`, all in one revision; returns them.
    func markExpiredNodesDown(at now: Date, graceStart: Date) async throws -> Revisioned<[NodeRecord]>

    // MARK: Placements and policies
    func listPlacements(image: Name?, node: Name?) async throws -> Revisioned<[PlacementRecord]>
    func setPlacement(_ update: PlacementUpdate, expected: ExpectedRevision, at now: Date) async throws -> Revisioned<PlacementRecord>
    func listPolicies() async throws -> Revisioned<[PolicyRecord]>
    func putPolicy(_ policy: PolicySpec, expected: ExpectedRevision) async throws -> Revisioned<PolicyRecord>
    func deletePolicy(image: Name, expected: ExpectedRevision) async throws -> Revision

    // MARK: Boot assignments
    func listAssignments() async throws -> Revisioned<[AssignmentRecord]>
    /// The assignment of `mac` and the version it resolves to now.
    func assignment(_ mac: MACAddress) async throws -> Revisioned<(AssignmentRecord, VersionRecord)>
    func assign(_ mac: MACAddress, to target: ImageReference, expected: ExpectedRevision) async throws -> Revisioned<AssignmentRecord>
    func unassign(_ mac: MACAddress, expected: ExpectedRevision) async throws -> Revision

    // MARK: Boot profiles (hints outside the revisioned model: no revision, no Watch event)
    /// Keeps `profile` as its node's recording of its version, replacing an earlier one. The
    /// version must exist (`.notFound`).
    func putBootProfile(_ profile: BootProfileRecord) async throws
    /// Every node's recording of `version` of `image`, or with `atOrBefore` of the newest version
    /// up to `version` that has any; empty when there is none.
    func bootProfiles(image: Name, version: Int64, atOrBefore: Bool) async throws -> [BootProfileRecord]

    // MARK: Rollouts (docs/catalog.md "Rollouts")
    /// Starts a rollout of `spec.tag` to `spec.version` (``RolloutRules/checkStart(_:tag:version:running:)``),
    /// replacing the tag's finished rollout; its id is the revision it commits at.
    func startRollout(_ spec: RolloutSpec, at now: Date) async throws -> Revisioned<RolloutRecord>
    /// Pauses, resumes or aborts the running rollout of `tag` (``RolloutRules/apply(_:to:at:)``).
    func controlRollout(image: Name, tag: Name, _ control: RolloutRules.Control, at now: Date) async throws -> Revisioned<RolloutRecord>
    /// Every tag's rollout (running or last), by image and tag.
    func listRollouts() async throws -> Revisioned<[RolloutRecord]>

    // MARK: Boots (outside the revisioned model, except the rollout decisions they cause)
    /// Keeps `boots` (the last ``BootReport/keptPerWorkstation`` per workstation,
    /// ``BootReport/keptInAll`` in all), adds them to their version's tally, and judges the
    /// rollouts whose new version they booted (``RolloutRules/decide(_:baseline:)``); a decision
    /// other than waiting is one revision. Boots of versions the catalog does not know are
    /// ignored. Returns how many were kept and the rollouts that changed state or step.
    func recordBoots(_ boots: [BootReport], at now: Date) async throws -> Revisioned<BootsRecorded>
    /// The boots kept, newest first, at most `limit`.
    func listBoots(site: Name?, image: Name?, limit: Int) async throws -> Revisioned<[BootReport]>

    // MARK: Certificate revocation (outside the revisioned model: no revision, no Watch event)
    /// Adds `revocation`, first dropping the entries expired at `now`; a serial revoked already
    /// keeps its first entry (`created` false). `.failedPrecondition` when
    /// ``RevocationRecord/maximumEntries`` unexpired entries are kept already.
    func revoke(_ revocation: RevocationRecord, at now: Date) async throws -> (RevocationRecord, created: Bool)
    /// The revocations of certificates not yet expired at `now`, by serial.
    func revocations(at now: Date) async throws -> [RevocationRecord]

    // MARK: Change log
    /// The committed revisions after `revision`, oldest first, at most `limit` of them.
    /// Throws `.compacted` when revisions right after `revision` are no longer retained.
    func changes(after revision: Revision, limit: Int) async throws -> [CatalogChange]
    /// Waits until the catalog's revision is above `revision` and returns it (immediately if
    /// it is already). Cancellable.
    func waitForRevision(after revision: Revision) async throws -> Revision
    /// Drops change-log entries so that at most `retaining` revisions stay; returns the oldest
    /// revision a watcher can still resume after.
    func compactChanges(retaining: Int) async throws -> Revision
}

/// What a boot report did.
public struct BootsRecorded: Sendable {
    public var recorded = 0
    /// Boots of versions the catalog does not know.
    public var ignored = 0
    /// Rollouts that advanced, completed or rolled back, as they are now.
    public var decided: [RolloutRecord] = []

    public init() {}
}

/// How manifests are paged in storage and on the wire.
public enum ManifestPaging {
    /// 4096 entries: 128 KiB a page.
    public static let entriesPerPage = 4096
    public static var bytesPerPage: Int { entriesPerPage * ChunkManifest.entrySize }
}

extension CatalogStore {
    /// A heartbeat that reports no cache usage.
    public func heartbeat(_ name: Name, at now: Date) async throws -> Revisioned<NodeRecord> {
        try await heartbeat(name, usage: nil, at: now)
    }
}
