import Foundation
import ICBDCore

/// The rules of the data model, as plain functions over domain values. A store loads what a
/// rule needs inside its transaction, asks the rule, and writes what it decides; so every store
/// (SQLite today, PostgreSQL later) enforces the same rules, and they are tested without one.
public enum CatalogRules {
    /// Compares a write's expectation with the object's current revision (nil: absent).
    public static func check(_ expected: ExpectedRevision, current: Revision?, _ what: @autoclosure () -> String) throws(CatalogStoreError) {
        switch (expected, current) {
        case (.any, _), (.absent, nil):
            return
        case (.absent, let current?):
            throw CatalogStoreError(.alreadyExists, "\(what()) exists already (revision \(current))")
        case (.exactly(let wanted), nil):
            throw CatalogStoreError(.notFound, "\(what()) does not exist (the request expected revision \(wanted))")
        case (.exactly(let wanted), let current?) where wanted != current:
            throw CatalogStoreError(
                .conflict,
                "\(what()) is at revision \(current), not \(wanted): someone else changed it; read it again and retry",
                details: ["current_revision": "\(current)"])
        case (.exactly, _?):
            return
        }
    }

    // MARK: Versions

    /// The number a new version gets. `existing` is the version with the requested number, if
    /// any; `newest` the highest number of the image.
    public static func versionNumber(
        requested: Int64?, newest: Int64?, existing: VersionRecord?, image: Name
    ) throws(CatalogStoreError) -> Int64 {
        let next = (newest ?? 0) + 1
        guard let requested else { return next }
        if let existing {
            throw CatalogStoreError(
                .conflict,
                "version \(requested) of image '\(image)' exists already (created by '\(existing.publishedBy)' at revision \(existing.revision)): another publisher won; read the image again and publish as version \(next)",
                details: ["current_revision": "\(existing.revision)", "next_version": "\(next)"])
        }
        guard requested == next else {
            throw CatalogStoreError(
                .failedPrecondition, "the next version of image '\(image)' is \(next), not \(requested)",
                details: ["next_version": "\(next)"])
        }
        return requested
    }

    /// A parent must be an older version whose snapshot exists (not publishing).
    public static func checkParent(_ parent: Int64, of number: Int64, parentVersion: VersionRecord?, image: Name) throws(CatalogStoreError) {
        guard parent < number else {
            throw .invalid("the parent of version \(number) of image '\(image)' must be an older version, not \(parent)")
        }
        guard let parentVersion else { throw .notFound("image '\(image)' has no version \(parent) to be the parent") }
        guard parentVersion.state != .publishing else {
            throw .precondition("version \(parent) of image '\(image)' is still publishing; it cannot be a parent yet")
        }
    }

    /// Whether a publishing version can become ready.
    public static func checkCompletable(_ version: VersionRecord) throws(CatalogStoreError) {
        guard version.state != .retired else {
            throw .precondition("version \(version.number) of image '\(version.image)' is retired; it cannot become ready")
        }
        if let missing = version.files.first(where: { !$0.manifestStored }) {
            throw .precondition(
                "file '\(missing.path)' of version \(version.number) of image '\(version.image)' has no manifest yet; send it with PutManifest")
        }
    }

    /// Whether `publisher` may abandon `version`: only while it is publishing, and a replicator
    /// only its own.
    public static func checkAbandonable(_ version: VersionRecord, publisher: Publisher) throws(CatalogStoreError) {
        guard version.state == .publishing else {
            throw .precondition(
                "version \(version.number) of image '\(version.image)' is \(version.state.rawValue), not publishing; retire it instead")
        }
        if case .replicator(let name) = publisher, name != version.publishedBy {
            throw .precondition(
                "version \(version.number) of image '\(version.image)' is being published by '\(version.publishedBy)', not '\(name)'")
        }
    }

    /// Where `latest` should point once `number` is ready: moved when it is newer, else kept.
    public static func latestAfterCompleting(_ number: Int64, current: TagRecord?) -> Int64? {
        guard let current else { return number }
        return current.version < number ? number : nil
    }

    /// What retiring a version does to `latest`.
    public enum LatestAfterRetire: Equatable {
        case unchanged
        case move(to: Int64)
        case delete
    }

    /// Refuses to retire a version that a tag other than `latest` or a pinned assignment names;
    /// `latest` falls back to the newest other ready version.
    public static func planRetire(
        _ version: VersionRecord, tags: [TagRecord], versions: [VersionRecord], assignments: [AssignmentRecord]
    ) throws(CatalogStoreError) -> LatestAfterRetire {
        let what = "version \(version.number) of image '\(version.image)'"
        if let tag = tags.first(where: { $0.version == version.number && $0.name != Name.latestTag }) {
            throw .precondition("tag '\(tag.name)' points to \(what); move or delete the tag first")
        }
        if let pinned = assignments.first(where: { $0.image == version.image && $0.version == .number(version.number) }) {
            throw .precondition("workstation \(pinned.mac) boots \(what); assign it elsewhere first")
        }
        guard let latest = tags.first(where: { $0.name == Name.latestTag }), latest.version == version.number else {
            return .unchanged
        }
        let fallback = versions.filter { $0.state == .ready && $0.number != version.number }.map(\.number).max()
        if let fallback { return .move(to: fallback) }
        if let booting = assignments.first(where: { $0.image == version.image && $0.version == .latest }) {
            throw .precondition(
                "workstation \(booting.mac) boots image '\(version.image)' by 'latest' and \(what) is its only ready version; assign it elsewhere first")
        }
        return .delete
    }

    // MARK: Tags

    /// A tag may point only at a ready version.
    public static func checkTagTarget(tag: Name, version: VersionRecord?, number: Int64, image: Name) throws(CatalogStoreError) {
        guard !tag.isAllDigits else {
            throw .invalid("tag '\(tag)' is all digits, which reads as a version number; choose another name")
        }
        guard let version else { throw .notFound("image '\(image)' has no version \(number)") }
        switch version.state {
        case .ready:
            return
        case .retired:
            throw .precondition("version \(number) of image '\(image)' is retired; a tag may not point at a retired version")
        case .publishing:
            throw .precondition("version \(number) of image '\(image)' is still publishing; tag it once it is ready")
        }
    }

    /// The version number a reference names, given the tag it names (when it names one).
    public static func versionNumber(
        of reference: VersionReference, image: Name, tag: TagRecord?
    ) throws(CatalogStoreError) -> Int64 {
        switch reference {
        case .number(let number):
            return number
        case .tag(let name):
            guard let tag else {
                throw .notFound(
                    name == Name.latestTag
                        ? "image '\(image)' has no ready version yet (no 'latest' tag)" : "image '\(image)' has no tag '\(name)'")
            }
            return tag.version
        }
    }

    /// A workstation may be assigned only something that boots now: a ready version.
    public static func checkAssignable(_ version: VersionRecord, reference: VersionReference) throws(CatalogStoreError) {
        guard version.state == .ready else {
            throw .precondition(
                "'\(version.image):\(reference)' is version \(version.number), which is \(version.state); assign a ready version")
        }
    }

    // MARK: Sites

    /// A site's ranges may not overlap another site's, and its links name other existing sites.
    public static func checkSite(_ site: SiteSpec, others: [SiteRecord]) throws(CatalogStoreError) {
        if let (a, b) = firstOverlap(in: site.cidrs) {
            throw .invalid("site '\(site.name)': \(a) overlaps \(b)")
        }
        for other in others where other.name != site.name {
            for mine in site.cidrs {
                if let theirs = other.cidrs.first(where: mine.overlaps) {
                    throw .precondition("\(mine) overlaps \(theirs) of site '\(other.name)'; sites own disjoint ranges")
                }
            }
        }
        var linked = Set<Name>()
        for link in site.links {
            guard link.site != site.name else { throw .invalid("site '\(site.name)' cannot link to itself") }
            guard linked.insert(link.site).inserted else { throw .invalid("site '\(site.name)' links to '\(link.site)' twice") }
            guard others.contains(where: { $0.name == link.site }) else {
                throw .notFound("site '\(site.name)' links to unknown site '\(link.site)'; add that site first")
            }
        }
    }

    // MARK: Nodes

    /// The state a node is in after a heartbeat: a down node is up again; draining stays.
    public static func stateAfterHeartbeat(_ state: NodeState) -> NodeState {
        state == .down ? .up : state
    }

    /// Whether an up node's heartbeat is older than its TTL. `graceStart` (the catalog's start)
    /// counts as a heartbeat, so a restarted catalog gives every node a full TTL. Draining nodes
    /// stay draining whatever their heartbeats do: an operator drained them (for maintenance,
    /// a reboot) and takes them back by hand.
    public static func isExpired(_ node: NodeRecord, at now: Date, graceStart: Date) -> Bool {
        guard node.state == .up else { return false }
        let last = max(node.lastHeartbeat ?? .distantPast, graceStart)
        return now.timeIntervalSince(last) * 1000 > Double(node.heartbeatTTLMilliseconds)
    }
}
