import ICBDCore

extension CatalogRules {
    /// Whether `publisher` may change the versions of `image`: create one (`version` nil), or
    /// fill, complete or abandon `version`. An admin always may; a replicator only when it is
    /// registered (`site`, nil: not registered) at the image's home site. An image without a home
    /// (created by an admin without one, or from before homes were recorded) belongs to the
    /// first replicator that creates a version: the returned site is to be recorded as its home
    /// (nil: nothing to record); until then only a version's own publisher may go on with it.
    public static func checkAuthority(
        of publisher: Publisher, over image: ImageRecord, site: Name?, version: VersionRecord?
    ) throws(CatalogStoreError) -> Name? {
        guard case .replicator(let name) = publisher else { return nil }
        guard let site else {
            throw .permissionDenied(
                "replicator '\(name)' is not registered at any site; it may publish image '\(image.name)' once registered at the image's home site")
        }
        guard let home = image.homeSite else {
            guard let version else { return site }
            guard version.publishedBy == name else {
                throw .permissionDenied(
                    "image '\(image.name)' has no home site yet; only the publisher of version \(version.number) ('\(version.publishedBy)') or an admin may change it")
            }
            return nil
        }
        guard home == site else {
            throw .permissionDenied(
                "image '\(image.name)' belongs to site '\(home)'; replicator '\(name)' of site '\(site)' may not publish it (only replicators of '\(home)' or an admin)")
        }
        return nil
    }

    /// A node's site is where an admin or its first registration put it: a node moves itself
    /// nowhere (its site decides which images it may publish).
    public static func checkSiteMove(_ current: NodeRecord?, to site: Name, byAdmin: Bool) throws(CatalogStoreError) {
        guard let current, current.site != site, !byAdmin else { return }
        throw .permissionDenied(
            "node '\(current.name)' is registered at site '\(current.site)'; only an admin moves it (remove the node, then register it at '\(site)')")
    }
}
