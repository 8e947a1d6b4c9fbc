/*
 * libicbd: a C client of icbd/1, the wire protocol of the icbd services (docs/wire.md).
 *
 * A connection is one mutually authenticated TLS 1.3 connection (ALPN "icbd/1") to one service.
 * Calls on it are multiplexed: any number of threads may run calls on one connection at the same
 * time (a mutex per connection guards its state; the library has no global state). A call
 * object belongs to one thread at a time.
 *
 * Every function that can fail returns an icbd_code and fills an icbd_status: the gRPC code and
 * a message for people. Failures of the connection (cannot connect, TLS, protocol errors, the
 * server going away) are ICBD_UNAVAILABLE, as on the wire; a server's Status is passed through.
 *
 *     icbd_client_options options = {
 *         .ca_file = "pki/ca.crt", .cert_file = "pki/admin.crt", .key_file = "pki/admin.key",
 *         .expected_role = "catalog",
 *     };
 *     icbd_conn *conn;
 *     icbd_status status;
 *     if (icbd_connect("127.0.0.1:7000", &options, &conn, &status) != ICBD_OK) {
 *         fprintf(stderr, "%s\n", status.message);
 *         ...
 *     }
 *     Icbd__Rpc__V1__HealthCheckRequest request = ICBD__RPC__V1__HEALTH_CHECK_REQUEST__INIT;
 *     ProtobufCMessage *response;
 *     icbd_call_options call = {.timeout_ms = 5000};
 *     if (icbd_unary_pb(conn, "/icbd.rpc.v1.Health/Check", &request.base,
 *                       &icbd__rpc__v1__health_check_response__descriptor, &response,
 *                       &call, &status) == ICBD_OK) {
 *         ... ((Icbd__Rpc__V1__HealthCheckResponse *)response)->node ...
 *         protobuf_c_message_free_unpacked(response, NULL);
 *     }
 *     icbd_close(conn);
 */
#ifndef ICBD_H
#define ICBD_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define ICBD_API __attribute__((visibility("default")))
#else
#define ICBD_API
#endif

/* Limits fixed by icbd/1. */

/** The largest frame (length prefix excluded) a peer may send: 16 MiB. */
#define ICBD_MAX_FRAME_LENGTH (16u * 1024u * 1024u)
/** The flow-control window each side of each call starts with: 4 MiB of message bytes. */
#define ICBD_INITIAL_WINDOW (4u * 1024u * 1024u)
/** The largest message one frame can carry (the frame's stream id and field keys take 12 bytes). */
#define ICBD_MAX_MESSAGE_LENGTH (ICBD_MAX_FRAME_LENGTH - 12u)

/** gRPC status codes, as carried by icbd/1 Status frames. */
typedef enum icbd_code {
    ICBD_OK = 0,
    ICBD_CANCELLED = 1,
    ICBD_UNKNOWN = 2,
    ICBD_INVALID_ARGUMENT = 3,
    ICBD_DEADLINE_EXCEEDED = 4,
    ICBD_NOT_FOUND = 5,
    ICBD_ALREADY_EXISTS = 6,
    ICBD_PERMISSION_DENIED = 7,
    ICBD_RESOURCE_EXHAUSTED = 8,
    ICBD_FAILED_PRECONDITION = 9,
    ICBD_ABORTED = 10,
    ICBD_OUT_OF_RANGE = 11,
    ICBD_UNIMPLEMENTED = 12,
    ICBD_INTERNAL = 13,
    ICBD_UNAVAILABLE = 14,
    ICBD_DATA_LOSS = 15,
    ICBD_UNAUTHENTICATED = 16,
} icbd_code;

#define ICBD_STATUS_MESSAGE_SIZE 512
#define ICBD_STATUS_DETAILS_SIZE 256

/**
 * How an operation ended. Plain data: put it on the stack, no cleanup.
 *
 * `message` is for people; it says what went wrong and, where the library knows, what to do.
 * Long messages are truncated.
 */
typedef struct icbd_status {
    /** The code; a server's own code is passed through even if it is not one of icbd_code. */
    icbd_code code;
    /** 1 when this status came from the server's Status frame, 0 when the library set it. */
    int from_server;
    char message[ICBD_STATUS_MESSAGE_SIZE];
    /** The server's Status.details as "key=value" lines, in the order received; may be empty. */
    char details[ICBD_STATUS_DETAILS_SIZE];
} icbd_status;

/** "OK", "NOT_FOUND", ...; "UNRECOGNIZED" for a code outside 0...16. Never NULL. */
ICBD_API const char *icbd_code_name(icbd_code code);

/**
 * Looks up `key` in status->details and copies its value into `value` (always NUL-terminated).
 * Returns value, or NULL when the key is absent.
 */
ICBD_API const char *icbd_status_detail(const icbd_status *status, const char *key, char *value, size_t value_size);

/* Connections. */

/** How to reach and trust one service. Zeroed fields take the documented defaults. */
typedef struct icbd_client_options {
    /** PEM file with the deployment CA: the only root the server's certificate may chain to. */
    const char *ca_file;
    /** PEM file with this client's certificate (SAN URI icbd://admin/NAME or a service role),
     *  optionally followed by intermediates. */
    const char *cert_file;
    /** PEM file with the certificate's private key. */
    const char *key_file;
    /** The role the server's certificate must name (icbd://ROLE/...): "catalog", "replicator",
     *  "cache", "gateway" or "admin". Required: a client always knows what it meant to reach. */
    const char *expected_role;
    /** TCP connect, TLS handshake and the first round trip; 0: 5000 ms. */
    uint32_t connect_timeout_ms;
    /** A Ping is sent this often, so the server's idle timeout (60 s) does not close the
     *  connection and a dead server is noticed; 0: 20000 ms. */
    uint32_t keepalive_interval_ms;
    /** A Ping unanswered this long closes the connection (calls end UNAVAILABLE); 0: 20000 ms. */
    uint32_t keepalive_timeout_ms;
} icbd_client_options;

/** One connection. Opaque; thread-safe. */
typedef struct icbd_conn icbd_conn;

/**
 * Connects to `address` ("HOST:PORT", "[IPv6]:PORT"): TCP, then TLS 1.3 with this client's
 * certificate and ALPN "icbd/1", then one Ping round trip.
 *
 * The server must present a certificate that chains to options->ca_file, is valid now, names
 * HOST (a DNS SAN) or the IP address dialled (an IP SAN), carries extended key usage serverAuth
 * and exactly one SAN URI icbd://ROLE/NAME with ROLE == options->expected_role. A refused
 * server certificate fails the handshake with an alert and the call returns ICBD_UNAVAILABLE
 * with the reason. Because of the Ping round trip, a server that refuses this client's
 * certificate (TLS 1.3 tells the client only after its side of the handshake) is also reported
 * here rather than at the first call.
 *
 * On success *conn is a connection to free with icbd_close(). On failure *conn is NULL.
 * Returns ICBD_INVALID_ARGUMENT for unusable options or files, ICBD_UNAVAILABLE otherwise.
 */
ICBD_API icbd_code icbd_connect(const char *address, const icbd_client_options *options, icbd_conn **conn,
                                icbd_status *status);

/**
 * Closes the connection (TLS close_notify, then TCP close) and frees it once its calls are
 * freed too. Calls still open end with ICBD_UNAVAILABLE. NULL is ignored.
 */
ICBD_API void icbd_close(icbd_conn *conn);

/**
 * 1 while the connection can take new calls; 0 once it failed or was closed, after which every
 * call fails at once with ICBD_UNAVAILABLE: connect again. `status` (may be NULL) gets why.
 */
ICBD_API int icbd_conn_usable(icbd_conn *conn, icbd_status *status);

/** The server's identity from its verified certificate, "icbd://catalog/cat1". */
ICBD_API const char *icbd_conn_peer(const icbd_conn *conn);

/* Calls. */

/** One metadata entry of a call's Open frame. */
typedef struct icbd_metadata {
    const char *key;
    const char *value;
} icbd_metadata;

/** Per-call options; NULL means all defaults. */
typedef struct icbd_call_options {
    /** 0: no deadline. Otherwise sent to the server, which answers DEADLINE_EXCEEDED when it
     *  passes; the client itself gives up one second later (ICBD_DEADLINE_EXCEEDED, and sends
     *  Cancel). Waiting for flow-control window counts against it. */
    uint32_t timeout_ms;
    const icbd_metadata *metadata;
    size_t metadata_count;
} icbd_call_options;

/** One call (stream). Opaque; use it from one thread at a time. */
typedef struct icbd_call icbd_call;

/**
 * A unary call: sends Open, the request and End in one write, waits for the one response.
 * `method` is "/package.Service/Method". On ICBD_OK, *response is a malloc'd copy of the
 * response message (free() it; a valid pointer even for an empty message) and *response_len its
 * size. Any other code leaves *response NULL: the server's Status, or why the call failed.
 */
ICBD_API icbd_code icbd_unary(icbd_conn *conn, const char *method, const void *request, size_t request_len,
                              const icbd_call_options *options, uint8_t **response, size_t *response_len,
                              icbd_status *status);

/**
 * icbd_unary with protobuf-c messages: packs `request`, unpacks the response as
 * `response_type`. Free *response with protobuf_c_message_free_unpacked(*response, NULL).
 * A response that does not decode is ICBD_INTERNAL.
 */
ICBD_API icbd_code icbd_unary_pb(icbd_conn *conn, const char *method, const ProtobufCMessage *request,
                                 const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **response,
                                 const icbd_call_options *options, icbd_status *status);

/**
 * Starts a call of any kind: sends Open. Send requests with icbd_call_send, half-close with
 * icbd_call_end, read responses with icbd_call_recv, and free it with icbd_call_free.
 */
ICBD_API icbd_code icbd_call_start(icbd_conn *conn, const char *method, const icbd_call_options *options,
                                   icbd_call **call, icbd_status *status);

/**
 * Starts a server-streaming call: Open, the one request and End in one write. Then read the
 * responses with icbd_call_recv until it returns 0.
 */
ICBD_API icbd_code icbd_server_stream_start(icbd_conn *conn, const char *method, const void *request,
                                            size_t request_len, const icbd_call_options *options, icbd_call **call,
                                            icbd_status *status);

/** icbd_server_stream_start with a protobuf-c request. */
ICBD_API icbd_code icbd_server_stream_start_pb(icbd_conn *conn, const char *method, const ProtobufCMessage *request,
                                               const icbd_call_options *options, icbd_call **call, icbd_status *status);

/**
 * Sends one request message (at most ICBD_MAX_MESSAGE_LENGTH bytes). Waits while the call's
 * flow-control window or the connection's write buffer is full, so a fast writer is slowed to
 * the server's pace. Returns the call's final status if the server has already ended it.
 */
ICBD_API icbd_code icbd_call_send(icbd_call *call, const void *message, size_t message_len, icbd_status *status);

/** icbd_call_send with a protobuf-c message. */
ICBD_API icbd_code icbd_call_send_pb(icbd_call *call, const ProtobufCMessage *message, icbd_status *status);

/** Half-closes the call (End): no more request messages. Idempotent. */
ICBD_API icbd_code icbd_call_end(icbd_call *call, icbd_status *status);

/**
 * Waits for the next response message.
 *
 * Returns 1 with *data and *len set to the message, which stays valid until the next
 * icbd_call_recv or icbd_call_free on this call; reading it returns its bytes to the server as
 * flow-control credit, so a slow reader slows the server instead of growing memory.
 * Returns 0 when the call is over: `status` holds its final status (ICBD_OK on success).
 */
ICBD_API int icbd_call_recv(icbd_call *call, const uint8_t **data, size_t *len, icbd_status *status);

/**
 * icbd_call_recv, unpacking the message as `type`: returns 1 with *message to free with
 * protobuf_c_message_free_unpacked(*message, NULL), or 0 when the call is over. A message that
 * does not decode cancels the call, which then ends with ICBD_INTERNAL.
 */
ICBD_API int icbd_call_recv_pb(icbd_call *call, const ProtobufCMessageDescriptor *type, ProtobufCMessage **message,
                               icbd_status *status);

/**
 * For client-streaming calls: half-closes the call if needed and waits for exactly one
 * response and an OK status, like icbd_unary.
 */
ICBD_API icbd_code icbd_call_response(icbd_call *call, uint8_t **response, size_t *response_len, icbd_status *status);

/** Message bytes received on this call and not yet read: at most the 4 MiB window plus one message. */
ICBD_API size_t icbd_call_buffered(icbd_call *call);

/**
 * Frees the call. A call not yet over is cancelled (Cancel is sent; the server stops its work).
 * NULL is ignored.
 */
ICBD_API void icbd_call_free(icbd_call *call);

#ifdef __cplusplus
}
#endif

#endif
