import ICBDProto
import ICBDRPC
import SwiftProtobuf

/// A request of a paged catalog listing (docs/catalog.md "Paging").
public protocol PagedCatalogRequest: SwiftProtobuf.Message {
    var pageToken: String { get set }
}

/// A page of a catalog listing, and how the pages of one listing add up.
public protocol PagedCatalogResponse: SwiftProtobuf.Message {
    var nextPageToken: String { get set }
    /// Adds the items of a later page to this one.
    mutating func append(page: Self)
}

extension RPCClient {
    /// Pages one listing may take: a catalog that keeps handing out new tokens is refused here
    /// instead of being followed for ever (a thousand pages of a thousand items each is far
    /// more than any deployment lists).
    public static let maximumCatalogPages = 1000

    /// Every page of a listing, added up into one answer. Its `revision` is the first page's:
    /// a Watch from it sees every change made while the pages were read.
    public func allPages<Request: PagedCatalogRequest, Response: PagedCatalogResponse>(
        _ method: RPCMethod<Request, Response>, _ request: Request, options: RPCCallOptions = .init()
    ) async throws -> Response {
        var request = request
        var whole = try await unary(method, request, options: options)
        var token = whole.nextPageToken
        var pages = 1
        while !token.isEmpty {
            guard pages < Self.maximumCatalogPages else {
                throw RPCError(code: .resourceExhausted, message: "\(method.path) is still paging after \(pages) pages; refusing to follow further")
            }
            pages += 1
            request.pageToken = token
            let page = try await unary(method, request, options: options)
            guard page.nextPageToken != token else {
                throw RPCError(code: .internal, message: "\(method.path) answered page token '\(token)' with itself; the listing does not advance")
            }
            whole.append(page: page)
            token = page.nextPageToken
        }
        whole.nextPageToken = ""
        return whole
    }
}

extension Icbd_Catalog_V1_GetImageRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_GetImageResponse: PagedCatalogResponse {
    public mutating func append(page: Self) {
        versions += page.versions
        placements += page.placements
    }
}

extension Icbd_Catalog_V1_ListImagesRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListImagesResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { images += page.images }
}

extension Icbd_Catalog_V1_ListSitesRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListSitesResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { sites += page.sites }
}

extension Icbd_Catalog_V1_ListNodesRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListNodesResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { nodes += page.nodes }
}

extension Icbd_Catalog_V1_ListPlacementsRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListPlacementsResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { placements += page.placements }
}

extension Icbd_Catalog_V1_ListPoliciesRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListPoliciesResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { policies += page.policies }
}

extension Icbd_Catalog_V1_ListAssignmentsRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListAssignmentsResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { assignments += page.assignments }
}

extension Icbd_Catalog_V1_ListRolloutsRequest: PagedCatalogRequest {}
extension Icbd_Catalog_V1_ListRolloutsResponse: PagedCatalogResponse {
    public mutating func append(page: Self) { rollouts += page.rollouts }
}
