/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate registry: schema, transactions, certificates and CRL numbers. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "floe-alloc.h"
#include "registry-internal.h"

static const char schema_v1[] =
        "CREATE TABLE certificates ("
        " serial TEXT PRIMARY KEY,"
        " identity TEXT NOT NULL,"
        " kind TEXT NOT NULL,"
        " issuer TEXT NOT NULL,"
        " not_before BIGINT NOT NULL,"
        " not_after BIGINT NOT NULL,"
        " status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),"
        " revoked_at BIGINT,"
        " reason INTEGER,"
        " key_sha256 TEXT NOT NULL,"
        " issued_at BIGINT NOT NULL,"
        " pem TEXT NOT NULL);"
        "CREATE INDEX certificates_by_identity ON certificates (identity, not_before);"
        "CREATE INDEX certificates_by_issuer ON certificates (issuer, status);"
        "CREATE TABLE crls ("
        " ca TEXT PRIMARY KEY,"
        " crl_number BIGINT NOT NULL,"
        " this_update BIGINT NOT NULL,"
        " next_update BIGINT NOT NULL);"
        "CREATE TABLE claims ("
        " claim_id TEXT PRIMARY KEY,"
        " tenant TEXT NOT NULL,"
        " created_at BIGINT NOT NULL,"
        " expires_at BIGINT NOT NULL,"
        " disabled INTEGER NOT NULL DEFAULT 0);"
        "CREATE TABLE entitlements ("
        " claim_id TEXT NOT NULL REFERENCES claims (claim_id),"
        " identity TEXT NOT NULL,"
        " reusable INTEGER NOT NULL,"
        " uses BIGINT NOT NULL DEFAULT 0,"
        " used_at BIGINT,"
        " used_key TEXT,"
        " created_at BIGINT NOT NULL,"
        " PRIMARY KEY (claim_id, identity));"
        "CREATE TABLE tokens ("
        " token_hash TEXT PRIMARY KEY,"
        " claim_id TEXT NOT NULL REFERENCES claims (claim_id),"
        " identity TEXT,"
        " created_at BIGINT NOT NULL,"
        " expires_at BIGINT NOT NULL,"
        " used_at BIGINT,"
        " used_identity TEXT,"
        " used_key TEXT);"
        "CREATE INDEX tokens_by_claim ON tokens (claim_id);"
        "CREATE TABLE enroll_rate ("
        " claim_id TEXT NOT NULL,"
        " window_start BIGINT NOT NULL,"
        " attempts BIGINT NOT NULL,"
        " PRIMARY KEY (claim_id, window_start));";

/* -- statements and transactions ------------------------------------------ */

static int bind_args(struct registry *reg, struct floe_sql_stmt *st, const char *sql,
                     const struct reg_arg *args, size_t n)
{
        size_t marks = 0;
        int r;

        r = floe_sql_placeholders(sql, NULL, 0, &marks);
        if (r < 0)
                return r;
        if (marks != n)
                return -EINVAL;
        for (size_t i = 0; i < n && r >= 0; i++) {
                if (args[i].type == 't')
                        r = reg->ops->bind_text(st, (int)i + 1, args[i].t);
                else if (args[i].type == 'i')
                        r = reg->ops->bind_int64(st, (int)i + 1, args[i].i);
                else
                        r = -EINVAL;
        }
        return r;
}

int reg_query_args(struct registry *reg, struct floe_sql_stmt **ret, const char *sql,
                   const struct reg_arg *args, size_t n)
{
        struct floe_sql_stmt *st;
        int r;

        r = reg->ops->prepare(reg->db, sql, &st);
        if (r < 0)
                return r;
        r = bind_args(reg, st, sql, args, n);
        if (r < 0) {
                reg->ops->finalize(st);
                return r;
        }
        *ret = st;
        return 0;
}

int reg_exec_args(struct registry *reg, int64_t *ret_changes, const char *sql,
                  const struct reg_arg *args, size_t n)
{
        struct floe_sql_stmt *st;
        int r;

        r = reg_query_args(reg, &st, sql, args, n);
        if (r < 0)
                return r;
        while ((r = reg->ops->step(st)) > 0)
                ;
        reg->ops->finalize(st);
        if (r < 0)
                return r;
        if (ret_changes)
                *ret_changes = reg->ops->changes(reg->db);
        return 0;
}

void reg_finalize(struct registry *reg, struct floe_sql_stmt *st)
{
        if (st)
                reg->ops->finalize(st);
}

int reg_tx_begin(struct registry *reg, bool *own)
{
        int r;

        if (reg->depth > 0) {
                *own = false;
                return 0;
        }
        r = reg->ops->begin(reg->db);
        if (r < 0)
                return r;
        reg->depth = 1;
        *own = true;
        return 0;
}

int reg_tx_end(struct registry *reg, bool own, int r)
{
        if (!own)
                return r;
        if (r >= 0) {
                int c = reg->ops->commit(reg->db);

                if (c < 0) {
                        reg->ops->rollback(reg->db);
                        r = c;
                }
        } else {
                reg->ops->rollback(reg->db);
        }
        reg->depth = 0;
        return r;
}

int reg_column_copy(struct registry *reg, struct floe_sql_stmt *st, int col, char *buf, size_t size)
{
        const char *s = reg->ops->column_text(st, col);
        size_t len;

        if (!s)
                return -EBADMSG;
        len = strlen(s);
        if (len >= size)
                return -EBADMSG;
        memcpy(buf, s, len + 1);
        return 0;
}

int registry_begin(struct registry *reg)
{
        bool own;
        int r;

        if (reg->depth > 0)
                return -EALREADY;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        reg->user_tx = true;
        return 0;
}

int registry_commit(struct registry *reg)
{
        if (!reg->user_tx)
                return -ENOTCONN;
        reg->user_tx = false;
        reg->savepoint = false;
        return reg_tx_end(reg, true, 0);
}

void registry_rollback(struct registry *reg)
{
        if (!reg || !reg->user_tx)
                return;
        reg->user_tx = false;
        reg->savepoint = false;
        reg_tx_end(reg, true, -ECANCELED);
}

int registry_savepoint(struct registry *reg)
{
        int r;

        if (!reg->user_tx)
                return -ENOTCONN;
        if (reg->savepoint)
                return -EALREADY;
        r = reg->ops->exec(reg->db, "SAVEPOINT registry_sp");
        if (r >= 0)
                reg->savepoint = true;
        return r;
}

int registry_savepoint_release(struct registry *reg)
{
        if (!reg->savepoint)
                return -ENOTCONN;
        reg->savepoint = false;
        return reg->ops->exec(reg->db, "RELEASE SAVEPOINT registry_sp");
}

int registry_savepoint_rollback(struct registry *reg)
{
        int r;

        if (!reg->savepoint)
                return -ENOTCONN;
        reg->savepoint = false;
        /* ROLLBACK TO keeps the savepoint open: release it too */
        r = reg->ops->exec(reg->db, "ROLLBACK TO SAVEPOINT registry_sp");
        if (r >= 0)
                r = reg->ops->exec(reg->db, "RELEASE SAVEPOINT registry_sp");
        return r;
}

/* -- open, schema ----------------------------------------------------------- */

/* 1 and the version if registry_meta has one, 0 if not; an error if the table is missing. */
static int schema_version(struct registry *reg, long *ret)
{
        struct floe_sql_stmt *st = NULL;
        long version = 0;
        int r;

        r = reg_query(reg, &st, "SELECT value FROM registry_meta WHERE name = ?",
                      REG_T("schema_version"));
        if (r >= 0)
                r = reg->ops->step(st);
        if (r > 0) {
                const char *v = reg->ops->column_text(st, 0);
                char *end;

                errno = 0;
                version = v ? strtol(v, &end, 10) : 0;
                r = v && errno == 0 && *end == '\0' && version > 0 ? 1 : -EBADMSG;
        }
        reg_finalize(reg, st);
        if (r > 0)
                *ret = version;
        return r;
}

static int schema_create(struct registry *reg)
{
        long version = 0;
        bool own;
        int r;

        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = reg->ops->lock(reg->db, "floe registry schema");
        if (r >= 0)
                r = reg->ops->exec(reg->db, "CREATE TABLE IF NOT EXISTS registry_meta ("
                                            " name TEXT PRIMARY KEY, value TEXT NOT NULL)");
        if (r >= 0)
                r = schema_version(reg, &version);
        if (r == 0) {
                r = reg->ops->exec(reg->db, schema_v1);
                if (r >= 0)
                        r = reg_exec(reg, NULL,
                                     "INSERT INTO registry_meta (name, value) VALUES (?, ?)",
                                     REG_T("schema_version"), REG_T("1"));
        } else if (r > 0 && version > REGISTRY_SCHEMA_VERSION) {
                r = -EPROTO;
        }
        return reg_tx_end(reg, own, r < 0 ? r : 0);
}

static int schema_init(struct registry *reg)
{
        long version = 0;
        int r;

        /* Reading first, outside a transaction: a role that may only read and
         * write the tables (no CREATE) opens an existing registry. One written
         * by a newer floe is refused rather than guessed at. */
        if (schema_version(reg, &version) > 0)
                return version > REGISTRY_SCHEMA_VERSION ? -EPROTO : 0;
        /* Two processes creating the schema at once wait on one lock; a lock
         * timeout (-EBUSY) or a duplicate from an older floe's creation is retried. */
        for (int attempt = 0;; attempt++) {
                r = schema_create(reg);
                if ((r != -EEXIST && r != -EBUSY) || attempt == 2)
                        return r;
        }
}

static const struct floe_sql_ops *backend_of(const char **location)
{
        const char *l = *location;

        if (strncmp(l, "postgresql:", 11) == 0 || strncmp(l, "postgres:", 9) == 0)
                return &floe_sql_pg_ops; /* the whole location goes to the backend */
        if (strncmp(l, "sqlite:", 7) == 0)
                *location = l + 7;
        return &floe_sql_sqlite_ops;
}

int registry_open_explain(const char *location, char *why, size_t why_size, struct registry **ret)
{
        const struct floe_sql_ops *ops;
        struct registry *reg;
        int r;

        if (why && why_size > 0)
                why[0] = '\0';
        if (!location || !*location)
                return -EINVAL;
        ops = backend_of(&location);
        if (!*location)
                return -EINVAL;
        reg = floe_calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        reg->ops = ops;
        r = ops->open(location, why, why_size, &reg->db);
        if (r >= 0) {
                r = schema_init(reg);
                if (r < 0 && why && why_size > 0)
                        snprintf(why, why_size, "%s",
                                 r == -EPROTO ? "written by a newer floe (schema version)"
                                              : ops->error(reg->db));
        }
        if (r < 0) {
                registry_close(reg);
                return r;
        }
        *ret = reg;
        return 0;
}

int registry_open(const char *location, struct registry **ret)
{
        return registry_open_explain(location, NULL, 0, ret);
}

struct registry *registry_close(struct registry *reg)
{
        if (!reg)
                return NULL;
        if (reg->db) {
                if (reg->depth > 0)
                        reg->ops->rollback(reg->db);
                reg->ops->close(reg->db);
        }
        floe_free(reg);
        return NULL;
}

const char *registry_last_error(const struct registry *reg)
{
        return reg && reg->db ? reg->ops->error(reg->db) : "";
}

/* -- certificates ------------------------------------------------------------ */

static const char *const status_names[] = {
        [REGISTRY_VALID] = "valid",
        [REGISTRY_REVOKED] = "revoked",
        [REGISTRY_EXPIRED] = "expired",
};

const char *registry_status_name(enum registry_status st)
{
        if ((unsigned)st < ELEMENTSOF(status_names))
                return status_names[st];
        return NULL;
}

enum registry_status registry_cert_status(const struct registry_cert *c, int64_t now)
{
        if (c->status == REGISTRY_REVOKED)
                return REGISTRY_REVOKED;
        return c->not_after <= now ? REGISTRY_EXPIRED : REGISTRY_VALID;
}

void registry_cert_clear(struct registry_cert *c)
{
        if (!c)
                return;
        floe_free(c->pem);
        c->pem = NULL;
}

int registry_cert_from_x509(X509 *x, enum ca_kind kind, enum ca_role issuer, int64_t now,
                            struct registry_cert *ret)
{
        struct registry_cert c = {.kind = kind, .issuer = issuer, .issued_at = now};
        EVP_PKEY *pub;
        size_t len;
        int r;

        if ((unsigned)kind >= _CA_KIND_MAX || (unsigned)issuer >= _CA_ROLE_MAX)
                return -EINVAL;
        r = ca_serial_hex(X509_get0_serialNumber(x), c.serial);
        if (r >= 0)
                r = ca_cert_cn(x, c.identity, sizeof(c.identity));
        if (r >= 0)
                r = ca_cert_times(x, &c.not_before, &c.not_after);
        if (r < 0)
                return r;
        pub = X509_get0_pubkey(x);
        if (!pub)
                return -EBADMSG;
        r = ca_key_fingerprint(pub, c.key_sha256);
        if (r >= 0)
                r = ca_pem_certs(&x, 1, &c.pem, &len);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

int registry_cert_json(const struct registry_cert *c, int64_t now, json_t **ret)
{
        char nb[32], na[32], ra[32];
        json_t *o;

        o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "identity", c->identity, "kind",
                      ca_kind_name(c->kind), "issuer", ca_role_name(c->issuer), "serial", c->serial,
                      "status", registry_status_name(registry_cert_status(c, now)), "not_before",
                      ca_format_time(c->not_before, nb, sizeof(nb)), "not_after",
                      ca_format_time(c->not_after, na, sizeof(na)));
        if (!o)
                return -ENOMEM;
        if (c->status == REGISTRY_REVOKED &&
            (json_object_set_new(o, "revoked_at",
                                 json_string(ca_format_time(c->revoked_at, ra, sizeof(ra)))) < 0 ||
             json_object_set_new(o, "reason", json_string(ca_reason_name(c->reason))) < 0)) {
                json_decref(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

#define CERT_COLUMNS                                                                          \
        "serial, identity, kind, issuer, not_before, not_after, status, revoked_at, reason, " \
        "key_sha256, issued_at"

static int cert_row(struct registry *reg, struct floe_sql_stmt *st, bool with_pem,
                    struct registry_cert *ret)
{
        struct registry_cert c = {0};
        const char *s;
        int k, r;

        r = reg_column_copy(reg, st, 0, c.serial, sizeof(c.serial));
        if (r >= 0)
                r = reg_column_copy(reg, st, 1, c.identity, sizeof(c.identity));
        if (r >= 0)
                r = reg_column_copy(reg, st, 9, c.key_sha256, sizeof(c.key_sha256));
        if (r < 0)
                return r;
        s = reg->ops->column_text(st, 2);
        k = s ? ca_kind_from_name(s) : -EINVAL;
        if (k < 0)
                return -EBADMSG;
        c.kind = (enum ca_kind)k;
        s = reg->ops->column_text(st, 3);
        k = s ? ca_role_from_name(s) : -EINVAL;
        if (k < 0)
                return -EBADMSG;
        c.issuer = (enum ca_role)k;
        c.not_before = reg->ops->column_int64(st, 4);
        c.not_after = reg->ops->column_int64(st, 5);
        s = reg->ops->column_text(st, 6);
        c.status = s && strcmp(s, "revoked") == 0 ? REGISTRY_REVOKED : REGISTRY_VALID;
        c.revoked_at = reg->ops->column_int64(st, 7);
        c.reason = (enum ca_reason)reg->ops->column_int64(st, 8);
        c.issued_at = reg->ops->column_int64(st, 10);
        if (with_pem) {
                s = reg->ops->column_text(st, 11);
                c.pem = floe_strdup(s ? s : "");
                if (!c.pem)
                        return -ENOMEM;
        }
        *ret = c;
        return 0;
}

int registry_cert_add(struct registry *reg, const struct registry_cert *c)
{
        const char *kind = ca_kind_name(c->kind), *issuer = ca_role_name(c->issuer);
        int64_t n = 0;
        int r;

        if (!kind || !issuer || !c->pem || !*c->serial || !*c->identity ||
            c->status != REGISTRY_VALID)
                return -EINVAL;
        r = reg_exec(reg, &n,
                     "INSERT INTO certificates (" CERT_COLUMNS ", pem)"
                     " VALUES (?, ?, ?, ?, ?, ?, 'valid', NULL, NULL, ?, ?, ?)" ON_DUPLICATE,
                     REG_T(c->serial), REG_T(c->identity), REG_T(kind), REG_T(issuer),
                     REG_I(c->not_before), REG_I(c->not_after), REG_T(c->key_sha256),
                     REG_I(c->issued_at), REG_T(c->pem));
        return r < 0 ? r : n == 0 ? -EEXIST : 0;
}

int registry_cert_get(struct registry *reg, const char *serial, struct registry_cert *ret)
{
        struct floe_sql_stmt *st;
        int r;

        r = reg_query(reg, &st, "SELECT " CERT_COLUMNS ", pem FROM certificates WHERE serial = ?",
                      REG_T(serial));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        else if (r > 0)
                r = cert_row(reg, st, true, ret);
        reg_finalize(reg, st);
        return r;
}

int registry_cert_foreach(struct registry *reg, const struct registry_filter *f,
                          registry_cert_fn fn, void *userdata)
{
        const char *kind = f->kind >= 0 ? ca_kind_name((enum ca_kind)f->kind) : NULL;
        const char *issuer = f->issuer >= 0 ? ca_role_name((enum ca_role)f->issuer) : NULL;
        struct reg_arg args[3];
        struct floe_sql_stmt *st;
        char sql[512];
        size_t n = 0;
        int len, r;

        if ((f->kind >= 0 && !kind) || (f->issuer >= 0 && !issuer))
                return -EINVAL;
        /* Clauses only for the filters given: no "? IS NULL", whose parameter
         * type PostgreSQL could not infer. */
        if (f->identity)
                args[n++] = REG_T(f->identity);
        if (kind)
                args[n++] = REG_T(kind);
        if (issuer)
                args[n++] = REG_T(issuer);
        len = snprintf(sql, sizeof(sql),
                       "SELECT " CERT_COLUMNS ", pem FROM certificates WHERE 1 = 1%s%s%s%s"
                       " ORDER BY identity, not_before, serial",
                       f->identity ? " AND identity = ?" : "", kind ? " AND kind = ?" : "",
                       issuer ? " AND issuer = ?" : "",
                       f->revoked_only ? " AND status = 'revoked'" : "");
        if (len < 0 || (size_t)len >= sizeof(sql))
                return -ENOBUFS;
        r = reg_query_args(reg, &st, sql, args, n);
        if (r < 0)
                return r;
        while ((r = reg->ops->step(st)) > 0) {
                struct registry_cert c;

                r = cert_row(reg, st, f->with_pem, &c);
                if (r < 0)
                        break;
                r = fn(&c, userdata);
                registry_cert_clear(&c);
                if (r != 0)
                        break;
        }
        reg_finalize(reg, st);
        return r;
}

int registry_cert_find_by_key(struct registry *reg, const char *identity, const char *key_sha256,
                              int64_t now, struct registry_cert *ret)
{
        struct floe_sql_stmt *st;
        int r;

        r = reg_query(reg, &st,
                      "SELECT " CERT_COLUMNS ", pem FROM certificates"
                      " WHERE identity = ? AND key_sha256 = ? AND status = 'valid'"
                      " AND not_after > ? ORDER BY not_before DESC, serial LIMIT 1",
                      REG_T(identity), REG_T(key_sha256), REG_I(now));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        else if (r > 0)
                r = cert_row(reg, st, true, ret);
        reg_finalize(reg, st);
        return r;
}

static int disable_claim_of(struct registry *reg, const char *identity)
{
        if (strncmp(identity, CA_CLAIM_PREFIX, strlen(CA_CLAIM_PREFIX)) != 0)
                return 0;
        return reg_exec(reg, NULL, "UPDATE claims SET disabled = 1 WHERE claim_id = ?",
                        REG_T(identity));
}

int registry_revoke_serial(struct registry *reg, const char *serial, enum ca_reason reason,
                           int64_t now)
{
        struct floe_sql_stmt *st = NULL;
        char identity[CA_NAME_MAX + 1] = "";
        bool own, claim = false;
        int64_t n = 0;
        int r;

        if (!ca_reason_name(reason))
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = reg_query(reg, &st, "SELECT identity, kind FROM certificates WHERE serial = ?",
                      REG_T(serial));
        if (r >= 0)
                r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        if (r > 0) {
                const char *kind = reg->ops->column_text(st, 1);

                claim = kind && strcmp(kind, "claim") == 0;
                r = reg_column_copy(reg, st, 0, identity, sizeof(identity));
        }
        reg_finalize(reg, st);
        if (r >= 0)
                r = reg_exec(reg, &n,
                             "UPDATE certificates SET status = 'revoked', revoked_at = ?,"
                             " reason = ? WHERE serial = ? AND status = 'valid'",
                             REG_I(now), REG_I((int64_t)reason), REG_T(serial));
        if (r >= 0 && n == 0)
                r = -EALREADY;
        if (r >= 0 && claim)
                r = disable_claim_of(reg, identity);
        return reg_tx_end(reg, own, r);
}

int registry_revoke_identity(struct registry *reg, const char *identity, enum ca_reason reason,
                             int64_t now, size_t *ret_n)
{
        int64_t n = 0;
        bool own;
        int r;

        if (!ca_reason_name(reason) || !identity || !*identity)
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = reg_exec(reg, &n,
                     "UPDATE certificates SET status = 'revoked', revoked_at = ?, reason = ?"
                     " WHERE identity = ? AND status = 'valid' AND not_after > ?"
                     " AND kind <> 'ca'",
                     REG_I(now), REG_I((int64_t)reason), REG_T(identity), REG_I(now));
        if (r >= 0 && n == 0)
                r = -ENOENT;
        if (r >= 0)
                r = disable_claim_of(reg, identity);
        r = reg_tx_end(reg, own, r);
        if (r >= 0 && ret_n)
                *ret_n = (size_t)n;
        return r;
}

/* -- CRL numbers ------------------------------------------------------------- */

int registry_crl_next(struct registry *reg, enum ca_role ca, int64_t this_update,
                      int64_t next_update, uint64_t *ret_number)
{
        const char *name = ca_role_name(ca);
        struct floe_sql_stmt *st = NULL;
        int64_t number = 0;
        bool own;
        int r;

        if (!name || next_update <= this_update)
                return -EINVAL;
        r = reg_tx_begin(reg, &own);
        if (r < 0)
                return r;
        r = reg_exec(reg, NULL,
                     "INSERT INTO crls (ca, crl_number, this_update, next_update)"
                     " VALUES (?, 1, ?, ?) ON CONFLICT (ca) DO UPDATE SET"
                     " crl_number = crls.crl_number + 1, this_update = excluded.this_update,"
                     " next_update = excluded.next_update",
                     REG_T(name), REG_I(this_update), REG_I(next_update));
        if (r >= 0)
                r = reg_query(reg, &st, "SELECT crl_number FROM crls WHERE ca = ?", REG_T(name));
        if (r >= 0)
                r = reg->ops->step(st);
        if (r == 0)
                r = -EIO;
        if (r > 0) {
                number = reg->ops->column_int64(st, 0);
                r = number > 0 ? 0 : -EBADMSG;
        }
        reg_finalize(reg, st);
        r = reg_tx_end(reg, own, r);
        if (r >= 0)
                *ret_number = (uint64_t)number;
        return r;
}

int registry_crl_last(struct registry *reg, enum ca_role ca, uint64_t *ret_number,
                      int64_t *ret_this_update, int64_t *ret_next_update)
{
        const char *name = ca_role_name(ca);
        struct floe_sql_stmt *st;
        int r;

        if (!name)
                return -EINVAL;
        r = reg_query(reg, &st,
                      "SELECT crl_number, this_update, next_update FROM crls WHERE ca = ?",
                      REG_T(name));
        if (r < 0)
                return r;
        r = reg->ops->step(st);
        if (r == 0)
                r = -ENOENT;
        if (r > 0) {
                *ret_number = (uint64_t)reg->ops->column_int64(st, 0);
                *ret_this_update = reg->ops->column_int64(st, 1);
                *ret_next_update = reg->ops->column_int64(st, 2);
                r = 0;
        }
        reg_finalize(reg, st);
        return r;
}
