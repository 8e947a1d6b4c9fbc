#include <stdio.h>
#include <string.h>
#include <time.h>

#include "internal.h"

static const char *const code_names[] = {
    "OK",        "CANCELLED",       "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS",  "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",    "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED",
};

const char *icbd_code_name(icbd_code code) {
    if ((unsigned)code < sizeof code_names / sizeof code_names[0]) return code_names[code];
    return "UNRECOGNIZED";
}

const char *icbd_status_detail(const icbd_status *status, const char *key, char *value, size_t value_size) {
    if (!status || !key || !value || value_size == 0) return NULL;
    size_t key_len = strlen(key);
    const char *line = status->details;
    while (*line) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        if (len > key_len && memcmp(line, key, key_len) == 0 && line[key_len] == '=') {
            snprintf(value, value_size, "%.*s", (int)(len - key_len - 1), line + key_len + 1);
            return value;
        }
        if (!end) break;
        line = end + 1;
    }
    return NULL;
}

icbd_code icbd_fail(icbd_status *status, icbd_code code, const char *format, ...) {
    if (!status) return code;
    status->code = code;
    status->from_server = 0;
    status->details[0] = '\0';
    va_list args;
    va_start(args, format);
    vsnprintf(status->message, sizeof status->message, format, args);
    va_end(args);
    return code;
}

void icbd_succeed(icbd_status *status) {
    if (!status) return;
    status->code = ICBD_OK;
    status->from_server = 0;
    status->message[0] = '\0';
    status->details[0] = '\0';
}

uint64_t icbd_now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
}
