#include "frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "icbd.h"

bool icbd_bytes_reserve(icbd_bytes *bytes, size_t more) {
    if (more <= bytes->cap - bytes->len) return true;
    if (more > SIZE_MAX / 2 - bytes->len) return false;
    size_t cap = bytes->cap ? bytes->cap : 256;
    while (cap < bytes->len + more) cap *= 2;
    uint8_t *data = realloc(bytes->data, cap);
    if (!data) return false;
    bytes->data = data;
    bytes->cap = cap;
    return true;
}

void icbd_bytes_free(icbd_bytes *bytes) {
    free(bytes->data);
    *bytes = (icbd_bytes){0};
}

bool icbd_frame_append(icbd_bytes *out, const icbd_frame *frame, char *error, size_t error_size) {
    size_t size = icbd__rpc__v1__frame__get_packed_size(frame);
    if (size == 0 || size > ICBD_MAX_FRAME_LENGTH) {
        snprintf(error, error_size, "a %s frame of %zu bytes is outside the 1...%u bytes icbd/1 allows",
                 icbd_frame_kind_name(frame), size, ICBD_MAX_FRAME_LENGTH);
        return false;
    }
    if (!icbd_bytes_reserve(out, 4 + size)) {
        snprintf(error, error_size, "out of memory for a frame of %zu bytes", size);
        return false;
    }
    uint8_t *p = out->data + out->len;
    p[0] = (uint8_t)(size >> 24);
    p[1] = (uint8_t)(size >> 16);
    p[2] = (uint8_t)(size >> 8);
    p[3] = (uint8_t)size;
    size_t packed = icbd__rpc__v1__frame__pack(frame, p + 4);
    if (packed != size) {
        snprintf(error, error_size, "protobuf-c packed %zu bytes of a %zu-byte frame", packed, size);
        return false;
    }
    out->len += 4 + size;
    return true;
}

bool icbd_frame_append_open(icbd_bytes *out, uint32_t stream, const char *method, uint32_t timeout_ms,
                            const char *const *metadata_keys, const char *const *metadata_values, size_t metadata_count,
                            char *error, size_t error_size) {
    Icbd__Rpc__V1__Open open = ICBD__RPC__V1__OPEN__INIT;
    open.method = (char *)method;
    open.timeout_ms = timeout_ms;
    Icbd__Rpc__V1__Open__MetadataEntry *entries = NULL;
    Icbd__Rpc__V1__Open__MetadataEntry **pointers = NULL;
    if (metadata_count > 0) {
        entries = calloc(metadata_count, sizeof *entries);
        pointers = calloc(metadata_count, sizeof *pointers);
        if (!entries || !pointers) {
            free(entries);
            free(pointers);
            snprintf(error, error_size, "out of memory for %zu metadata entries", metadata_count);
            return false;
        }
        for (size_t i = 0; i < metadata_count; i++) {
            Icbd__Rpc__V1__Open__MetadataEntry entry = ICBD__RPC__V1__OPEN__METADATA_ENTRY__INIT;
            entry.key = (char *)metadata_keys[i];
            entry.value = (char *)metadata_values[i];
            entries[i] = entry;
            pointers[i] = &entries[i];
        }
        open.n_metadata = metadata_count;
        open.metadata = pointers;
    }
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_OPEN;
    frame.open = &open;
    bool ok = icbd_frame_append(out, &frame, error, error_size);
    free(entries);
    free(pointers);
    return ok;
}

bool icbd_frame_append_message(icbd_bytes *out, uint32_t stream, const void *message, size_t len, char *error,
                               size_t error_size) {
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_MESSAGE;
    frame.message.len = len;
    frame.message.data = (uint8_t *)message;
    return icbd_frame_append(out, &frame, error, error_size);
}

bool icbd_frame_append_end(icbd_bytes *out, uint32_t stream, char *error, size_t error_size) {
    Icbd__Rpc__V1__End end = ICBD__RPC__V1__END__INIT;
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_END;
    frame.end = &end;
    return icbd_frame_append(out, &frame, error, error_size);
}

bool icbd_frame_append_cancel(icbd_bytes *out, uint32_t stream, char *error, size_t error_size) {
    Icbd__Rpc__V1__Cancel cancel = ICBD__RPC__V1__CANCEL__INIT;
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_CANCEL;
    frame.cancel = &cancel;
    return icbd_frame_append(out, &frame, error, error_size);
}

bool icbd_frame_append_credit(icbd_bytes *out, uint32_t stream, uint32_t bytes, char *error, size_t error_size) {
    Icbd__Rpc__V1__Credit credit = ICBD__RPC__V1__CREDIT__INIT;
    credit.bytes = bytes;
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_CREDIT;
    frame.credit = &credit;
    return icbd_frame_append(out, &frame, error, error_size);
}

bool icbd_frame_append_ping(icbd_bytes *out, uint64_t nonce, bool ack, char *error, size_t error_size) {
    Icbd__Rpc__V1__Ping ping = ICBD__RPC__V1__PING__INIT;
    ping.nonce = nonce;
    ping.ack = ack;
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_PING;
    frame.ping = &ping;
    return icbd_frame_append(out, &frame, error, error_size);
}

bool icbd_frame_append_status(icbd_bytes *out, uint32_t stream, uint32_t code, const char *message, char *error,
                              size_t error_size) {
    Icbd__Rpc__V1__Status status = ICBD__RPC__V1__STATUS__INIT;
    status.code = code;
    status.message = (char *)(message ? message : "");
    icbd_frame frame = ICBD__RPC__V1__FRAME__INIT;
    frame.stream = stream;
    frame.kind_case = ICBD__RPC__V1__FRAME__KIND_STATUS;
    frame.status = &status;
    return icbd_frame_append(out, &frame, error, error_size);
}

const char *icbd_frame_kind_name(const icbd_frame *frame) {
    switch (frame->kind_case) {
    case ICBD__RPC__V1__FRAME__KIND_OPEN: return "Open";
    case ICBD__RPC__V1__FRAME__KIND_MESSAGE: return "message";
    case ICBD__RPC__V1__FRAME__KIND_END: return "End";
    case ICBD__RPC__V1__FRAME__KIND_STATUS: return "Status";
    case ICBD__RPC__V1__FRAME__KIND_CANCEL: return "Cancel";
    case ICBD__RPC__V1__FRAME__KIND_CREDIT: return "Credit";
    case ICBD__RPC__V1__FRAME__KIND_PING: return "Ping";
    default: return "kindless";
    }
}

icbd_frame *icbd_frame_decode(const uint8_t *data, size_t len, char *error, size_t error_size) {
    icbd_frame *frame = icbd__rpc__v1__frame__unpack(NULL, len, data);
    if (!frame) {
        snprintf(error, error_size, "%zu bytes do not decode as an icbd.rpc.v1.Frame", len);
        return NULL;
    }
    if (frame->kind_case == ICBD__RPC__V1__FRAME__KIND__NOT_SET) {
        snprintf(error, error_size, "frame on stream %u has no kind", frame->stream);
        icbd_frame_free(frame);
        return NULL;
    }
    return frame;
}

void icbd_frame_free(icbd_frame *frame) {
    if (frame) icbd__rpc__v1__frame__free_unpacked(frame, NULL);
}

void icbd_frame_decoder_init(icbd_frame_decoder *decoder, uint32_t max_frame_length) {
    *decoder = (icbd_frame_decoder){.max_frame_length = max_frame_length ? max_frame_length : ICBD_MAX_FRAME_LENGTH};
}

void icbd_frame_decoder_free(icbd_frame_decoder *decoder) {
    free(decoder->body);
    decoder->body = NULL;
    decoder->body_len = decoder->body_have = decoder->header_have = 0;
}

static bool deliver(const uint8_t *bytes, size_t len, icbd_frame_sink sink, void *context, char *error,
                    size_t error_size) {
    icbd_frame *frame = icbd_frame_decode(bytes, len, error, error_size);
    if (!frame) return false;
    return sink(context, frame, error, error_size);
}

bool icbd_frame_decoder_feed(icbd_frame_decoder *d, const uint8_t *data, size_t len, icbd_frame_sink sink,
                             void *context, char *error, size_t error_size) {
    if (d->failed) {
        snprintf(error, error_size, "the frame decoder failed earlier");
        return false;
    }
    while (len > 0) {
        if (!d->body) {
            size_t take = 4 - d->header_have;
            if (take > len) take = len;
            memcpy(d->header + d->header_have, data, take);
            d->header_have += take;
            data += take;
            len -= take;
            if (d->header_have < 4) break;
            uint32_t length = (uint32_t)d->header[0] << 24 | (uint32_t)d->header[1] << 16 |
                              (uint32_t)d->header[2] << 8 | (uint32_t)d->header[3];
            d->header_have = 0;
            if (length == 0 || length > d->max_frame_length) {
                snprintf(error, error_size, "frame length %u is outside 1...%u", length, d->max_frame_length);
                d->failed = true;
                return false;
            }
            if (length <= len) {
                // The whole frame is here: decode it where it lies.
                if (!deliver(data, length, sink, context, error, error_size)) {
                    d->failed = true;
                    return false;
                }
                data += length;
                len -= length;
                continue;
            }
            d->body = malloc(length);
            if (!d->body) {
                snprintf(error, error_size, "out of memory for a frame of %u bytes", length);
                d->failed = true;
                return false;
            }
            d->body_len = length;
            d->body_have = 0;
        }
        size_t take = d->body_len - d->body_have;
        if (take > len) take = len;
        memcpy(d->body + d->body_have, data, take);
        d->body_have += take;
        data += take;
        len -= take;
        if (d->body_have < d->body_len) break;
        uint8_t *body = d->body;
        size_t body_len = d->body_len;
        d->body = NULL;
        d->body_len = d->body_have = 0;
        bool ok = deliver(body, body_len, sink, context, error, error_size);
        free(body);
        if (!ok) {
            d->failed = true;
            return false;
        }
    }
    return true;
}
