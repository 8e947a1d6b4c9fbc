/*
 * Conveniences on top of the call API (call.c): unary calls, a client-streaming call's one
 * response, and protobuf-c packing and unpacking.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define USE_STATUS(status)        \
    icbd_status status##_ignored; \
    if (!(status)) (status) = &status##_ignored

static uint8_t *pack(const ProtobufCMessage *message, size_t *len, icbd_status *status) {
    if (!message) {
        icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL message");
        return NULL;
    }
    size_t size = protobuf_c_message_get_packed_size(message);
    if (size > ICBD_MAX_MESSAGE_LENGTH) {
        icbd_fail(status, ICBD_INVALID_ARGUMENT, "a %zu-byte %s exceeds the %u-byte icbd/1 maximum", size,
                  message->descriptor->name, ICBD_MAX_MESSAGE_LENGTH);
        return NULL;
    }
    uint8_t *bytes = malloc(size ? size : 1);
    if (!bytes) {
        icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte message", size);
        return NULL;
    }
    *len = protobuf_c_message_pack(message, bytes);
    return bytes;
}

icbd_code icbd_server_stream_start_pb(icbd_conn *conn, const char *method, const ProtobufCMessage *request,
                                      const icbd_call_options *options, icbd_call **call, icbd_status *status) {
    USE_STATUS(status);
    if (call) *call = NULL;
    size_t len = 0;
    uint8_t *bytes = pack(request, &len, status);
    if (!bytes) return status->code;
    icbd_code code = icbd_server_stream_start(conn, method, bytes, len, options, call, status);
    free(bytes);
    return code;
}

icbd_code icbd_call_send_pb(icbd_call *call, const ProtobufCMessage *message, icbd_status *status) {
    USE_STATUS(status);
    size_t len = 0;
    uint8_t *bytes = pack(message, &len, status);
    if (!bytes) return status->code;
    icbd_code code = icbd_call_send(call, bytes, len, status);
    free(bytes);
    return code;
}

int icbd_call_recv_pb(icbd_call *call, const ProtobufCMessageDescriptor *type, ProtobufCMessage **message,
                      icbd_status *status) {
    USE_STATUS(status);
    if (message) *message = NULL;
    if (!type || !message) {
        icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
        return 0;
    }
    const uint8_t *data;
    size_t len;
    if (!icbd_call_recv(call, &data, &len, status)) return 0;
    *message = protobuf_c_message_unpack(type, NULL, len, data);
    if (*message) return 1;
    icbd_status failed;
    icbd_fail(&failed, ICBD_INTERNAL, "%s: a %zu-byte response does not decode as %s", call->method, len, type->name);
    pthread_mutex_lock(&call->conn->mu);
    icbd_call_abort_locked(call, &failed);
    *status = call->final;
    pthread_mutex_unlock(&call->conn->mu);
    return 0;
}

icbd_code icbd_call_response(icbd_call *call, uint8_t **response, size_t *response_len, icbd_status *status) {
    USE_STATUS(status);
    if (!call || !response || !response_len) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
    *response = NULL;
    *response_len = 0;
    icbd_code code = icbd_call_end(call, status);
    if (code != ICBD_OK) return code;
    const uint8_t *data;
    size_t len;
    unsigned count = 0;
    while (icbd_call_recv(call, &data, &len, status)) {
        if (count++ == 0) {
            *response = malloc(len ? len : 1);
            if (!*response) {
                icbd_status failed;
                icbd_fail(&failed, ICBD_RESOURCE_EXHAUSTED, "out of memory for a %zu-byte response", len);
                pthread_mutex_lock(&call->conn->mu);
                icbd_call_abort_locked(call, &failed);
                pthread_mutex_unlock(&call->conn->mu);
                continue;
            }
            memcpy(*response, data, len);
            *response_len = len;
        }
    }
    if (status->code == ICBD_OK && count != 1) {
        icbd_fail(status, ICBD_INTERNAL, "%s: the server sent %u responses to a call that takes one", call->method,
                  count);
    }
    if (status->code != ICBD_OK) {
        free(*response);
        *response = NULL;
        *response_len = 0;
    }
    return status->code;
}

/* ---------------------------------------------------------------------------------------------
 * Unary */

icbd_code icbd_unary(icbd_conn *conn, const char *method, const void *request, size_t request_len,
                     const icbd_call_options *options, uint8_t **response, size_t *response_len, icbd_status *status) {
    USE_STATUS(status);
    if (response) *response = NULL;
    if (response_len) *response_len = 0;
    if (!response || !response_len) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
    icbd_call *call;
    icbd_code code = icbd_server_stream_start(conn, method, request, request_len, options, &call, status);
    if (code != ICBD_OK) return code;
    code = icbd_call_response(call, response, response_len, status);
    icbd_call_free(call);
    return code;
}

icbd_code icbd_unary_pb(icbd_conn *conn, const char *method, const ProtobufCMessage *request,
                        const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **response,
                        const icbd_call_options *options, icbd_status *status) {
    USE_STATUS(status);
    if (response) *response = NULL;
    if (!response || !response_type) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
    size_t len = 0;
    uint8_t *bytes = pack(request, &len, status);
    if (!bytes) return status->code;
    uint8_t *answer = NULL;
    size_t answer_len = 0;
    icbd_code code = icbd_unary(conn, method, bytes, len, options, &answer, &answer_len, status);
    free(bytes);
    if (code != ICBD_OK) return code;
    *response = protobuf_c_message_unpack(response_type, NULL, answer_len, answer);
    free(answer);
    if (!*response) {
        return icbd_fail(status, ICBD_INTERNAL, "%s: a %zu-byte response does not decode as %s", method, answer_len,
                         response_type->name);
    }
    return ICBD_OK;
}
