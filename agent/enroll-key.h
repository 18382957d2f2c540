/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The device side of enrollment without any I/O on the network: the device
 * key (OpenSSL 3, optionally from a provider such as tpm2), the CSR, the
 * check of a returned or installed certificate, the renewal time, and the
 * files (docs/enrollment.md, "Device side").
 *
 * Files: the installed pair is [uplink] cert_file and key_file. A request's
 * key is first written to <key_file>.new (the pending key: a retry, even
 * after a restart, sends the same key, so floe-enrolld answers it with the
 * same certificate); the certificate that comes back goes to
 * <cert_file>.new. Installing renames key.new over key, then cert.new over
 * cert. Every write is temp file, fsync, rename, directory fsync. A crash
 * between the two renames leaves a key that does not match cert but matches
 * cert.new: agent_enroll_recover() finishes the install at the next start.
 */

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "settings.h"

#define AGENT_ENROLL_PATH_MAX 4096
#define AGENT_ENROLL_PEM_MAX  (64 << 10) /* certificate + chain */

/* Loads provider name (and "default", which an explicit load would otherwise
 * disable) into the default library context, once per process: libmosquitto's
 * TLS then finds the provider's key decoders too. "" or NULL: nothing. */
int agent_enroll_provider_load(const char *name);

int agent_enroll_key_generate(enum agent_key_type type, const char *propq, EVP_PKEY **ret);
/* -ENOENT, -EBADMSG (no private key in the file), -errno. */
int agent_enroll_key_load(const char *path, const char *propq, EVP_PKEY **ret);
bool agent_enroll_key_is_type(EVP_PKEY *key, enum agent_key_type type);
/* PEM "CERTIFICATE REQUEST" with subject CN = identity, signed with key
 * (SHA-384 for P-384, SHA-256 otherwise). *ret from floe_malloc. */
int agent_enroll_csr(EVP_PKEY *key, const char *identity, const char *propq, char **ret);
/* Writes key as PEM (PKCS#8, or the provider's own form) to path, 0600, atomically. */
int agent_enroll_key_write(EVP_PKEY *key, const char *propq, const char *path);

/* Writes data to path: path.tmp (O_EXCL, mode), fsync, rename, fsync of the directory. */
int agent_enroll_write_file(const char *path, const void *data, size_t len, mode_t mode);
/* rename(from, to) and fsync of to's directory. */
int agent_enroll_rename(const char *from, const char *to);
/* unlink(path) if it exists, and fsync of its directory. */
int agent_enroll_remove(const char *path);

struct agent_enroll_files {
        const char *cert; /* [uplink] cert_file */
        const char *key;  /* [uplink] key_file */
        char cert_new[AGENT_ENROLL_PATH_MAX];
        char key_new[AGENT_ENROLL_PATH_MAX];
};
int agent_enroll_files_init(struct agent_enroll_files *f, const char *cert, const char *key);

/* key.new if it exists, loads and is of type; else a new key written there. */
int agent_enroll_pending_key(const struct agent_enroll_files *f, enum agent_key_type type,
                             const char *propq, EVP_PKEY **ret, bool *ret_reused);
/* Renames key.new (if present) over key, then cert.new over cert. */
int agent_enroll_install(const struct agent_enroll_files *f);
/* Removes cert.new and key.new. */
int agent_enroll_discard(const struct agent_enroll_files *f);

/* What is wrong with a certificate, for logs and `floe-agent status`. */
enum agent_cert_problem {
        AGENT_CERT_OK,
        AGENT_CERT_MISSING,       /* no certificate file */
        AGENT_CERT_UNPARSABLE,    /* not PEM certificates */
        AGENT_CERT_KEY_MISSING,   /* no key file, or it holds no key */
        AGENT_CERT_KEY_MISMATCH,  /* the certificate's public key is not the key's */
        AGENT_CERT_IDENTITY,      /* the CN is not the identity asked for */
        AGENT_CERT_NOT_CLIENT,    /* no clientAuth extended key usage */
        AGENT_CERT_EXPIRED,       /* notAfter passed */
        AGENT_CERT_NOT_YET_VALID, /* notBefore ahead: the clock, or the CA */
        AGENT_CERT_UNTRUSTED,     /* does not chain to the pinned root */
        _AGENT_CERT_PROBLEM_MAX,
};
const char *agent_cert_problem_name(enum agent_cert_problem p);

struct agent_cert_info {
        char identity[128];
        char serial[72];    /* upper-case hex, as `openssl x509 -serial` prints it */
        int64_t not_before; /* Unix seconds */
        int64_t not_after;
};

/*
 * Checks a certificate chain in PEM (the leaf first, then its issuers) for
 * the device: its public key is key's, its CN is identity (NULL: any), it
 * has the clientAuth EKU, and it verifies with purpose sslclient at time now
 * against the root in root_file (the only trust anchor; the rest of the PEM
 * is untrusted). 0; -EBADMSG with *ret_problem and why; -ENOMEM, -errno
 * (root_file). ret_info (may be NULL) is filled whenever the leaf parses, so
 * also with most problems. why may be NULL.
 */
int agent_enroll_verify(const char *pem, size_t len, EVP_PKEY *key, const char *identity,
                        const char *root_file, int64_t now, enum agent_cert_problem *ret_problem,
                        struct agent_cert_info *ret_info, char *why, size_t why_size);
/* The certificates of pem (at most 8), PEM-encoded again and nothing else: what gets
 * installed is exactly what was checked. *ret from floe_malloc. */
int agent_enroll_pem_certs(const char *pem, size_t len, char **ret, size_t *ret_len);
/* The same for files: cert_file and key_file as the uplink would use them. */
int agent_enroll_check_files(const char *cert_file, const char *key_file, const char *propq,
                             const char *identity, const char *root_file, int64_t now,
                             enum agent_cert_problem *ret_problem, struct agent_cert_info *ret_info,
                             char *why, size_t why_size);

/*
 * What a previous run left behind, brought to a consistent state at start:
 * an install cut between its renames is finished; a staged pair (a renewal
 * that had not connected yet) is kept when it checks out and reported in
 * *ret_staged, removed otherwise; a pending key alone is kept. Returns the
 * state of the installed pair as agent_enroll_check_files().
 */
int agent_enroll_recover(const struct agent_enroll_files *f, const char *propq,
                         const char *identity, const char *root_file, int64_t now, bool *ret_staged,
                         enum agent_cert_problem *ret_problem, struct agent_cert_info *ret_info,
                         char *why, size_t why_size);

/*
 * When to renew, in µs of wall clock: not_before + at * lifetime, plus a
 * jitter of random % (j + 1), where j is jitter_us but at most half of what
 * is left of the lifetime after that point (so renewal always starts before
 * the end). Times in seconds.
 */
int64_t agent_enroll_renew_time(int64_t not_before, int64_t not_after, double at,
                                uint64_t jitter_us, uint64_t random);

/* Frees s after overwriting it (tokens, PEM keys). */
void agent_enroll_secret_free(char *s);
