/*
 * What the server sends, judged and routed to its call (docs/wire.md section 3, client side).
 * Runs on the I/O thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static void status_from_frame(const Icbd__Rpc__V1__Status *frame, icbd_status *status) {
    status->code = (icbd_code)frame->code;
    status->from_server = 1;
    snprintf(status->message, sizeof status->message, "%s", frame->message ? frame->message : "");
    size_t used = 0;
    status->details[0] = '\0';
    for (size_t i = 0; i < frame->n_details; i++) {
        const char *key = frame->details[i]->key ? frame->details[i]->key : "";
        const char *value = frame->details[i]->value ? frame->details[i]->value : "";
        size_t need = strlen(key) + strlen(value) + 2;
        if (used + need >= sizeof status->details) break;
        used += (size_t)snprintf(status->details + used, sizeof status->details - used, "%s%s=%s", used ? "\n" : "",
                                 key, value);
    }
}

static icbd_call *find_active(icbd_conn *conn, uint32_t id) {
    for (icbd_call *call = conn->active; call; call = call->next_active) {
        if (call->id == id) return call;
    }
    return NULL;
}

/** Executes what one frame from the server means. False on a protocol error (reason in error). */
static bool route_locked(icbd_conn *conn, icbd_frame *frame, char *error, size_t error_size) {
    uint32_t id = frame->stream;
    const char *kind = icbd_frame_kind_name(frame);
    if (frame->kind_case == ICBD__RPC__V1__FRAME__KIND_PING) {
        if (id != 0) {
            snprintf(error, error_size, "Ping on stream %u", id);
            goto protocol_error;
        }
        if (frame->ping->ack) {
            // An unsolicited or stale ack is ignored.
            if (conn->ping_outstanding && frame->ping->nonce == conn->ping_nonce) {
                conn->ping_outstanding = false;
                conn->next_ping_at = conn->ping_sent_at + conn->keepalive_interval_ns;
                if (conn->state == ICBD_CONN_CONNECTING) {
                    snprintf(conn->peer_uri, sizeof conn->peer_uri, "%s", conn->check.peer_uri);
                    conn->state = ICBD_CONN_READY;
                    pthread_cond_broadcast(&conn->cv);
                }
            }
        } else if (!icbd_frame_append_ping(&conn->out, frame->ping->nonce, true, error, error_size)) {
            goto protocol_error;
        }
        icbd_frame_free(frame);
        return true;
    }
    if (id == 0) {
        snprintf(error, error_size, "%s on stream 0", kind);
        goto protocol_error;
    }
    switch (frame->kind_case) {
    case ICBD__RPC__V1__FRAME__KIND_OPEN:
    case ICBD__RPC__V1__FRAME__KIND_END:
    case ICBD__RPC__V1__FRAME__KIND_CANCEL:
        snprintf(error, error_size, "%s sent by a server (stream %u)", kind, id);
        goto protocol_error;
    default: break;
    }
    if (id > conn->last_stream) {
        snprintf(error, error_size, "%s for unopened stream %u", kind, id);
        goto protocol_error;
    }
    icbd_call *call = find_active(conn, id);
    if (!call) {
        // The call ended (Status received, cancelled, given up): the frame was in flight.
        icbd_frame_free(frame);
        return true;
    }
    switch (frame->kind_case) {
    case ICBD__RPC__V1__FRAME__KIND_MESSAGE: {
        int64_t size = (int64_t)frame->message.len;
        if (size > call->receive_window && call->receive_window < (int64_t)ICBD_INITIAL_WINDOW) {
            snprintf(error, error_size,
                     "stream %u sent a %lld-byte message with %lld bytes of flow-control window left", id,
                     (long long)size, (long long)call->receive_window);
            goto protocol_error;
        }
        icbd_message_node *node = malloc(sizeof *node);
        if (!node) {
            snprintf(error, error_size, "out of memory for a received message");
            goto protocol_error;
        }
        call->receive_window -= size;
        node->frame = frame;
        node->next = NULL;
        if (call->tail) {
            call->tail->next = node;
        } else {
            call->head = node;
        }
        call->tail = node;
        call->buffered += (size_t)size;
        pthread_cond_broadcast(&conn->cv);
        return true;
    }
    case ICBD__RPC__V1__FRAME__KIND_STATUS: {
        icbd_status status;
        status_from_frame(frame->status, &status);
        icbd_call_finish_locked(call, &status);
        break;
    }
    case ICBD__RPC__V1__FRAME__KIND_CREDIT:
        call->send_window += frame->credit->bytes;
        pthread_cond_broadcast(&conn->cv);
        break;
    default: break;
    }
    icbd_frame_free(frame);
    return true;

protocol_error:
    icbd_frame_free(frame);
    return false;
}

bool icbd_route_frame(void *context, icbd_frame *frame, char *error, size_t error_size) {
    icbd_conn *conn = context;
    pthread_mutex_lock(&conn->mu);
    bool ok = route_locked(conn, frame, error, error_size);
    pthread_mutex_unlock(&conn->mu);
    return ok;
}
