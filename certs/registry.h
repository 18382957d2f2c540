/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ca.h"

/*
 * The certificate registry: every certificate a floe CA issued, claims and
 * what they entitle, one-time enrollment tokens and enrollment rate limits.
 *
 * Backends: SQLite (WAL, busy timeout, foreign keys) by default, PostgreSQL
 * (libpq) for a registry that several hosts share. The SQL is portable (no
 * AUTOINCREMENT, INSERT OR ..., or date functions; upserts as INSERT ... ON
 * CONFLICT ... DO UPDATE, duplicates as ON CONFLICT DO NOTHING so that an
 * -EEXIST never aborts a PostgreSQL transaction; RETURNING, so SQLite 3.35
 * or later; times are BIGINT Unix seconds) and runs through the small statement interface of
 * floe-sql.h. The schema is versioned (table registry_meta, key schema_version); registry_open()
 * creates it or refuses a newer one.
 *
 * Every operation that checks and then changes state does so atomically: in
 * one transaction, with the decisive step an UPDATE whose WHERE clause holds
 * the condition, or an upsert (so it stays correct under PostgreSQL's READ
 * COMMITTED, where a second writer waits for the row and re-checks the WHERE,
 * and across processes sharing the SQLite file). Callers may group
 * operations with registry_begin()/registry_commit(); inside such a
 * transaction the operations do not open their own, and their refusals
 * (-EEXIST, -EALREADY, ...) leave it usable. A database error inside it does
 * not: roll back (or roll back to a savepoint).
 *
 * PostgreSQL: a lost connection is made again by the next call outside a
 * transaction; inside one, calls fail with -EIO until the caller rolls
 * back. Rows locked longer than lock_timeout (10 s unless the role or URI
 * sets one), deadlocks and serialization failures give -EBUSY.
 *
 * Times are Unix seconds supplied by the caller. Return values: 0 or a
 * negative errno; -EIO for a database failure (registry_last_error() has
 * the backend's text, for logs).
 */

struct registry;

/* Opens (creating the schema if needed) the registry at location: a file
 * path, "sqlite:PATH", a libpq URI "postgresql://[user[:password]@]host
 * [:port]/dbname[?param=value...]" ("postgres://" too), or libpq's key=value
 * words after "postgresql:" ("postgresql: host=db dbname=floe"). A
 * PostgreSQL database must exist; the schema needs CREATE on it the first
 * time only. -EIO if the server cannot be reached or refuses the login,
 * -EINVAL for a malformed location, -EPROTO for a schema written by a newer
 * floe. */
int registry_open(const char *location, struct registry **ret);
/* registry_open(); on failure, why (why_size bytes, may be NULL) gets the
 * reason for the log: the backend's message, which names the server and
 * never contains the URI's password. */
int registry_open_explain(const char *location, char *why, size_t why_size, struct registry **ret);
/* location fit for messages: a PostgreSQL location's secrets (user:PASSWORD@,
 * password and sslpassword values, in a URI or key=value words) replaced by
 * "***"; other locations unchanged. Returns buf (truncated to size). */
const char *registry_location_redact(const char *location, char *buf, size_t size);
struct registry *registry_close(struct registry *reg);
/* The backend's last error message ("" if none); borrowed. */
const char *registry_last_error(const struct registry *reg);
/* The schema version this code reads and writes. */
#define REGISTRY_SCHEMA_VERSION 1

int registry_begin(struct registry *reg);
int registry_commit(struct registry *reg);
/* Undo everything since registry_begin(); accepts a registry with no open
 * transaction (then does nothing). */
void registry_rollback(struct registry *reg);

/*
 * One savepoint inside a registry_begin() transaction (SQL SAVEPOINT, in
 * PostgreSQL too): registry_savepoint_rollback() undoes what happened since
 * registry_savepoint() and keeps the rest of the transaction;
 * registry_savepoint_release() keeps it. Lets a caller group several
 * requests into one commit (one fsync) and still undo a failed one alone.
 * -ENOTCONN outside registry_begin(), -EALREADY if one is open.
 */
int registry_savepoint(struct registry *reg);
int registry_savepoint_release(struct registry *reg);
/* A failure here leaves the transaction unusable: roll it back. */
int registry_savepoint_rollback(struct registry *reg);

/* -- certificates ---------------------------------------------------------- */

enum registry_status {
        REGISTRY_VALID,
        REGISTRY_REVOKED,
        REGISTRY_EXPIRED, /* computed: never stored */
};

const char *registry_status_name(enum registry_status st);

struct registry_cert {
        char serial[CA_SERIAL_HEX_MAX + 1]; /* ca_serial_hex() form, the key */
        char identity[CA_NAME_MAX + 1];     /* the CN */
        enum ca_kind kind;
        enum ca_role issuer;
        int64_t not_before;
        int64_t not_after;
        enum registry_status status; /* VALID or REVOKED as stored; see registry_cert_status */
        int64_t revoked_at;          /* 0 unless revoked */
        enum ca_reason reason;
        char key_sha256[65]; /* ca_key_fingerprint(); "" if unknown */
        int64_t issued_at;
        char *pem; /* the certificate; owned by the struct, freed by registry_cert_clear */
};

/* VALID, REVOKED, or EXPIRED when not revoked and not_after <= now. */
enum registry_status registry_cert_status(const struct registry_cert *c, int64_t now);
void registry_cert_clear(struct registry_cert *c);
/* Fills c from a certificate (serial, CN, times, key fingerprint, PEM). */
int registry_cert_from_x509(X509 *x, enum ca_kind kind, enum ca_role issuer, int64_t now,
                            struct registry_cert *ret);

/* A JSON object for listings: identity, kind, issuer, serial, status (at
 * now), not_before, not_after (ca_format_time), and revoked_at and reason
 * when revoked. */
int registry_cert_json(const struct registry_cert *c, int64_t now, json_t **ret);

/* -EEXIST if the serial is already recorded. */
int registry_cert_add(struct registry *reg, const struct registry_cert *c);
/* -ENOENT if unknown. */
int registry_cert_get(struct registry *reg, const char *serial, struct registry_cert *ret);

struct registry_filter {
        const char *identity; /* NULL: any */
        int kind;             /* -1: any, else enum ca_kind */
        int issuer;           /* -1: any, else enum ca_role */
        bool revoked_only;    /* only certificates with status revoked */
        bool with_pem;        /* fill registry_cert.pem */
};

#define REGISTRY_FILTER_ALL ((struct registry_filter){.kind = -1, .issuer = -1})

/* Calls fn for each matching certificate, ordered by identity, then
 * not_before, then serial. Iteration stops at the first non-zero return of
 * fn, which is returned. The struct passed to fn is valid during the call. */
typedef int (*registry_cert_fn)(const struct registry_cert *c, void *userdata);
int registry_cert_foreach(struct registry *reg, const struct registry_filter *f,
                          registry_cert_fn fn, void *userdata);

/* The newest unrevoked, unexpired certificate of identity with that public
 * key (idempotent enrollment retries); -ENOENT if none. */
int registry_cert_find_by_key(struct registry *reg, const char *identity, const char *key_sha256,
                              int64_t now, struct registry_cert *ret);

/* Revokes one certificate: -ENOENT if unknown, -EALREADY if already revoked.
 * Revoking a claim certificate also disables its claim. */
int registry_revoke_serial(struct registry *reg, const char *serial, enum ca_reason reason,
                           int64_t now);
/* Revokes every unrevoked certificate of identity that has not expired;
 * -ENOENT if there is none. ret_n (may be NULL): how many. */
int registry_revoke_identity(struct registry *reg, const char *identity, enum ca_reason reason,
                             int64_t now, size_t *ret_n);

/* Allocates the next CRL number of a CA (1, 2, ...) and records when that
 * CRL was made and when it expires. */
int registry_crl_next(struct registry *reg, enum ca_role ca, int64_t this_update,
                      int64_t next_update, uint64_t *ret_number);
/* The last CRL recorded for a CA; -ENOENT if none yet. */
int registry_crl_last(struct registry *reg, enum ca_role ca, uint64_t *ret_number,
                      int64_t *ret_this_update, int64_t *ret_next_update);

/* -- claims, entitlements, tokens, rate limits ----------------------------- */

struct registry_claim {
        char claim_id[CA_CLAIM_ID_MAX + 1]; /* the claim certificate's CN */
        char tenant[64];                    /* "" : identities of any tenant */
        int64_t created_at;
        int64_t expires_at; /* the claim stops entitling anything after this */
        bool disabled;      /* revoked */
};

/* -EEXIST if the claim exists. The tenant must be a valid identity part or "". */
int registry_claim_add(struct registry *reg, const struct registry_claim *c);
int registry_claim_get(struct registry *reg, const char *claim_id, struct registry_claim *ret);
/* Disables a claim (its entitlements and tokens stop working); -ENOENT. */
int registry_claim_disable(struct registry *reg, const char *claim_id);

/*
 * Allowlist: claim_id may enroll identity (which must lie in the claim's
 * tenant if it has one). Single use unless reusable. -EEXIST if present,
 * -ENOENT for an unknown claim, -EINVAL for a bad identity or tenant.
 */
int registry_entitlement_add(struct registry *reg, const char *claim_id, const char *identity,
                             bool reusable, int64_t now);
/*
 * Atomically uses an allowlist entry for an enrollment of identity with a key
 * (ca_key_fingerprint). 0: used now (*ret_replay false), or this very
 * identity+key used it before (*ret_replay true: an idempotent retry, nothing
 * changes). -EPERM: not entitled (no entry); -EALREADY: single-use entry used
 * by another key; -EKEYREVOKED: claim disabled; -EKEYEXPIRED: claim expired.
 */
int registry_entitlement_use(struct registry *reg, const char *claim_id, const char *identity,
                             const char *key_sha256, int64_t now, bool *ret_replay);

/* Token text: "floe-et1-" + 32 lower-case hex digits (128 random bits). */
#define REGISTRY_TOKEN_PREFIX "floe-et1-"
#define REGISTRY_TOKEN_LEN    (sizeof(REGISTRY_TOKEN_PREFIX) - 1 + 32)

/* A fresh random token (NUL-terminated into buf, size > REGISTRY_TOKEN_LEN). */
int registry_token_generate(char *buf, size_t size);
/* Lower-case hex SHA-256 of the token text: what the registry stores. */
int registry_token_hash(const char *token, char ret[65]);
/*
 * Records a one-time token for claim_id, optionally bound to one identity
 * (NULL: any identity in the claim's tenant; the claim must then have one).
 * Only the hash is stored; the caller shows the token once.
 */
int registry_token_add(struct registry *reg, const char *claim_id, const char *token,
                       const char *identity, int64_t expires_at, int64_t now);
/*
 * Atomically burns a token presented by claim_id to enroll identity with a
 * key. 0: burned now, or (*ret_replay true) burned before by the same
 * claim, identity and key (an idempotent retry). -ENOENT: unknown token or
 * another claim's; -EALREADY: already used otherwise; -EKEYEXPIRED: token
 * or claim expired; -EPERM: bound to another identity or identity outside
 * the claim's tenant; -EKEYREVOKED: claim disabled; -EINVAL: malformed.
 */
int registry_token_burn(struct registry *reg, const char *claim_id, const char *token,
                        const char *identity, const char *key_sha256, int64_t now,
                        bool *ret_replay);
/* Tokens of a claim: total and not yet used (for listings). */
int registry_token_count(struct registry *reg, const char *claim_id, uint64_t *ret_total,
                         uint64_t *ret_unused);

/*
 * Fixed-window rate limit per claim: counts one attempt in the window
 * [now - now % window_s, +window_s) and returns -EDQUOT if that makes more
 * than limit attempts in it (the attempt is still counted). ret_count (may be
 * NULL): attempts in the window including this one. The claim's windows
 * older than the current one are pruned.
 */
int registry_rate_hit(struct registry *reg, const char *claim_id, int64_t now, uint64_t window_s,
                      uint64_t limit, uint64_t *ret_count);
