/* SPDX-License-Identifier: Apache-2.0 */
/* The registry's claims: allowlist entitlements, one-time tokens, rate limits. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "floe-alloc.h"
#include "registry-internal.h"

static bool tenant_valid(const char *tenant)
{
        size_t len = strlen(tenant);
        char probe[CA_IDENTITY_MAX + 1];

        if (len == 0)
                return true;
        /* A tenant is valid iff "<tenant>.x" is a valid identity. */
        if (len > 63 || snprintf(probe, sizeof(probe), "%s.x", tenant) >= (int)sizeof(probe))
                return false;
        return ca_name_check(CA_KIND_DEVICE, probe) == 0;
}

static bool in_tenant(const char *tenant, const char *identity)
{
        size_t len = strlen(tenant);

        return len == 0 || (strncmp(identity, tenant, len) == 0 && identity[len] == '.');
}

int registry_claim_add(struct registry *reg, const struct registry_claim *c)
{
        int64_t n = 0;
        int r;

        if (ca_name_check(CA_KIND_CLAIM, c->claim_id) < 0 || !tenant_valid(c->tenant) ||
            c->expires_at <= c->created_at)
                return -EINVAL;
        r = reg_exec(reg, &n,
                     "INSERT INTO claims (claim_id, tenant, created_at, expires_at, disabled)"
                     " VALUES (?, ?, ?, ?, ?)" ON_DUPLICATE,
                     REG_T(c->claim_id), REG_T(c->tenant), REG_I(c->created_at),
                     REG_I(c->expires_at), REG_I((int64_t)c->disabled));
        return r < 0 ? r : n == 0 ? -EEXIST : 0;
}

int registry_claim_get(struct registry *reg, const char *claim_id, struct registry_claim *ret)
{
        struct registry_claim c = {0};
        struct floe_sql_stmt *st;
        int r;

        r = reg_query(reg, &st,
                      "SELECT claim_id, tenant, created_at, expires_at, disabled FROM claims"
                      " WHERE claim_id = ?",
                      REG_T(claim_id));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        if (r > 0)
                r = reg_column_copy(reg, st, 0, c.claim_id, sizeof(c.claim_id));
        if (r >= 0)
                r = reg_column_copy(reg, st, 1, c.tenant, sizeof(c.tenant));
        if (r >= 0) {
                c.created_at = reg->ops->column_int64(st, 2);
                c.expires_at = reg->ops->column_int64(st, 3);
                c.disabled = reg->ops->column_int64(st, 4) != 0;
        }
        reg_finalize(reg, st);
        if (r >= 0)
                *ret = c;
        return r;
}

int registry_claim_disable(struct registry *reg, const char *claim_id)
{
        int64_t n = 0;
        int r;

        r = reg_exec(reg, &n, "UPDATE claims SET disabled = 1 WHERE claim_id = ?", REG_T(claim_id));
        return r < 0 ? r : n == 0 ? -ENOENT : 0;
}

/* The claim's state as an errno for a failed use: -EKEYREVOKED, -EKEYEXPIRED,
 * 0 if usable; -ENOENT if unknown. */
static int claim_state(struct registry *reg, const char *claim_id, int64_t now,
                       struct registry_claim *ret)
{
        struct registry_claim c;
        int r;

        r = registry_claim_get(reg, claim_id, &c);
        if (r < 0)
                return r;
        if (ret)
                *ret = c;
        if (c.disabled)
                return -EKEYREVOKED;
        if (c.expires_at <= now)
                return -EKEYEXPIRED;
        return 0;
}

/* -- allowlist ---------------------------------------------------------------- */

int registry_entitlement_add(struct registry *reg, const char *claim_id, const char *identity,
                             bool reusable, int64_t now)
{
        struct registry_claim c;
        int64_t n = 0;
        bool own;
        int r;

        if (ca_name_check(CA_KIND_DEVICE, identity) < 0)
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = registry_claim_get(reg, claim_id, &c);
        if (r >= 0 && !in_tenant(c.tenant, identity))
                r = -EINVAL;
        if (r >= 0)
                r = reg_exec(reg, &n,
                             "INSERT INTO entitlements (claim_id, identity, reusable, uses,"
                             " created_at) VALUES (?, ?, ?, 0, ?)" ON_DUPLICATE,
                             REG_T(claim_id), REG_T(identity), REG_I((int64_t)reusable),
                             REG_I(now));
        if (r >= 0 && n == 0)
                r = -EEXIST;
        return reg_tx_end(reg, own, r);
}

int registry_entitlement_use(struct registry *reg, const char *claim_id, const char *identity,
                             const char *key_sha256, int64_t now, bool *ret_replay)
{
        struct floe_sql_stmt *st = NULL;
        bool own, replay = false;
        int64_t n = 0;
        int r;

        if (!key_sha256 || !*key_sha256 || ca_name_check(CA_KIND_DEVICE, identity) < 0)
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        /* The decisive step: one UPDATE whose WHERE holds every condition. */
        r = reg_exec(reg, &n,
                     "UPDATE entitlements SET uses = uses + 1, used_at = ?, used_key = ?"
                     " WHERE claim_id = ? AND identity = ?"
                     " AND (uses = 0 OR (reusable = 1 AND used_key <> ?))"
                     " AND EXISTS (SELECT 1 FROM claims WHERE claims.claim_id ="
                     " entitlements.claim_id AND disabled = 0 AND expires_at > ?)",
                     REG_I(now), REG_T(key_sha256), REG_T(claim_id), REG_T(identity),
                     REG_T(key_sha256), REG_I(now));
        if (r >= 0 && n == 0) {
                /* Why not: the claim, no entry, a retry, or used by another key. */
                r = claim_state(reg, claim_id, now, NULL);
                if (r == -ENOENT)
                        r = -EPERM;
                if (r >= 0)
                        r = reg_query(reg, &st,
                                      "SELECT used_key FROM entitlements"
                                      " WHERE claim_id = ? AND identity = ?",
                                      REG_T(claim_id), REG_T(identity));
                if (r >= 0)
                        r = reg->ops->step(st);
                if (r == 0)
                        r = -EPERM;
                if (r > 0) {
                        const char *used = reg->ops->column_text(st, 0);

                        replay = used && strcmp(used, key_sha256) == 0;
                        r = replay ? 0 : -EALREADY;
                }
                reg_finalize(reg, st);
        }
        r = reg_tx_end(reg, own, r);
        if (r >= 0)
                *ret_replay = replay;
        return r;
}

/* -- tokens --------------------------------------------------------------------- */

static bool token_valid(const char *token)
{
        size_t plen = strlen(REGISTRY_TOKEN_PREFIX);

        if (!token || strlen(token) != REGISTRY_TOKEN_LEN ||
            strncmp(token, REGISTRY_TOKEN_PREFIX, plen) != 0)
                return false;
        for (const char *p = token + plen; *p; p++)
                if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
                        return false;
        return true;
}

int registry_token_generate(char *buf, size_t size)
{
        unsigned char raw[16];
        size_t plen = strlen(REGISTRY_TOKEN_PREFIX);

        if (size <= REGISTRY_TOKEN_LEN)
                return -ENOBUFS;
        if (RAND_bytes(raw, sizeof(raw)) != 1)
                return -EIO;
        memcpy(buf, REGISTRY_TOKEN_PREFIX, plen);
        for (size_t i = 0; i < sizeof(raw); i++)
                snprintf(buf + plen + 2 * i, 3, "%02x", raw[i]);
        OPENSSL_cleanse(raw, sizeof(raw));
        return 0;
}

int registry_token_hash(const char *token, char ret[65])
{
        unsigned char md[32];
        unsigned int len = 0;

        if (!token_valid(token))
                return -EINVAL;
        if (EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL) != 1 || len != 32)
                return -EIO;
        for (size_t i = 0; i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int registry_token_add(struct registry *reg, const char *claim_id, const char *token,
                       const char *identity, int64_t expires_at, int64_t now)
{
        struct registry_claim c;
        char hash[65];
        int64_t n = 0;
        bool own;
        int r;

        r = registry_token_hash(token, hash);
        if (r < 0)
                return r;
        if (expires_at <= now || (identity && ca_name_check(CA_KIND_DEVICE, identity) < 0))
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = registry_claim_get(reg, claim_id, &c);
        /* An unbound token needs a tenant to stay within; a bound one must lie in it. */
        if (r >= 0 && (identity ? !in_tenant(c.tenant, identity) : !*c.tenant))
                r = -EINVAL;
        if (r >= 0)
                r = reg_exec(reg, &n,
                             "INSERT INTO tokens (token_hash, claim_id, identity, created_at,"
                             " expires_at) VALUES (?, ?, ?, ?, ?)" ON_DUPLICATE,
                             REG_T(hash), REG_T(claim_id), REG_T(identity), REG_I(now),
                             REG_I(expires_at));
        if (r >= 0 && n == 0)
                r = -EEXIST;
        return reg_tx_end(reg, own, r);
}

/* After a failed burn: the reason, or 0 with *replay for an idempotent retry. */
static int token_refusal(struct registry *reg, const char *hash, const char *claim_id,
                         const char *identity, const char *key_sha256, int64_t now, bool *replay)
{
        struct registry_claim c;
        struct floe_sql_stmt *st;
        int r;

        r = reg_query(reg, &st,
                      "SELECT claim_id, identity, expires_at, used_at, used_identity, used_key"
                      " FROM tokens WHERE token_hash = ?",
                      REG_T(hash));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        if (r > 0) {
                const char *owner = reg->ops->column_text(st, 0);
                const char *bound = reg->ops->column_text(st, 1);
                const char *used_id = reg->ops->column_text(st, 4);
                const char *used_key = reg->ops->column_text(st, 5);

                if (!owner || strcmp(owner, claim_id) != 0)
                        r = -ENOENT; /* another claim's token: do not say it exists */
                else if ((r = claim_state(reg, claim_id, now, &c)) < 0)
                        ;
                else if (!reg->ops->column_is_null(st, 3))
                        r = used_id && used_key && strcmp(used_id, identity) == 0 &&
                                            strcmp(used_key, key_sha256) == 0
                                    ? 1
                                    : -EALREADY;
                else if (reg->ops->column_int64(st, 2) <= now)
                        r = -EKEYEXPIRED;
                else if (bound ? strcmp(bound, identity) != 0 : !in_tenant(c.tenant, identity))
                        r = -EPERM;
                else
                        r = -EIO; /* the UPDATE should have matched */
        }
        reg_finalize(reg, st);
        if (r == 1) {
                *replay = true;
                r = 0;
        }
        return r;
}

int registry_token_burn(struct registry *reg, const char *claim_id, const char *token,
                        const char *identity, const char *key_sha256, int64_t now, bool *ret_replay)
{
        struct registry_claim c;
        bool own, replay = false;
        char hash[65];
        int64_t n = 0;
        int r;

        r = registry_token_hash(token, hash);
        if (r < 0)
                return r;
        if (!key_sha256 || !*key_sha256 || !claim_id || ca_name_check(CA_KIND_DEVICE, identity) < 0)
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = registry_claim_get(reg, claim_id, &c);
        /* The tenant never changes, so checking it here keeps the UPDATE portable. */
        if (r >= 0 && in_tenant(c.tenant, identity))
                r = reg_exec(reg, &n,
                             "UPDATE tokens SET used_at = ?, used_identity = ?, used_key = ?"
                             " WHERE token_hash = ? AND claim_id = ? AND used_at IS NULL"
                             " AND expires_at > ? AND (identity IS NULL OR identity = ?)"
                             " AND EXISTS (SELECT 1 FROM claims WHERE claims.claim_id ="
                             " tokens.claim_id AND disabled = 0 AND expires_at > ?)",
                             REG_I(now), REG_T(identity), REG_T(key_sha256), REG_T(hash),
                             REG_T(claim_id), REG_I(now), REG_T(identity), REG_I(now));
        if (r >= 0 && n == 0)
                r = token_refusal(reg, hash, claim_id, identity, key_sha256, now, &replay);
        r = reg_tx_end(reg, own, r);
        if (r >= 0)
                *ret_replay = replay;
        return r;
}

int registry_token_count(struct registry *reg, const char *claim_id, uint64_t *ret_total,
                         uint64_t *ret_unused)
{
        struct floe_sql_stmt *st;
        int r;

        r = reg_query(reg, &st,
                      "SELECT COUNT(*), COUNT(*) - COUNT(used_at) FROM tokens WHERE claim_id = ?",
                      REG_T(claim_id));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r > 0) {
                *ret_total = (uint64_t)reg->ops->column_int64(st, 0);
                *ret_unused = (uint64_t)reg->ops->column_int64(st, 1);
                r = 0;
        } else if (r == 0) {
                r = -EIO;
        }
        reg_finalize(reg, st);
        return r;
}

/* -- rate limits ------------------------------------------------------------------ */

int registry_rate_hit(struct registry *reg, const char *claim_id, int64_t now, uint64_t window_s,
                      uint64_t limit, uint64_t *ret_count)
{
        struct floe_sql_stmt *st = NULL;
        int64_t start, count = 0;
        bool own;
        int r;

        if (!claim_id || !*claim_id || window_s == 0 || window_s > INT32_MAX || now < 0)
                return -EINVAL;
        start = now - now % (int64_t)window_s;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        /* One statement counts and reads (RETURNING: SQLite 3.35, PostgreSQL). */
        r = reg_query(reg, &st,
                      "INSERT INTO enroll_rate (claim_id, window_start, attempts)"
                      " VALUES (?, ?, 1) ON CONFLICT (claim_id, window_start)"
                      " DO UPDATE SET attempts = enroll_rate.attempts + 1 RETURNING attempts",
                      REG_T(claim_id), REG_I(start));
        if (r >= 0)
                r = reg->ops->step(st);
        if (r == 0)
                r = -EIO;
        if (r > 0) {
                count = reg->ops->column_int64(st, 0);
                r = 0;
        }
        reg_finalize(reg, st);
        /* A new window: prune this claim's older ones. Only this claim's rows:
         * pruning other claims' would take their locks too, and two daemons
         * would wait on each other's batches. */
        if (r >= 0 && count == 1)
                r = reg_exec(reg, NULL,
                             "DELETE FROM enroll_rate WHERE claim_id = ? AND window_start < ?",
                             REG_T(claim_id), REG_I(start));
        /* Commit even when over the limit: the attempt counts. */
        r = reg_tx_end(reg, own, r);
        if (r < 0)
                return r;
        if (ret_count)
                *ret_count = (uint64_t)count;
        return (uint64_t)count > limit ? -EDQUOT : 0;
}
