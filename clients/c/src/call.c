/*
 * Calls: Open, messages and End out; messages and one Status in; flow control both ways
 * (docs/wire.md sections 3 and 4); deadlines and cancellation. unary.c builds on these.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define USE_STATUS(status)        \
    icbd_status status##_ignored; \
    if (!(status)) (status) = &status##_ignored

/* ---------------------------------------------------------------------------------------------
 * With conn->mu held */

static void drop_messages_locked(icbd_call *call) {
    while (call->head) {
        icbd_message_node *node = call->head;
        call->head = node->next;
        icbd_frame_free(node->frame);
        free(node);
    }
    call->tail = NULL;
    call->buffered = 0;
}

void icbd_call_finish_locked(icbd_call *call, const icbd_status *status) {
    if (call->over) return;
    call->over = true;
    call->final = *status;
    // Messages that arrived before a server's Status are still read; a call the client ended
    // (failure, deadline, cancel) has no use for them.
    if (!status->from_server) drop_messages_locked(call);
    if (call->active) {
        icbd_conn *conn = call->conn;
        if (call->prev_active) {
            call->prev_active->next_active = call->next_active;
        } else {
            conn->active = call->next_active;
        }
        if (call->next_active) call->next_active->prev_active = call->prev_active;
        call->prev_active = call->next_active = NULL;
        call->active = false;
    }
    pthread_cond_broadcast(&call->conn->cv);
}

/** Ends the call from this side and tells the server, which stops its work. */
void icbd_call_abort_locked(icbd_call *call, const icbd_status *status) {
    bool was_over = call->over;
    icbd_call_finish_locked(call, status);
    icbd_conn *conn = call->conn;
    if (!was_over && conn->state == ICBD_CONN_READY) {
        char error[128];
        // Only memory can fail here; the server then learns at the latest when the connection ends.
        if (icbd_frame_append_cancel(&conn->out, call->id, error, sizeof error)) icbd_conn_wake_locked(conn);
    }
}

/** Waits on the connection; on the call's give-up time, ends it with DEADLINE_EXCEEDED. */
static void wait_locked(icbd_call *call) {
    if (icbd_conn_wait_locked(call->conn, call->give_up_at)) return;
    icbd_status expired;
    icbd_fail(&expired, ICBD_DEADLINE_EXCEEDED, "%s: no answer within the call's deadline of %u ms", call->method,
              call->timeout_ms);
    icbd_call_abort_locked(call, &expired);
}

/**
 * Returns the bytes the caller has read to the server as credit: in batches (a quarter window,
 * or sooner when the server's window runs low), or all of them when `waiting`, that is when the
 * caller has read everything and waits for more. The latter keeps a server from stalling on a
 * message larger than what is left of its window: such a message may only go once the whole
 * window is back, and batching alone could hold back the last, small, part of it forever.
 */
static void return_credit_locked(icbd_call *call, bool waiting) {
    icbd_conn *conn = call->conn;
    if (call->over || conn->state != ICBD_CONN_READY || call->unreturned == 0) return;
    if (!waiting && call->unreturned < ICBD_CREDIT_BATCH && call->receive_window >= (int64_t)ICBD_CREDIT_BATCH) return;
    uint32_t credit = call->unreturned > UINT32_MAX ? UINT32_MAX : (uint32_t)call->unreturned;
    char error[128];
    if (!icbd_frame_append_credit(&conn->out, call->id, credit, error, sizeof error)) return;  // retried next read
    call->receive_window += credit;
    call->unreturned -= credit;
    icbd_conn_wake_locked(conn);
}

static icbd_code final_status_locked(icbd_call *call, icbd_status *status) {
    *status = call->final;
    return call->final.code;
}

/* ---------------------------------------------------------------------------------------------
 * Starting calls */

static icbd_code start(icbd_conn *conn, const char *method, const icbd_call_options *options, const void *request,
                       size_t request_len, bool has_request, icbd_call **out, icbd_status *status) {
    if (out) *out = NULL;
    if (!conn || !method || !out || (has_request && !request && request_len > 0)) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
    }
    if (method[0] != '/' || !strchr(method + 1, '/')) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "method '%s' is not /package.Service/Method", method);
    }
    if (has_request && request_len > ICBD_MAX_MESSAGE_LENGTH) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "a %zu-byte request exceeds the %u-byte icbd/1 maximum",
                         request_len, ICBD_MAX_MESSAGE_LENGTH);
    }
    icbd_call_options defaults = {0};
    if (!options) options = &defaults;
    const char **keys = NULL, **values = NULL;
    if (options->metadata_count > 0) {
        keys = calloc(options->metadata_count, sizeof *keys);
        values = calloc(options->metadata_count, sizeof *values);
        if (!keys || !values) {
            free(keys);
            free(values);
            return icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "out of memory");
        }
        for (size_t i = 0; i < options->metadata_count; i++) {
            keys[i] = options->metadata[i].key;
            values[i] = options->metadata[i].value;
            if (!keys[i] || !values[i]) {
                free(keys);
                free(values);
                return icbd_fail(status, ICBD_INVALID_ARGUMENT, "metadata entry %zu has a NULL key or value", i);
            }
        }
    }
    icbd_call *call = calloc(1, sizeof *call);
    char *method_copy = strdup(method);
    if (!call || !method_copy) {
        free(call);
        free(method_copy);
        free(keys);
        free(values);
        return icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "out of memory");
    }
    call->conn = conn;
    call->method = method_copy;
    call->timeout_ms = options->timeout_ms;
    call->give_up_at =
        options->timeout_ms ? icbd_now_ns() + (uint64_t)options->timeout_ms * 1000000ull + ICBD_DEADLINE_GRACE_NS : 0;
    call->send_window = ICBD_INITIAL_WINDOW;
    call->receive_window = ICBD_INITIAL_WINDOW;

    icbd_code code = ICBD_OK;
    pthread_mutex_lock(&conn->mu);
    // A busy connection slows new calls down like it slows messages.
    while (conn->state == ICBD_CONN_READY && conn->out.len >= ICBD_WRITE_HIGH_WATER) {
        if (!icbd_conn_wait_locked(conn, call->give_up_at)) {
            code =
                icbd_fail(status, ICBD_DEADLINE_EXCEEDED, "%s: the connection stayed busy past the deadline", method);
            break;
        }
    }
    if (code == ICBD_OK && conn->state != ICBD_CONN_READY) {
        code = icbd_fail(status, ICBD_UNAVAILABLE, "%s", conn->failure.message);
    }
    if (code == ICBD_OK && conn->last_stream == UINT32_MAX) {
        code = icbd_fail(status, ICBD_UNAVAILABLE, "the connection to %s has used all stream ids; connect again",
                         conn->address);
    }
    if (code == ICBD_OK) {
        // Ids are taken and frames queued under one lock, so Opens reach the wire in id order.
        call->id = ++conn->last_stream;
        size_t mark = conn->out.len;
        char error[256];
        bool queued = icbd_frame_append_open(&conn->out, call->id, method, options->timeout_ms, keys, values,
                                             options->metadata_count, error, sizeof error);
        if (queued && has_request) {
            queued = icbd_frame_append_message(&conn->out, call->id, request, request_len, error, sizeof error) &&
                     icbd_frame_append_end(&conn->out, call->id, error, sizeof error);
            // A fresh window admits any first message.
            call->send_window -= (int64_t)request_len;
            call->requests_ended = true;
        }
        if (!queued) {
            conn->out.len = mark;  // the id stays skipped, which the server counts as ended
            code = icbd_fail(status, ICBD_INVALID_ARGUMENT, "%s: %s", method, error);
        } else {
            call->active = true;
            call->next_active = conn->active;
            if (conn->active) conn->active->prev_active = call;
            conn->active = call;
            conn->refs++;
            icbd_conn_wake_locked(conn);
        }
    }
    pthread_mutex_unlock(&conn->mu);
    free(keys);
    free(values);
    if (code != ICBD_OK) {
        free(call->method);
        free(call);
        return code;
    }
    icbd_succeed(status);
    *out = call;
    return ICBD_OK;
}

icbd_code icbd_call_start(icbd_conn *conn, const char *method, const icbd_call_options *options, icbd_call **call,
                          icbd_status *status) {
    USE_STATUS(status);
    return start(conn, method, options, NULL, 0, false, call, status);
}

icbd_code icbd_server_stream_start(icbd_conn *conn, const char *method, const void *request, size_t request_len,
                                   const icbd_call_options *options, icbd_call **call, icbd_status *status) {
    USE_STATUS(status);
    return start(conn, method, options, request, request_len, true, call, status);
}

/** Packs a protobuf-c message into a malloc'd buffer (at least 1 byte, so never NULL). */
/* ---------------------------------------------------------------------------------------------
 * Sending */

icbd_code icbd_call_send(icbd_call *call, const void *message, size_t len, icbd_status *status) {
    USE_STATUS(status);
    if (!call || (!message && len > 0)) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
    if (len > ICBD_MAX_MESSAGE_LENGTH) {
        return icbd_fail(status, ICBD_INVALID_ARGUMENT, "a %zu-byte message exceeds the %u-byte icbd/1 maximum", len,
                         ICBD_MAX_MESSAGE_LENGTH);
    }
    icbd_conn *conn = call->conn;
    icbd_code code = ICBD_OK;
    pthread_mutex_lock(&conn->mu);
    for (;;) {
        if (call->over) {
            code = final_status_locked(call, status);
            if (code == ICBD_OK) {
                code =
                    icbd_fail(status, ICBD_FAILED_PRECONDITION, "%s: the server already ended the call", call->method);
            }
            break;
        }
        if (call->requests_ended) {
            code = icbd_fail(status, ICBD_FAILED_PRECONDITION, "%s: a message after the call's End", call->method);
            break;
        }
        // A message larger than what is left may go once the whole initial window is available.
        bool admitted = (int64_t)len <= call->send_window || call->send_window >= (int64_t)ICBD_INITIAL_WINDOW;
        if (admitted && conn->out.len < ICBD_WRITE_HIGH_WATER) {
            char error[256];
            if (!icbd_frame_append_message(&conn->out, call->id, message, len, error, sizeof error)) {
                code = icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "%s: %s", call->method, error);
                break;
            }
            call->send_window -= (int64_t)len;
            icbd_conn_wake_locked(conn);
            icbd_succeed(status);
            break;
        }
        wait_locked(call);
    }
    pthread_mutex_unlock(&conn->mu);
    return code;
}

icbd_code icbd_call_end(icbd_call *call, icbd_status *status) {
    USE_STATUS(status);
    if (!call) return icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL call");
    icbd_conn *conn = call->conn;
    icbd_code code = ICBD_OK;
    pthread_mutex_lock(&conn->mu);
    if (!call->requests_ended && !call->over) {
        char error[128];
        if (icbd_frame_append_end(&conn->out, call->id, error, sizeof error)) {
            call->requests_ended = true;
            icbd_conn_wake_locked(conn);
        } else {
            code = icbd_fail(status, ICBD_RESOURCE_EXHAUSTED, "%s: %s", call->method, error);
        }
    }
    pthread_mutex_unlock(&conn->mu);
    if (code == ICBD_OK) icbd_succeed(status);
    return code;
}

/* ---------------------------------------------------------------------------------------------
 * Receiving */

/** Hands the last message back: its bytes become credit. */
static icbd_frame *release_current_locked(icbd_call *call) {
    icbd_frame *frame = call->current;
    if (frame) {
        call->current = NULL;
        call->unreturned += frame->message.len;
        return_credit_locked(call, false);
    }
    return frame;
}

int icbd_call_recv(icbd_call *call, const uint8_t **data, size_t *len, icbd_status *status) {
    USE_STATUS(status);
    if (!call || !data || !len) {
        icbd_fail(status, ICBD_INVALID_ARGUMENT, "NULL argument");
        return 0;
    }
    *data = NULL;
    *len = 0;
    icbd_conn *conn = call->conn;
    int got = 0;
    pthread_mutex_lock(&conn->mu);
    icbd_frame *done = release_current_locked(call);
    for (;;) {
        if (call->head) {
            icbd_message_node *node = call->head;
            call->head = node->next;
            if (!call->head) call->tail = NULL;
            call->buffered -= node->frame->message.len;
            call->current = node->frame;
            free(node);
            *data = call->current->message.data ? call->current->message.data : (const uint8_t *)"";
            *len = call->current->message.len;
            icbd_succeed(status);
            got = 1;
            break;
        }
        if (call->over) {
            final_status_locked(call, status);
            break;
        }
        return_credit_locked(call, true);
        wait_locked(call);
    }
    pthread_mutex_unlock(&conn->mu);
    icbd_frame_free(done);
    return got;
}

/* ---------------------------------------------------------------------------------------------
 * The rest */

size_t icbd_call_buffered(icbd_call *call) {
    if (!call) return 0;
    pthread_mutex_lock(&call->conn->mu);
    size_t buffered = call->buffered;
    pthread_mutex_unlock(&call->conn->mu);
    return buffered;
}

void icbd_call_free(icbd_call *call) {
    if (!call) return;
    icbd_conn *conn = call->conn;
    pthread_mutex_lock(&conn->mu);
    if (!call->over) {
        icbd_status cancelled;
        icbd_fail(&cancelled, ICBD_CANCELLED, "%s: cancelled by icbd_call_free", call->method);
        icbd_call_abort_locked(call, &cancelled);
    }
    drop_messages_locked(call);
    icbd_frame *current = call->current;
    call->current = NULL;
    bool last = icbd_conn_release_locked(conn);
    pthread_mutex_unlock(&conn->mu);
    icbd_frame_free(current);
    free(call->method);
    free(call);
    if (last) icbd_conn_destroy(conn);
}
