/*
 * The TLS side of icbd/1 (docs/wire.md section 1): TLS 1.3, ALPN "icbd/1", mutual
 * authentication against the deployment CA, and the icbd identity rules, checked during the
 * handshake so that a refused certificate fails it with an alert.
 */
#ifndef ICBD_TLS_H
#define ICBD_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

/** ALPN protocol id, in the wire format of SSL_set_alpn_protos. */
#define ICBD_ALPN_WIRE "\x06icbd/1"
#define ICBD_ALPN "icbd/1"

/**
 * What one handshake checks about the peer's certificate, and what it found. Attached to the
 * SSL object with SSL_set_app_data for the verify callback; lives as long as the SSL object.
 */
typedef struct icbd_tls_check {
    /** The role the peer must have ("cache"), or NULL for any role. */
    const char *expected_role;
    /** True when verifying a server (extended key usage serverAuth), false for a client. */
    bool peer_is_server;
    /** Where the peer's identity was checked against, for messages: the CA file. */
    const char *ca_file;
    /** Filled in: the peer's URI once its leaf passed, or why the certificate was refused. */
    char peer_uri[96];
    char refusal[384];
} icbd_tls_check;

/**
 * Validates "icbd://ROLE/NAME" (exactly `len` bytes): ROLE one of catalog, replicator, cache,
 * gateway, admin; NAME [a-z0-9][a-z0-9._-]{0,63}; case-sensitive. Copies the role into `role`
 * (at least 11 bytes) when it is valid.
 */
bool icbd_identity_parse(const char *uri, size_t len, char *role, size_t role_size);

/** True for the five role names. */
bool icbd_role_valid(const char *role);

/**
 * The icbd identity of a certificate: exactly one well-formed SAN URI. Copies it into `uri`
 * and returns true, or writes why not into `reason`.
 */
bool icbd_certificate_identity(X509 *certificate, char *uri, size_t uri_size, char *reason, size_t reason_size);

/**
 * A TLS 1.3 context presenting cert_file/key_file and trusting only ca_file, with the icbd
 * verify callback; `server` picks the side. NULL with a reason in `error` when a file is
 * missing or does not parse, or, with `own_identity_required`, when the certificate carries no
 * icbd identity (peers would refuse it; only tests present such certificates on purpose).
 */
SSL_CTX *icbd_tls_context(bool server, bool own_identity_required, const char *ca_file, const char *cert_file,
                          const char *key_file, char *error, size_t error_size);

/** Drains OpenSSL's error queue of this thread into `text` ("" when empty). */
void icbd_tls_errors(char *text, size_t text_size);

/** True when `host` is an IPv4 or IPv6 address literal. */
bool icbd_host_is_ip(const char *host);

#endif
