/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ca-dir.h"

/*
 * The enrollment protocol of floe-enrolld (docs/enrollment.md is normative):
 * topics, the request decoder and the response encoder. No I/O and no
 * logging here; the daemon (certs/floe-enrolld.c) does the MQTT side and
 * certs/enroll-service.h the checks and the signing.
 *
 *   request   floe/enroll/v1/<id>/req        (QoS 1, MQTT v5, response topic +
 *                                              correlation data)
 *   response  floe/enroll/v1/<id>/res[/<n>]  (the request's response topic)
 *
 * <id> is a claim CN ("claim-...": first enrollment, on the claim listener)
 * or a device identity ("<tenant>.<device>": renewal, on the device
 * listener). The broker's ACLs make <id> the publisher's certificate CN; the
 * two grammars are disjoint (a claim never contains '.', an identity always
 * does), so the topic alone says which kind of request it is.
 */

#define ENROLL_TOPIC_PREFIX    "floe/enroll/v1/"
#define ENROLL_TOPIC_FILTER    "floe/enroll/v1/+/req"
#define ENROLL_VERSION         1
#define ENROLL_TOPIC_MAX       256 /* longest request or response topic accepted */
#define ENROLL_NONCE_MAX       64  /* longest last level of a response topic */
#define ENROLL_CORRELATION_MAX 256
/* Largest request payload: a CSR (CA_CSR_MAX) and the rest of the map. */
#define ENROLL_PAYLOAD_MAX (CA_CSR_MAX + 4096)
#define ENROLL_TOKEN_MAX   64

/* Why a request was refused: the "reason" of an error response. */
enum enroll_reason {
        ENROLL_OK,
        ENROLL_BAD_REQUEST,      /* bad-request: not a request (syntax, types, fields) */
        ENROLL_BAD_IDENTITY,     /* bad-identity: identity outside the grammar */
        ENROLL_BAD_CSR,          /* bad-csr: not a CSR, bad signature, CA:TRUE asked */
        ENROLL_WEAK_KEY,         /* weak-key: RSA below the minimum, EC below P-256 */
        ENROLL_UNSUPPORTED_KEY,  /* unsupported-key: another algorithm or curve */
        ENROLL_NOT_ENTITLED,     /* not-entitled: no allowlist entry, unknown token, ... */
        ENROLL_TOKEN_USED,       /* token-used: one-time token already burned */
        ENROLL_TOKEN_EXPIRED,    /* token-expired */
        ENROLL_ALREADY_ENROLLED, /* already-enrolled: single-use entry used with another key */
        ENROLL_CLAIM_REVOKED,    /* claim-revoked: the claim certificate was revoked */
        ENROLL_CLAIM_EXPIRED,    /* claim-expired */
        ENROLL_RATE_LIMITED,     /* rate-limited: too many requests of this claim/device */
        ENROLL_INTERNAL,         /* internal: the service failed; retry later */
        _ENROLL_REASON_MAX,
};

/* "ok", "bad-request", ...; NULL out of range. */
const char *enroll_reason_name(enum enroll_reason r);

#define ENROLL_MESSAGE_MAX 160

/* A refusal: machine-readable reason and a human message (never key material). */
struct enroll_error {
        enum enroll_reason reason;
        char message[ENROLL_MESSAGE_MAX];
};

/* Fills err (may be NULL) and returns reason as a negative number-like code:
 * always -EBADMSG, so callers can `return enroll_fail(...)`. */
int enroll_fail(struct enroll_error *err, enum enroll_reason reason, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

enum enroll_kind {
        ENROLL_KIND_CLAIM, /* first enrollment by a claim */
        ENROLL_KIND_RENEW, /* renewal by a device over its own connection */
};

/*
 * Parses "floe/enroll/v1/<id>/req". ret_id (size > CA_NAME_MAX) gets <id>;
 * its grammar decides the kind. -EINVAL for any other topic, or an <id> that
 * is neither a valid claim CN nor a valid identity.
 */
int enroll_topic_parse(const char *topic, enum enroll_kind *ret_kind, char *ret_id, size_t size);

/*
 * Whether a request's response topic may be answered: exactly
 * "floe/enroll/v1/<id>/res" or "floe/enroll/v1/<id>/res/<nonce>", nonce 1..64
 * bytes of [A-Za-z0-9_.-]. Anything else would let one client make the
 * daemon publish into another's topics.
 */
bool enroll_response_topic_valid(const char *id, const char *topic, size_t len);

enum enroll_format {
        ENROLL_FORMAT_JSON,
        ENROLL_FORMAT_CBOR,
};

/* "application/json", "application/cbor". */
const char *enroll_format_content_type(enum enroll_format f);

/*
 * A decoded request. Map keys (JSON object or CBOR map with text keys):
 *   "v"        optional, 1
 *   "identity" text: the requested <tenant>.<device> (renewal: optional, must
 *              equal the topic's identity)
 *   "csr"      text: PEM "CERTIFICATE REQUEST"; CBOR also a byte string: DER
 *   "token"    optional text: a one-time enrollment token
 * Other keys are ignored (at most 16 entries in all). The identity is
 * decoded but not yet checked against the grammar (enroll_identity_check).
 */
struct enroll_request {
        enum enroll_format format;
        char identity[CA_IDENTITY_MAX + 1]; /* "" if absent */
        char *csr;                          /* owned; PEM text (NUL-terminated) or DER */
        size_t csr_len;
        bool csr_der;
        char token[ENROLL_TOKEN_MAX + 1]; /* "" if absent; cleansed by clear */
};

/*
 * Decodes a request of at most max bytes (<= ENROLL_PAYLOAD_MAX). The format
 * is recognised from the first byte: '{' (after JSON white space) is JSON,
 * a CBOR map head is CBOR. -EMSGSIZE (bad-request) if larger than max,
 * -EBADMSG otherwise, with err saying why: bad-request (syntax, duplicate or
 * missing keys, wrong types), bad-identity (NUL, over-long), bad-csr (empty,
 * NUL in a PEM, larger than CA_CSR_MAX). -ENOMEM.
 */
int enroll_request_decode(const void *data, size_t len, size_t max, struct enroll_request *ret,
                          struct enroll_error *err);
/* Frees the CSR and cleanses the token; the struct may be decoded into again. */
void enroll_request_clear(struct enroll_request *r);

/* 0 if identity is a valid device identity, else -EBADMSG with bad-identity
 * and the grammar's reason. */
int enroll_identity_check(const char *identity, struct enroll_error *err);

/* What goes back to the device. Strings are borrowed. */
struct enroll_response {
        enum enroll_reason reason; /* ENROLL_OK: a certificate */
        const char *message;       /* errors: the human message */
        uint64_t retry_after_s;    /* rate-limited: seconds until the window ends */
        /* ENROLL_OK only */
        const char *identity;
        const char *serial;
        int64_t not_before, not_after;
        const char *certificate; /* leaf, PEM */
        const char *chain;       /* issuing CA(s) up to, not including, the root, PEM */
        bool replay;             /* an earlier identical request's certificate */
};

/*
 * Encodes a response in the request's format (a JSON object, or a CBOR map
 * with text keys): "v", "status" ("ok" or "error"), and either "identity",
 * "serial", "not_before", "not_after" (RFC 3339 UTC text), "certificate",
 * "chain", "replay" (bool), or "reason", "message" and, when rate-limited,
 * "retry_after" (seconds). *ret is allocated with floe_malloc.
 */
int enroll_response_encode(enum enroll_format f, const struct enroll_response *resp, char **ret,
                           size_t *ret_len);
