import ICBDRPC
import CatalogClient
import SwiftProtobuf

/// Cuts listings into pages so that no answer outgrows a frame (docs/catalog.md "Paging"): a
/// page holds at most `page_size` items (``maximumPageSize`` when not given, never more) and
/// ends before its encoding passes ``budgetBytes``. Items are ordered by a key, bytewise; a
/// page's `next_page_token` is the key of its last item, so the next page starts right after
/// it whatever changed in between.
struct ListingPager: Sendable {
    static let maximumPageSize = 1000
    /// Longer tokens are refused: none the catalog hands out comes near.
    static let maximumTokenLength = 512
    /// A repeated field's tag and length prefix around each item's own bytes, at most.
    static let itemOverhead = 6

    /// Encoded bytes a page stays within.
    let budgetBytes: Int

    /// The page size a request asks for: `fallback` when 0, from 1 to ``maximumPageSize``.
    static func pageSize(_ requested: Int32, fallback: Int = maximumPageSize) throws -> Int {
        let size = requested == 0 ? fallback : Int(requested)
        guard (1...maximumPageSize).contains(size) else {
            throw WireFields.invalid("page_size", "must be from 1 to \(maximumPageSize), not \(requested)")
        }
        return size
    }

    /// A request's page token: nil for the first page.
    static func token(_ text: String) throws -> String? {
        guard !text.isEmpty else { return nil }
        guard text.utf8.count <= maximumTokenLength else {
            throw WireFields.invalid("page_token", "is not a token this catalog handed out; list again from the first page")
        }
        return text
    }

    /// Whether `key` comes after `token` (bytewise; nil: the first page, everything does).
    static func isAfter(_ key: String, _ token: String?) -> Bool {
        guard let token else { return true }
        return token.utf8.lexicographicallyPrecedes(key.utf8)
    }

    /// Room for a page whose other fields already take `used` bytes.
    func space(items: Int, used: some Message) throws -> PageSpace {
        PageSpace(items: items, bytes: budgetBytes - (try used.serializedBytes() as [UInt8]).count)
    }

    /// The items after `token` (in key order) that fit in `space`, as wire messages, and where
    /// the page ended: nil when every item fit, else the key to continue after (`token` when
    /// none fit).
    func page<Item, Wire: Message>(
        _ items: [Item], key: (Item) -> String, after token: String?, space: inout PageSpace, wire: (Item) -> Wire
    ) throws -> (items: [Wire], cut: PageCut?) {
        let keyed = items.map { (key: key($0), item: $0) }.filter { Self.isAfter($0.key, token) }
            .sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        var page: [Wire] = []
        for (index, entry) in keyed.enumerated() {
            let message = wire(entry.item)
            guard try space.take(message) else { return (page, PageCut(after: index == 0 ? token : keyed[index - 1].key)) }
            page.append(message)
        }
        return (page, nil)
    }
}

/// Where a listing's page ended before its last item: the next page starts after `after`
/// (nil: from the first item).
struct PageCut {
    var after: String?
}

/// What is left of a page being filled.
struct PageSpace {
    var items: Int
    var bytes: Int
    private var isEmpty = true

    init(items: Int, bytes: Int) {
        self.items = items
        self.bytes = bytes
    }

    /// Whether `message` fits; takes its room when it does. A page's first item always fits, so
    /// every page makes progress: no single item comes near the budget (every field of every
    /// object is bounded, a version's files included).
    mutating func take(_ message: some Message) throws -> Bool {
        let size = (try message.serializedBytes() as [UInt8]).count + ListingPager.itemOverhead
        guard isEmpty || (items > 0 && size <= bytes) else { return false }
        isEmpty = false
        items -= 1
        bytes -= size
        return true
    }
}
