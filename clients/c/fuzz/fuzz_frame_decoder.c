/*
 * libFuzzer target for the icbd/1 frame decoder (src/frame.c): any bytes, fed in pieces chosen
 * by the input, must never crash, leak or read out of bounds; every frame the decoder accepts
 * must encode again and decode to the same frame.
 *
 *   make fuzz && build/fuzz/fuzz-frame-decoder -max_total_time=3600 build/fuzz/corpus fuzz/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "frame.h"

/** Frames above this length are refused here (the real maximum is 16 MiB), so that inputs can
 *  reach both the "too long" and the "complete frame" paths without 16 MiB allocations. */
#define FUZZ_MAX_FRAME 65536

static bool same_frame(const icbd_frame *a, const icbd_frame *b) {
    if (a->stream != b->stream || a->kind_case != b->kind_case) return false;
    switch (a->kind_case) {
    case ICBD__RPC__V1__FRAME__KIND_MESSAGE:
        return a->message.len == b->message.len &&
               (a->message.len == 0 || memcmp(a->message.data, b->message.data, a->message.len) == 0);
    case ICBD__RPC__V1__FRAME__KIND_OPEN:
        return strcmp(a->open->method, b->open->method) == 0 && a->open->timeout_ms == b->open->timeout_ms &&
               a->open->n_metadata == b->open->n_metadata;
    case ICBD__RPC__V1__FRAME__KIND_STATUS:
        return a->status->code == b->status->code && strcmp(a->status->message, b->status->message) == 0;
    case ICBD__RPC__V1__FRAME__KIND_CREDIT: return a->credit->bytes == b->credit->bytes;
    case ICBD__RPC__V1__FRAME__KIND_PING: return a->ping->nonce == b->ping->nonce && a->ping->ack == b->ping->ack;
    default: return true;
    }
}

/**
 * Drops the unknown fields of a message and of every message inside it. protobuf-c keeps them
 * and writes them back as they came, even malformed ones (field 0 behind a non-minimal key),
 * which it then refuses to read again; the round-trip property is about the fields icbd/1
 * defines.
 */
static void strip_unknown_fields(ProtobufCMessage *message) {
    for (unsigned i = 0; i < message->n_unknown_fields; i++) free(message->unknown_fields[i].data);
    free(message->unknown_fields);
    message->unknown_fields = NULL;
    message->n_unknown_fields = 0;
    const ProtobufCMessageDescriptor *descriptor = message->descriptor;
    for (unsigned f = 0; f < descriptor->n_fields; f++) {
        const ProtobufCFieldDescriptor *field = &descriptor->fields[f];
        if (field->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        char *base = (char *)message;
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(uint32_t *)(base + field->quantifier_offset) != field->id) continue;
        }
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(size_t *)(base + field->quantifier_offset);
            ProtobufCMessage **items = *(ProtobufCMessage ***)(base + field->offset);
            for (size_t i = 0; i < count; i++) strip_unknown_fields(items[i]);
        } else {
            ProtobufCMessage *inner = *(ProtobufCMessage **)(base + field->offset);
            if (inner) strip_unknown_fields(inner);
        }
    }
}

static bool round_trip(void *context, icbd_frame *frame, char *error, size_t error_size) {
    (void)context;
    strip_unknown_fields(&frame->base);
    icbd_bytes out = {0};
    if (!icbd_frame_append(&out, frame, error, error_size)) __builtin_trap();  // an accepted frame re-encodes
    icbd_frame *again = icbd_frame_decode(out.data + 4, out.len - 4, error, error_size);
    if (!again || !same_frame(frame, again)) __builtin_trap();
    icbd_frame_free(again);
    icbd_bytes_free(&out);
    icbd_frame_free(frame);
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    // The first byte picks the piece size: 1 to 256 bytes per feed.
    size_t piece = (size_t)data[0] + 1;
    data++;
    size--;
    icbd_frame_decoder decoder;
    icbd_frame_decoder_init(&decoder, FUZZ_MAX_FRAME);
    char error[256];
    bool failed = false;
    for (size_t at = 0; at < size; at += piece) {
        size_t n = size - at < piece ? size - at : piece;
        bool ok = icbd_frame_decoder_feed(&decoder, data + at, n, round_trip, NULL, error, sizeof error);
        if (failed && ok) __builtin_trap();  // a failed decoder stays failed
        failed = failed || !ok;
    }
    icbd_frame_decoder_free(&decoder);
    return 0;
}
