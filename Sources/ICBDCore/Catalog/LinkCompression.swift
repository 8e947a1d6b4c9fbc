/// Whether replication transfers over a site link compress the stream with lz4.
///
/// `auto` leaves it to the replicators: on for links with a configured rate below their
/// threshold (1 Gbit/s by default), off on fast or unlimited links, where it would only cost CPU.
public enum LinkCompression: String, Sendable, Hashable, Codable, CaseIterable {
    case auto
    case on
    case off
}
