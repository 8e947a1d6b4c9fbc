/* peer_serve: the test peer's small service, which also checks that its client keeps icbd/1. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "icbd.h"
#include "icbd/bench/v1/bench.pb-c.h"
#include "icbd/cache/v1/cache.pb-c.h"
#include "icbd/rpc/v1/health.pb-c.h"
#include "peer.h"

/* ---------------------------------------------------------------------------------------------
 * peer_serve */

#define MAX_CALLS 64
#define CREDIT_BATCH (ICBD_INITIAL_WINDOW / 4)

typedef struct served_call {
    bool used;
    uint32_t id;
    char method[128];
    bool ended;
    unsigned messages;
    icbd_bytes request;  // the first request message
    int64_t window;      // message bytes the client may still send
    uint64_t unreturned;
} served_call;

typedef struct service {
    peer_conn *c;
    peer_stats *stats;
    served_call calls[MAX_CALLS];
    uint32_t highest;
} service;

__attribute__((format(printf, 2, 3))) static void violation(service *s, const char *format, ...) {
    char text[256];
    va_list args;
    va_start(args, format);
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    pthread_mutex_lock(&s->stats->mu);
    if (!s->stats->violation[0]) snprintf(s->stats->violation, sizeof s->stats->violation, "%s", text);
    pthread_mutex_unlock(&s->stats->mu);
    fprintf(stderr, "peer: protocol violation by the client: %s\n", text);
}

static served_call *find_call(service *s, uint32_t id) {
    for (size_t i = 0; i < MAX_CALLS; i++) {
        if (s->calls[i].used && s->calls[i].id == id) return &s->calls[i];
    }
    return NULL;
}

static void end_call(served_call *call) {
    icbd_bytes_free(&call->request);
    memset(call, 0, sizeof *call);
}

static bool send_status_with_details(peer_conn *c, uint32_t stream, uint32_t code, const char *message) {
    Icbd__Rpc__V1__Status__DetailsEntry reason = ICBD__RPC__V1__STATUS__DETAILS_ENTRY__INIT;
    reason.key = "reason";
    reason.value = "test";
    Icbd__Rpc__V1__Status__DetailsEntry hint = ICBD__RPC__V1__STATUS__DETAILS_ENTRY__INIT;
    hint.key = "hint";
    hint.value = "none";
    Icbd__Rpc__V1__Status__DetailsEntry *details[] = {&reason, &hint};
    Icbd__Rpc__V1__Status status = ICBD__RPC__V1__STATUS__INIT;
    status.code = code;
    status.message = (char *)message;
    status.n_details = 2;
    status.details = details;
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_STATUS;
    frame.status = &status;
    icbd_bytes out = {0};
    char error[128];
    return peer_send_bytes(c, &out, icbd_frame_append(&out, &frame, error, sizeof error));
}

/**
 * The server side of one streaming call's flow control: what the client lets it send, and the
 * frames of other calls that arrived while it waited (kept for later, in order).
 */
typedef struct outbound_stream {
    service *s;
    served_call *call;
    int64_t window;
    bool cancelled;
    icbd_frame *deferred[256];
    size_t deferred_count;
} outbound_stream;

static void outbound_begin(outbound_stream *out, service *s, served_call *call) {
    memset(out, 0, sizeof *out);
    out->s = s;
    out->call = call;
    out->window = ICBD_INITIAL_WINDOW;
}

/** Sends one message once the client's credit admits it. False when the connection ended. */
static bool outbound_send(outbound_stream *out, const void *message, size_t len) {
    peer_conn *c = out->s->c;
    while (!out->cancelled && (int64_t)len > out->window && out->window < (int64_t)ICBD_INITIAL_WINDOW) {
        icbd_frame *frame = peer_read(c, 30000);
        if (!frame) return false;
        if (frame->stream == out->call->id && frame->kind_case == ICBD__RPC__V1__FRAME__KIND_CREDIT) {
            out->window += frame->credit->bytes;
            pthread_mutex_lock(&out->s->stats->mu);
            out->s->stats->credits_received++;
            pthread_mutex_unlock(&out->s->stats->mu);
            icbd_frame_free(frame);
        } else if (frame->stream == out->call->id && frame->kind_case == ICBD__RPC__V1__FRAME__KIND_CANCEL) {
            out->cancelled = true;
            icbd_frame_free(frame);
        } else if (out->deferred_count < sizeof out->deferred / sizeof out->deferred[0]) {
            out->deferred[out->deferred_count++] = frame;
        } else {
            icbd_frame_free(frame);
        }
    }
    if (out->cancelled) return true;
    if (!peer_send_message(c, out->call->id, message, len)) return false;
    out->window -= (int64_t)len;
    pthread_mutex_lock(&out->s->stats->mu);
    out->s->stats->streamed += len;
    pthread_mutex_unlock(&out->s->stats->mu);
    return true;
}

/** Ends the call with `code` (CANCELLED if the client cancelled) and puts kept frames back. */
static bool outbound_end(outbound_stream *out, bool ok, uint32_t code, const char *message) {
    peer_conn *c = out->s->c;
    if (ok) {
        if (out->cancelled) {
            pthread_mutex_lock(&out->s->stats->mu);
            out->s->stats->cancels++;
            pthread_mutex_unlock(&out->s->stats->mu);
            ok = peer_send_status(c, out->call->id, 1, "the client cancelled the call");
        } else {
            ok = peer_send_status(c, out->call->id, code, message);
        }
    }
    while (out->deferred_count > 0) peer_unread(c, out->deferred[--out->deferred_count]);
    return ok;
}

/** Sends `count` messages of `size` bytes within the client's credit. False when the connection ended. */
static bool stream_messages(service *s, served_call *call, uint32_t count, uint32_t size, bool bench) {
    uint8_t *data = malloc(size ? size : 1);
    uint8_t *packed = bench ? malloc(size + 16) : NULL;
    if (!data || (bench && !packed)) {
        free(data);
        free(packed);
        return false;
    }
    outbound_stream out;
    outbound_begin(&out, s, call);
    uint64_t offset = 0;
    bool ok = true;
    for (uint32_t i = 0; ok && !out.cancelled && i < count; i++) {
        for (uint32_t b = 0; b < size; b++) data[b] = (uint8_t)((offset + b) * 7);
        offset += size;
        if (bench) {
            Icbd__Bench__V1__Payload payload = ICBD__BENCH__V1__PAYLOAD__INIT;
            payload.data = (ProtobufCBinaryData){.len = size, .data = data};
            ok = outbound_send(&out, packed, icbd__bench__v1__payload__pack(&payload, packed));
        } else {
            ok = outbound_send(&out, data, size);
        }
    }
    free(data);
    free(packed);
    return outbound_end(&out, ok, 0, "");
}

/* The chunks GetChunks serves: contents made from their index, SHA-256 as their name. The last
 * one is "bad": it is served under the hash of other bytes, as a corrupt cache would. */
#define PEER_CHUNK_COUNT 5
static const size_t chunk_sizes[PEER_CHUNK_COUNT] = {1000, 1u << 20, 20u << 20, 0, 4096};

static void chunk_bytes(unsigned index, uint8_t *out, size_t len) {
    for (size_t i = 0; i < len; i++) out[i] = (uint8_t)(i * (index + 3) + (i >> 12));
}

static bool chunk_hash(unsigned index, uint8_t hash[32]) {
    size_t len = chunk_sizes[index];
    uint8_t *data = malloc(len ? len : 1);
    if (!data) return false;
    chunk_bytes(index, data, len);
    if (index == PEER_CHUNK_COUNT - 1) data[0] ^= 1;  // the hash of other bytes than those served
    unsigned int digest_len = 0;
    bool ok = EVP_Digest(data, len, hash, &digest_len, EVP_sha256(), NULL) == 1;
    free(data);
    return ok;
}

bool peer_chunk_hashes(char hex[][65], size_t count) {
    static const char digits[] = "0123456789abcdef";
    for (unsigned i = 0; i < count && i < PEER_CHUNK_COUNT; i++) {
        uint8_t hash[32];
        if (!chunk_hash(i, hash)) return false;
        for (int b = 0; b < 32; b++) {
            hex[i][2 * b] = digits[hash[b] >> 4];
            hex[i][2 * b + 1] = digits[hash[b] & 15];
        }
        hex[i][64] = '\0';
    }
    return count == PEER_CHUNK_COUNT;
}

/** GetChunks: the chunks asked for, in order; a chunk over 12 MiB goes in two messages. */
static bool serve_chunks(service *s, served_call *call) {
    Icbd__Cache__V1__GetChunksRequest *request =
        icbd__cache__v1__get_chunks_request__unpack(NULL, call->request.len, call->request.data);
    if (!request) return peer_send_status(s->c, call->id, 3, "the request does not decode as GetChunksRequest");
    uint8_t hashes[PEER_CHUNK_COUNT][32];
    bool ok = true;
    for (unsigned i = 0; ok && i < PEER_CHUNK_COUNT; i++) ok = chunk_hash(i, hashes[i]);
    outbound_stream out;
    outbound_begin(&out, s, call);
    uint32_t code = 0;
    const char *message = "";
    uint8_t *data = NULL, *packed = NULL;
    for (size_t h = 0; ok && !out.cancelled && code == 0 && h < request->n_hashes; h++) {
        int index = -1;
        for (unsigned i = 0; i < PEER_CHUNK_COUNT; i++) {
            if (request->hashes[h].len == 32 && memcmp(request->hashes[h].data, hashes[i], 32) == 0) index = (int)i;
        }
        if (index < 0) {
            code = 5;
            message = "no chunk with that hash";
            break;
        }
        size_t len = chunk_sizes[index];
        free(data);
        free(packed);
        data = malloc(len ? len : 1);
        packed = malloc(len + 64);
        if (!data || !packed) {
            ok = false;
            break;
        }
        chunk_bytes((unsigned)index, data, len);
        // The first message names the chunk; a chunk over 12 MiB continues in a second one.
        size_t first = len > (12u << 20) ? 12u << 20 : len;
        Icbd__Cache__V1__GetChunksResponse head = ICBD__CACHE__V1__GET_CHUNKS_RESPONSE__INIT;
        head.sha256 = (ProtobufCBinaryData){.len = 32, .data = hashes[index]};
        head.data = (ProtobufCBinaryData){.len = first, .data = data};
        ok = outbound_send(&out, packed, icbd__cache__v1__get_chunks_response__pack(&head, packed));
        if (ok && first < len) {
            Icbd__Cache__V1__GetChunksResponse rest = ICBD__CACHE__V1__GET_CHUNKS_RESPONSE__INIT;
            rest.data = (ProtobufCBinaryData){.len = len - first, .data = data + first};
            ok = outbound_send(&out, packed, icbd__cache__v1__get_chunks_response__pack(&rest, packed));
        }
    }
    free(data);
    free(packed);
    icbd__cache__v1__get_chunks_request__free_unpacked(request, NULL);
    return outbound_end(&out, ok, code, message);
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/** The client's End arrived: answer the call. False when the connection ended. */
static bool answer(service *s, served_call *call) {
    peer_conn *c = s->c;
    const char *m = call->method;
    bool ok = true;
    if (strcmp(m, "/icbd.rpc.v1.Health/Check") == 0 || strcmp(m, "/icbd.test.v1.Test/Echo") == 0) {
        if (call->messages != 1) {
            ok = peer_send_status(c, call->id, 3, "a unary call takes exactly one request message");
        } else if (strcmp(m, "/icbd.test.v1.Test/Echo") == 0) {
            ok = peer_send_message(c, call->id, call->request.data, call->request.len) &&
                 peer_send_status(c, call->id, 0, "");
        } else {
            Icbd__Rpc__V1__HealthCheckResponse response = ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__INIT;
            response.status = ICBD__RPC__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
            response.role = "cache";
            response.node = (char *)(s->stats->node ? s->stats->node : "peer");
            response.version = "c-test-peer";
            uint8_t packed[128];
            size_t len = icbd__rpc__v1__health_check_response__pack(&response, packed);
            ok = peer_send_message(c, call->id, packed, len) && peer_send_status(c, call->id, 0, "");
        }
    } else if (strcmp(m, "/icbd.test.v1.Test/Fail") == 0) {
        ok = send_status_with_details(c, call->id, 5, "no such thing");
    } else if (strcmp(m, "/icbd.test.v1.Test/Twice") == 0) {
        ok = peer_send_message(c, call->id, "1", 1) && peer_send_message(c, call->id, "2", 1) &&
             peer_send_status(c, call->id, 0, "");
    } else if (strcmp(m, "/icbd.test.v1.Test/Silent") == 0) {
        return true;  // the call stays open until the client cancels it
    } else if (strcmp(m, "/icbd.test.v1.Test/Stream") == 0) {
        if (call->request.len != 8) {
            ok = peer_send_status(c, call->id, 3, "Test/Stream takes count and size, 8 bytes");
        } else {
            ok = stream_messages(s, call, be32(call->request.data), be32(call->request.data + 4), false);
        }
    } else if (strcmp(m, "/icbd.bench.v1.Bench/Stream") == 0) {
        Icbd__Bench__V1__StreamRequest *request =
            icbd__bench__v1__stream_request__unpack(NULL, call->request.len, call->request.data);
        if (!request || request->size > ICBD_MAX_MESSAGE_LENGTH - 16) {
            ok = peer_send_status(c, call->id, 3, "the request does not decode as StreamRequest or is too large");
        } else {
            ok = stream_messages(s, call, request->count, request->size, true);
        }
        if (request) icbd__bench__v1__stream_request__free_unpacked(request, NULL);
    } else if (strcmp(m, "/icbd.test.v1.Test/SmallThenLarge") == 0) {
        uint8_t *large = calloc(1, 6u << 20);
        outbound_stream out;
        outbound_begin(&out, s, call);
        ok = large && outbound_send(&out, "small", 5) && outbound_send(&out, large, 6u << 20);
        free(large);
        ok = outbound_end(&out, ok, 0, "");
    } else if (strcmp(m, "/icbd.cache.v1.Cache/GetChunks") == 0) {
        ok = serve_chunks(s, call);
    } else if (strcmp(m, "/icbd.test.v1.Test/Upload") == 0) {
        uint64_t total;
        pthread_mutex_lock(&s->stats->mu);
        total = s->stats->uploaded;
        pthread_mutex_unlock(&s->stats->mu);
        uint8_t bytes[8];
        for (int i = 0; i < 8; i++) bytes[i] = (uint8_t)(total >> (56 - 8 * i));
        ok = peer_send_message(c, call->id, bytes, 8) && peer_send_status(c, call->id, 0, "");
    } else {
        char message[200];
        snprintf(message, sizeof message, "unknown method %s", m);
        ok = peer_send_status(c, call->id, 12, message);
    }
    end_call(call);
    return ok;
}

/** Handles one frame; false when the connection must close. */
static bool serve_frame(service *s, icbd_frame *f) {
    peer_conn *c = s->c;
    uint32_t id = f->stream;
    const char *kind = icbd_frame_kind_name(f);
    if (f->kind_case == ICBD__RPC__V1__FRAME__KIND_PING) {
        if (id != 0) {
            violation(s, "%s on stream %u", kind, id);
            return false;
        }
        return true;  // an ack, or a Ping while answering is off
    }
    if (id == 0) {
        violation(s, "%s on stream %u", kind, id);
        return false;
    }
    if (f->kind_case == ICBD__RPC__V1__FRAME__KIND_OPEN) {
        if (id <= s->highest) {
            violation(s, "%s of stream %u, not above the last opened", kind, id);
            return false;
        }
        s->highest = id;
        served_call *call = NULL;
        for (size_t i = 0; i < MAX_CALLS && !call; i++) {
            if (!s->calls[i].used) call = &s->calls[i];
        }
        pthread_mutex_lock(&s->stats->mu);
        s->stats->calls++;
        s->stats->last_timeout_ms = f->open->timeout_ms;
        s->stats->last_metadata[0] = '\0';
        for (size_t i = 0; i < f->open->n_metadata; i++) {
            size_t used = strlen(s->stats->last_metadata);
            snprintf(s->stats->last_metadata + used, sizeof s->stats->last_metadata - used, "%s=%s;",
                     f->open->metadata[i]->key, f->open->metadata[i]->value);
        }
        pthread_mutex_unlock(&s->stats->mu);
        if (!call) return peer_send_status(c, id, 8, "too many calls");
        call->used = true;
        call->id = id;
        call->window = ICBD_INITIAL_WINDOW;
        snprintf(call->method, sizeof call->method, "%s", f->open->method);
        return true;
    }
    if (f->kind_case == ICBD__RPC__V1__FRAME__KIND_STATUS) {
        violation(s, "%s sent by a client (stream %u)", kind, id);
        return false;
    }
    if (id > s->highest) {
        violation(s, "%s for unopened stream %u", kind, id);
        return false;
    }
    served_call *call = find_call(s, id);
    if (!call) return true;  // ended: the frame was in flight
    switch (f->kind_case) {
    case ICBD__RPC__V1__FRAME__KIND_MESSAGE: {
        int64_t len = (int64_t)f->message.len;
        if (call->ended) {
            bool ok = peer_send_status(c, id, 3, "message after the call's End");
            end_call(call);
            return ok;
        }
        if (len > call->window && call->window < (int64_t)ICBD_INITIAL_WINDOW) {
            violation(s, "%s beyond the flow-control window on stream %u", kind, id);
            return false;
        }
        call->window -= len;
        if (call->messages++ == 0) {
            if (!icbd_bytes_reserve(&call->request, f->message.len)) return false;
            if (len) memcpy(call->request.data, f->message.data, f->message.len);
            call->request.len = f->message.len;
        }
        if (strcmp(call->method, "/icbd.test.v1.Test/Upload") == 0) {
            pthread_mutex_lock(&s->stats->mu);
            s->stats->uploaded += (uint64_t)len;
            pthread_mutex_unlock(&s->stats->mu);
        }
        // Consumed at once; credit goes back like the Swift side returns it.
        call->unreturned += (uint64_t)len;
        if (call->unreturned >= CREDIT_BATCH || call->window < (int64_t)CREDIT_BATCH) {
            icbd_bytes out = {0};
            char error[128];
            uint32_t credit = (uint32_t)call->unreturned;
            if (!peer_send_bytes(c, &out, icbd_frame_append_credit(&out, id, credit, error, sizeof error)))
                return false;
            call->window += credit;
            call->unreturned = 0;
        }
        return true;
    }
    case ICBD__RPC__V1__FRAME__KIND_END:
        if (call->ended) {
            bool ok = peer_send_status(c, id, 3, "End after the call's End");
            end_call(call);
            return ok;
        }
        call->ended = true;
        return answer(s, call);
    case ICBD__RPC__V1__FRAME__KIND_CANCEL: {
        pthread_mutex_lock(&s->stats->mu);
        s->stats->cancels++;
        pthread_mutex_unlock(&s->stats->mu);
        bool ok = peer_send_status(c, id, 1, "the client cancelled the call");
        end_call(call);
        return ok;
    }
    case ICBD__RPC__V1__FRAME__KIND_CREDIT:
        pthread_mutex_lock(&s->stats->mu);
        s->stats->credits_received++;
        pthread_mutex_unlock(&s->stats->mu);
        return true;
    default: return true;
    }
}

void peer_serve(peer_conn *c, void *arg) {
    service *s = calloc(1, sizeof *s);
    if (!s) return;
    s->c = c;
    s->stats = arg;
    pthread_mutex_lock(&s->stats->mu);
    s->stats->connections++;
    pthread_mutex_unlock(&s->stats->mu);
    icbd_frame *frame;
    while ((frame = peer_read(c, -1)) != NULL) {
        bool ok = serve_frame(s, frame);
        icbd_frame_free(frame);
        if (!ok) break;
    }
    for (size_t i = 0; i < MAX_CALLS; i++) end_call(&s->calls[i]);
    free(s);
}
