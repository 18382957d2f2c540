/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "ca-dir.h"
#include "enroll.h"

/*
 * The enrollment service: decides a request and signs (docs/enrollment.md).
 * One struct enroll_service per daemon; it holds the CA directory (settings
 * and registry) and the device-issuing CA. Every decision that changes state
 * (rate count, token burn, allowlist use, certificate record) happens in one
 * registry transaction, so several daemons can share the registry.
 * No logging above debug; the caller logs the result.
 */

struct enroll_policy {
        uint64_t validity_s;       /* device certificates; 0: the CA's [validity] device */
        uint64_t rate_window_s;    /* fixed rate-limit window */
        uint64_t claim_rate_limit; /* requests per claim per window */
        uint64_t renew_rate_limit; /* renewal requests per identity per window */
        uint64_t renew_replay_s;   /* a renewal with the key of a certificate issued this
                                    * recently gets that certificate again */
        unsigned rsa_min_bits;     /* 2048..8192 */
        size_t max_payload;        /* bytes; at most ENROLL_PAYLOAD_MAX */
};

void enroll_policy_default(struct enroll_policy *p);

/*
 * CSR checks: parses req->csr (PEM or DER, exactly one request), then
 *   key       EC P-256 or P-384, or RSA of rsa_min_bits..8192 bits (weak-key
 *             for smaller RSA and curves below 256 bits, unsupported-key for
 *             every other algorithm or curve);
 *   signature verifies with that key (proof of possession) using SHA-256,
 *             SHA-384 or SHA-512 (bad-csr);
 *   CA:TRUE   a requested basicConstraints CA:TRUE, or an unparsable
 *             extension request, is refused (bad-csr). Every other requested
 *             extension and the subject are ignored: certificates are built
 *             from the registry.
 * Returns the public key. -EBADMSG with err, -ENOMEM.
 */
int enroll_csr_check(const struct enroll_request *req, unsigned rsa_min_bits, EVP_PKEY **ret_key,
                     struct enroll_error *err);

struct enroll_service;

/* Opens the CA directory (ca_config: NULL for DIR/floe-ca.conf) and loads
 * the device CA. err names a bad CA setting. */
int enroll_service_new(const char *ca_dir, const char *ca_config, const struct enroll_policy *p,
                       struct enroll_service **ret, struct floe_config_error *err);
struct enroll_service *enroll_service_free(struct enroll_service *s);
void enroll_service_set_policy(struct enroll_service *s, const struct enroll_policy *p);
/* Loads the device CA again (after a rotation); on failure keeps the old one. */
int enroll_service_reload_issuer(struct enroll_service *s);
/* The device CA's notAfter. */
int64_t enroll_service_issuer_not_after(const struct enroll_service *s);
struct registry *enroll_service_registry(struct enroll_service *s);

struct enroll_result {
        struct enroll_error err; /* reason ENROLL_OK: issued (or replayed) */
        enum enroll_format format;
        int error; /* ENROLL_INTERNAL: the negative errno, for the log */
        uint64_t retry_after_s;
        char identity[CA_IDENTITY_MAX + 1]; /* requested (or renewed) identity, "" unknown */
        bool token;                         /* entitled by a token (else allowlist/renewal) */
        /* ENROLL_OK only */
        char serial[CA_SERIAL_HEX_MAX + 1];
        int64_t not_before, not_after;
        char *certificate; /* owned, PEM */
        bool replay;
};

void enroll_result_clear(struct enroll_result *r);

/*
 * Decides one request of kind for id (the topic's claim or identity) at
 * time now and fills *ret: a certificate, or a refusal with its reason.
 * Always fills *ret (an internal failure is a refusal with reason internal
 * and ret->error set); returns 0, or -EINVAL for a bad kind or id.
 */
int enroll_service_handle(struct enroll_service *s, enum enroll_kind kind, const char *id,
                          const void *payload, size_t len, int64_t now, struct enroll_result *ret);

/*
 * Batches: requests decided between enroll_service_begin() and
 * enroll_service_commit() share one registry transaction, so one fsync
 * covers them all; each runs in a savepoint, so an internal failure undoes
 * that request alone. A result may only be sent after the commit succeeded;
 * if it fails, nothing of the batch was recorded: turn every result into an
 * internal failure with enroll_result_set_internal(). enroll_service_handle()
 * is a batch of one. -EALREADY if a batch is open.
 */
int enroll_service_begin(struct enroll_service *s);
/* Like enroll_service_handle(), inside a batch. */
int enroll_service_decide(struct enroll_service *s, enum enroll_kind kind, const char *id,
                          const void *payload, size_t len, int64_t now, struct enroll_result *ret);
int enroll_service_commit(struct enroll_service *s);
/* Rolls the open batch back (nothing if none is open). */
void enroll_service_abort(struct enroll_service *s);
/* Drops the certificate of a result and makes it an internal failure. */
void enroll_result_set_internal(struct enroll_result *r, int error);

/* The response for a result (enroll_response_encode with the CA chain). */
int enroll_service_respond(const struct enroll_service *s, const struct enroll_result *r,
                           char **ret, size_t *ret_len);
