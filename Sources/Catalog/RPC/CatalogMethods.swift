import ICBDCore
import ICBDProto
import ICBDRPC

/// The methods of `/icbd.catalog.v1.Catalog`, declared once for the catalog and its clients,
/// each with the roles that may call it: gateways and caches read; replicators also publish
/// versions and placements; nodes register and heartbeat as themselves; `admin` does
/// everything.
public enum CatalogMethods {
    static let service = "icbd.catalog.v1.Catalog"

    static let readers: Set<Role> = Set(Role.allCases)
    static let publishers: Set<Role> = [.replicator, .admin]
    static let nodes: Set<Role> = [.replicator, .cache, .gateway, .admin]
    static let admins: Set<Role> = [.admin]

    // MARK: Reads
    public static let listImages = RPCMethod<Icbd_Catalog_V1_ListImagesRequest, Icbd_Catalog_V1_ListImagesResponse>(
        service: service, method: "ListImages", kind: .unary, allowedRoles: readers)
    public static let getImage = RPCMethod<Icbd_Catalog_V1_GetImageRequest, Icbd_Catalog_V1_GetImageResponse>(
        service: service, method: "GetImage", kind: .unary, allowedRoles: readers)
    public static let resolveVersion = RPCMethod<Icbd_Catalog_V1_ResolveVersionRequest, Icbd_Catalog_V1_ResolveVersionResponse>(
        service: service, method: "ResolveVersion", kind: .unary, allowedRoles: readers)
    public static let getManifest = RPCMethod<Icbd_Catalog_V1_GetManifestRequest, Icbd_Catalog_V1_ManifestChunk>(
        service: service, method: "GetManifest", kind: .serverStreaming, allowedRoles: readers)
    public static let listSites = RPCMethod<Icbd_Catalog_V1_ListSitesRequest, Icbd_Catalog_V1_ListSitesResponse>(
        service: service, method: "ListSites", kind: .unary, allowedRoles: readers)
    public static let listNodes = RPCMethod<Icbd_Catalog_V1_ListNodesRequest, Icbd_Catalog_V1_ListNodesResponse>(
        service: service, method: "ListNodes", kind: .unary, allowedRoles: readers)
    public static let listPlacements = RPCMethod<Icbd_Catalog_V1_ListPlacementsRequest, Icbd_Catalog_V1_ListPlacementsResponse>(
        service: service, method: "ListPlacements", kind: .unary, allowedRoles: readers)
    public static let listPolicies = RPCMethod<Icbd_Catalog_V1_ListPoliciesRequest, Icbd_Catalog_V1_ListPoliciesResponse>(
        service: service, method: "ListPolicies", kind: .unary, allowedRoles: readers)
    public static let listAssignments = RPCMethod<Icbd_Catalog_V1_ListAssignmentsRequest, Icbd_Catalog_V1_ListAssignmentsResponse>(
        service: service, method: "ListAssignments", kind: .unary, allowedRoles: readers)
    public static let getAssignment = RPCMethod<Icbd_Catalog_V1_GetAssignmentRequest, Icbd_Catalog_V1_GetAssignmentResponse>(
        service: service, method: "GetAssignment", kind: .unary, allowedRoles: readers)
    public static let watch = RPCMethod<Icbd_Catalog_V1_WatchRequest, Icbd_Catalog_V1_WatchResponse>(
        service: service, method: "Watch", kind: .serverStreaming, allowedRoles: readers)

    // MARK: Publishing
    public static let createImage = RPCMethod<Icbd_Catalog_V1_CreateImageRequest, Icbd_Catalog_V1_CreateImageResponse>(
        service: service, method: "CreateImage", kind: .unary, allowedRoles: publishers)
    public static let createVersion = RPCMethod<Icbd_Catalog_V1_CreateVersionRequest, Icbd_Catalog_V1_CreateVersionResponse>(
        service: service, method: "CreateVersion", kind: .unary, allowedRoles: publishers)
    public static let putManifest = RPCMethod<Icbd_Catalog_V1_PutManifestRequest, Icbd_Catalog_V1_PutManifestResponse>(
        service: service, method: "PutManifest", kind: .clientStreaming, allowedRoles: publishers)
    public static let completeVersion = RPCMethod<Icbd_Catalog_V1_CompleteVersionRequest, Icbd_Catalog_V1_CompleteVersionResponse>(
        service: service, method: "CompleteVersion", kind: .unary, allowedRoles: publishers)
    public static let abandonVersion = RPCMethod<Icbd_Catalog_V1_AbandonVersionRequest, Icbd_Catalog_V1_AbandonVersionResponse>(
        service: service, method: "AbandonVersion", kind: .unary, allowedRoles: publishers)
    public static let setPlacement = RPCMethod<Icbd_Catalog_V1_SetPlacementRequest, Icbd_Catalog_V1_SetPlacementResponse>(
        service: service, method: "SetPlacement", kind: .unary, allowedRoles: publishers)

    // MARK: Nodes
    public static let registerNode = RPCMethod<Icbd_Catalog_V1_RegisterNodeRequest, Icbd_Catalog_V1_RegisterNodeResponse>(
        service: service, method: "RegisterNode", kind: .unary, allowedRoles: nodes)
    public static let heartbeat = RPCMethod<Icbd_Catalog_V1_HeartbeatRequest, Icbd_Catalog_V1_HeartbeatResponse>(
        service: service, method: "Heartbeat", kind: .unary, allowedRoles: nodes)

    // MARK: Administration
    public static let retireVersion = RPCMethod<Icbd_Catalog_V1_RetireVersionRequest, Icbd_Catalog_V1_RetireVersionResponse>(
        service: service, method: "RetireVersion", kind: .unary, allowedRoles: admins)
    public static let moveTag = RPCMethod<Icbd_Catalog_V1_MoveTagRequest, Icbd_Catalog_V1_MoveTagResponse>(
        service: service, method: "MoveTag", kind: .unary, allowedRoles: admins)
    public static let deleteTag = RPCMethod<Icbd_Catalog_V1_DeleteTagRequest, Icbd_Catalog_V1_DeleteTagResponse>(
        service: service, method: "DeleteTag", kind: .unary, allowedRoles: admins)
    public static let putSite = RPCMethod<Icbd_Catalog_V1_PutSiteRequest, Icbd_Catalog_V1_PutSiteResponse>(
        service: service, method: "PutSite", kind: .unary, allowedRoles: admins)
    public static let deleteSite = RPCMethod<Icbd_Catalog_V1_DeleteSiteRequest, Icbd_Catalog_V1_DeleteSiteResponse>(
        service: service, method: "DeleteSite", kind: .unary, allowedRoles: admins)
    public static let setNodeState = RPCMethod<Icbd_Catalog_V1_SetNodeStateRequest, Icbd_Catalog_V1_SetNodeStateResponse>(
        service: service, method: "SetNodeState", kind: .unary, allowedRoles: admins)
    public static let deleteNode = RPCMethod<Icbd_Catalog_V1_DeleteNodeRequest, Icbd_Catalog_V1_DeleteNodeResponse>(
        service: service, method: "DeleteNode", kind: .unary, allowedRoles: admins)
    public static let putPolicy = RPCMethod<Icbd_Catalog_V1_PutPolicyRequest, Icbd_Catalog_V1_PutPolicyResponse>(
        service: service, method: "PutPolicy", kind: .unary, allowedRoles: admins)
    public static let deletePolicy = RPCMethod<Icbd_Catalog_V1_DeletePolicyRequest, Icbd_Catalog_V1_DeletePolicyResponse>(
        service: service, method: "DeletePolicy", kind: .unary, allowedRoles: admins)
    public static let assign = RPCMethod<Icbd_Catalog_V1_AssignRequest, Icbd_Catalog_V1_AssignResponse>(
        service: service, method: "Assign", kind: .unary, allowedRoles: admins)
    public static let unassign = RPCMethod<Icbd_Catalog_V1_UnassignRequest, Icbd_Catalog_V1_UnassignResponse>(
        service: service, method: "Unassign", kind: .unary, allowedRoles: admins)
}
