/*
 * icbd/1 framing (docs/wire.md section 2): a 4-byte big-endian length, then one
 * icbd.rpc.v1.Frame. Pure code, no I/O: the connection, the tests, the test peer and the fuzzer
 * use it alike.
 */
#ifndef ICBD_FRAME_H
#define ICBD_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "icbd/rpc/v1/rpc.pb-c.h"

typedef Icbd__Rpc__V1__Frame icbd_frame;

/** A growable byte buffer. */
typedef struct icbd_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} icbd_bytes;

/** Makes room for `more` bytes; false when out of memory (the buffer is unchanged). */
bool icbd_bytes_reserve(icbd_bytes *bytes, size_t more);
void icbd_bytes_free(icbd_bytes *bytes);

/**
 * Appends the frame's length prefix and encoding. False (with a reason in `error`) when the
 * frame would exceed ICBD_MAX_FRAME_LENGTH or memory runs out; nothing is appended then.
 */
bool icbd_frame_append(icbd_bytes *out, const icbd_frame *frame, char *error, size_t error_size);

/* Builders of the frames a client or server sends; each appends one frame to `out`. */
bool icbd_frame_append_open(icbd_bytes *out, uint32_t stream, const char *method, uint32_t timeout_ms,
                            const char *const *metadata_keys, const char *const *metadata_values, size_t metadata_count,
                            char *error, size_t error_size);
bool icbd_frame_append_message(icbd_bytes *out, uint32_t stream, const void *message, size_t len, char *error,
                               size_t error_size);
bool icbd_frame_append_end(icbd_bytes *out, uint32_t stream, char *error, size_t error_size);
bool icbd_frame_append_cancel(icbd_bytes *out, uint32_t stream, char *error, size_t error_size);
bool icbd_frame_append_credit(icbd_bytes *out, uint32_t stream, uint32_t bytes, char *error, size_t error_size);
bool icbd_frame_append_ping(icbd_bytes *out, uint64_t nonce, bool ack, char *error, size_t error_size);
bool icbd_frame_append_status(icbd_bytes *out, uint32_t stream, uint32_t code, const char *message, char *error,
                              size_t error_size);

/** The name of a frame's kind, for messages: "Open", "message", ... */
const char *icbd_frame_kind_name(const icbd_frame *frame);

/**
 * Receives frames: the sink gets each decoded frame and owns it (free it with
 * icbd_frame_free). Return false from the sink to stop decoding (it writes why into `error`).
 */
typedef bool (*icbd_frame_sink)(void *context, icbd_frame *frame, char *error, size_t error_size);

/**
 * Splits a byte stream into frames.
 *
 * The length is checked as soon as its 4 bytes are in: 0 or more than `max_frame_length` fails
 * before a byte of the frame is buffered or allocated. A frame that arrives whole within one
 * feed is decoded in place; one spread over feeds is gathered into one buffer of its length.
 * After a failure the decoder stays failed.
 */
typedef struct icbd_frame_decoder {
    uint32_t max_frame_length;
    uint8_t header[4];
    size_t header_have;
    uint8_t *body;
    size_t body_len;
    size_t body_have;
    bool failed;
} icbd_frame_decoder;

void icbd_frame_decoder_init(icbd_frame_decoder *decoder, uint32_t max_frame_length);
void icbd_frame_decoder_free(icbd_frame_decoder *decoder);

/**
 * Feeds `len` bytes. Returns true when all were consumed (a partial frame stays buffered); false
 * on a protocol error or when the sink stopped, with the reason in `error`.
 */
bool icbd_frame_decoder_feed(icbd_frame_decoder *decoder, const uint8_t *data, size_t len, icbd_frame_sink sink,
                             void *context, char *error, size_t error_size);

/** Decodes exactly one Frame from `len` bytes (no length prefix); NULL with a reason if invalid. */
icbd_frame *icbd_frame_decode(const uint8_t *data, size_t len, char *error, size_t error_size);

void icbd_frame_free(icbd_frame *frame);

#endif
