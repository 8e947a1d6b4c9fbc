/* Pieces of icbd-c shared by its commands. */
#ifndef ICBD_TOOL_H
#define ICBD_TOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "icbd.h"

/** Prints "icbd-c: WHAT: CODE: message" to standard error; returns exit status 1. */
static inline int tool_fail_status(const char *what, const icbd_status *status) {
    fprintf(stderr, "icbd-c: %s: %s: %s\n", what, icbd_code_name(status->code), status->message);
    return 1;
}

/** Prints "icbd-c: ..." to standard error; returns exit status 1. */
__attribute__((format(printf, 1, 2))) int tool_fail(const char *format, ...);

/** Parses 64 hex digits into 32 bytes. */
bool tool_parse_hash(const char *text, uint8_t hash[32]);

/**
 * `chunks`: GetChunks from a cache node; writes each chunk to standard output once its SHA-256
 * matches the hash asked for. Returns the exit status.
 */
int tool_chunks(icbd_conn *conn, const icbd_call_options *call, const uint8_t (*hashes)[32], size_t count);

#endif
