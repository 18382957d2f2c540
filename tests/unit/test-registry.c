/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The certificate registry (certs/registry.h) on a real SQLite file, or on a
 * real PostgreSQL server when FLOE_TEST_REGISTRY is a postgresql:// URI (each
 * test then runs in a schema of its own, dropped afterwards).
 *
 * test-registry --serve LOCATION: a long-lived registry client for
 * tests/system/test_registry_pg.py, one command per stdin line (see serve()).
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "floe-alloc.h"
#include "floe-sql.h"
#include "registry.h"

#define NOW  1800000000LL
#define DAY  86400LL
#define KEY1 "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY2 "2222222222222222222222222222222222222222222222222222222222222222"

/* FLOE_TEST_REGISTRY when it names a PostgreSQL server, else NULL (SQLite). */
static const char *pg_base;

struct fx {
        char dir[64];
        char path[1024]; /* the registry location */
        char schema[64]; /* PostgreSQL: this test's schema */
        PGconn *admin;   /* PostgreSQL: for setup and raw SQL */
        struct registry *reg;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

/* Runs SQL beside the registry (not through it): -1 on failure. */
static int raw_exec(struct fx *f, const char *sql)
{
        PGresult *res;
        sqlite3 *db;
        int ok;

        if (!pg_base) {
                assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
                ok = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK;
                sqlite3_close(db);
                return ok ? 0 : -1;
        }
        res = PQexec(f->admin, sql);
        ok = PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK;
        if (!ok)
                print_error("%s: %s", sql, PQresultErrorMessage(res));
        PQclear(res);
        return ok ? 0 : -1;
}

/* A location of its own for a registry that does not exist yet (suffix names it). */
static void fresh_location(struct fx *f, const char *suffix, char *buf, size_t size)
{
        char sql[160];

        if (!pg_base) {
                snprintf(buf, size, "%s/%s.db", f->dir, suffix);
                return;
        }
        snprintf(sql, sizeof(sql), "CREATE SCHEMA %s_%s", f->schema, suffix);
        assert_int_equal(raw_exec(f, sql), 0);
        snprintf(buf, size, "%s%coptions=-csearch_path%%3D%s_%s", pg_base,
                 strchr(pg_base, '?') ? '&' : '?', f->schema, suffix);
}

static int setup(void **state)
{
        static unsigned n;
        struct fx *f = calloc(1, sizeof(*f));
        char sql[160];

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/floe-test-registry-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/registry.db", f->dir);
        if (pg_base) {
                f->admin = PQconnectdb(pg_base);
                if (PQstatus(f->admin) != CONNECTION_OK)
                        fail_msg("FLOE_TEST_REGISTRY: %s", PQerrorMessage(f->admin));
                snprintf(f->schema, sizeof(f->schema), "floe_test_%ld_%u", (long)getpid(), n++);
                snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", f->schema);
                assert_int_equal(raw_exec(f, "SET client_min_messages = warning"), 0);
                assert_int_equal(raw_exec(f, sql), 0);
                snprintf(sql, sizeof(sql), "SET search_path = %s", f->schema);
                assert_int_equal(raw_exec(f, sql), 0);
                snprintf(f->path, sizeof(f->path), "%s%coptions=-csearch_path%%3D%s", pg_base,
                         strchr(pg_base, '?') ? '&' : '?', f->schema);
        }
        assert_int_equal(registry_open(f->path, &f->reg), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        static const char *const suffixes[] = {"",        "_fresh0", "_fresh1", "_fresh2",
                                               "_fresh3", "_fresh4", "_fresh5", "_torture"};
        struct fx *f = *state;
        char sql[160];

        registry_close(f->reg);
        for (size_t i = 0; f->admin && i < ELEMENTSOF(suffixes); i++) {
                snprintf(sql, sizeof(sql), "DROP SCHEMA IF EXISTS %s%s CASCADE", f->schema,
                         suffixes[i]);
                assert_int_equal(raw_exec(f, sql), 0);
        }
        PQfinish(f->admin);
        assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

static struct registry_cert cert(const char *serial, const char *identity, enum ca_kind kind,
                                 enum ca_role issuer, int64_t not_after)
{
        struct registry_cert c = {.kind = kind,
                                  .issuer = issuer,
                                  .not_before = NOW - 300,
                                  .not_after = not_after,
                                  .issued_at = NOW,
                                  .pem = (char *)"-----BEGIN CERTIFICATE-----\n"};

        snprintf(c.serial, sizeof(c.serial), "%s", serial);
        snprintf(c.identity, sizeof(c.identity), "%s", identity);
        snprintf(c.key_sha256, sizeof(c.key_sha256), "%s", KEY1);
        return c;
}

static void add_claim(struct registry *reg, const char *id, const char *tenant, int64_t expires)
{
        struct registry_claim c = {.created_at = NOW, .expires_at = expires};

        snprintf(c.claim_id, sizeof(c.claim_id), "%s", id);
        snprintf(c.tenant, sizeof(c.tenant), "%s", tenant);
        assert_int_equal(registry_claim_add(reg, &c), 0);
}

/* -- open and schema ---------------------------------------------------------------- */

static void test_open_schema_and_locations(void **state)
{
        struct fx *f = *state;
        struct registry *other = NULL;
        char loc[1100], why[256];
        struct stat st;

        if (!pg_base) {
                assert_int_equal(stat(f->path, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                /* reopening finds the schema; "sqlite:" prefix is the same file */
                snprintf(loc, sizeof(loc), "sqlite:%s", f->path);
        } else {
                /* postgres:// is the same server and database */
                snprintf(loc, sizeof(loc), "postgres://%s", strstr(f->path, "://") + 3);
        }
        assert_int_equal(registry_open(loc, &other), 0);
        other = registry_close(other);
        assert_null(other);
        assert_null(registry_close(NULL));
        assert_int_equal(registry_open("", &other), -EINVAL);
        assert_int_equal(registry_open("sqlite:", &other), -EINVAL);
        assert_int_equal(registry_open("/nonexistent-dir/x/registry.db", &other), -ENOENT);
        assert_int_equal(
                registry_open_explain("/nonexistent-dir/x/registry.db", why, sizeof(why), &other),
                -ENOENT);
        assert_string_equal(why, strerror(ENOENT));
        /* PostgreSQL: no server there; the reason names it, never the password */
        assert_int_equal(registry_open_explain("postgresql://floe:s3cr3t-pw@127.0.0.1:1/floe"
                                               "?connect_timeout=5",
                                               why, sizeof(why), &other),
                         -EIO);
        assert_non_null(strstr(why, "127.0.0.1"));
        assert_non_null(strstr(why, "port 1 "));
        assert_null(strstr(why, "s3cr3t"));
        /* a malformed URI is not shown: libpq would quote it, password and all */
        assert_int_equal(registry_open_explain("postgresql://floe:s3cr3t%zz@[::1/floe", why,
                                               sizeof(why), &other),
                         -EINVAL);
        assert_true(why[0] != '\0');
        assert_null(strstr(why, "s3cr3t"));
        assert_int_equal(registry_open("postgresql:floe", &other), -EINVAL);
        assert_null(other);

        /* a registry written by a newer floe is refused */
        assert_int_equal(raw_exec(f, "UPDATE registry_meta SET value = '99' WHERE name = "
                                     "'schema_version'"),
                         0);
        assert_int_equal(registry_open_explain(f->path, why, sizeof(why), &other), -EPROTO);
        assert_non_null(strstr(why, "newer"));
        assert_null(other);
        assert_string_equal(registry_last_error(NULL), "");
}

static void test_location_redact(void **state)
{
        static const char *const cases[][2] = {
                {"/var/lib/floe-ca/registry.db", "/var/lib/floe-ca/registry.db"},
                {"sqlite:/x:y@z", "sqlite:/x:y@z"},
                {"postgresql://floe:pw@db.example:5432/floe",
                 "postgresql://floe:***@db.example:5432/floe"},
                {"postgres://floe@db/floe", "postgres://floe@db/floe"},
                {"postgresql://db/floe?user=floe&password=pw&sslmode=require",
                 "postgresql://db/floe?user=floe&password=***&sslmode=require"},
                {"postgresql://u:p@w@h/d?sslpassword=k", "postgresql://u:***@h/d?sslpassword=***"},
                {"postgresql://h/d?application_name=password",
                 "postgresql://h/d?application_name=password"},
                {"postgresql://u:pw@[::1]:5/d", "postgresql://u:***@[::1]:5/d"},
                /* as libpq reads them: '?' and '#' in a password, encoded keys */
                {"postgresql://u:p?w#x@h/d", "postgresql://u:***@h/d"},
                {"postgresql://h/d?%70assword=pw&x=1&password",
                 "postgresql://h/d?%70assword=***&x=1&password"},
                {"postgresql://h/d?password=p#w&a=b", "postgresql://h/d?password=***&a=b"},
                /* libpq key=value words */
                {"postgresql: host=db password=pw dbname=floe",
                 "postgresql: host=db password=*** dbname=floe"},
                {"postgres:password = 'p w\\' x' sslpassword=k\\ y user=u",
                 "postgres:password = *** sslpassword=*** user=u"},
        };
        char buf[128];

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_string_equal(registry_location_redact(cases[i][0], buf, sizeof(buf)),
                                    cases[i][1]);
        /* truncated, never overrun */
        assert_string_equal(registry_location_redact("postgresql://u:pw@h/d", buf, 18),
                            "postgresql://u:**");
        assert_string_equal(registry_location_redact(NULL, buf, sizeof(buf)), "");
}

static void test_placeholders(void **state)
{
        const char *sql = "SELECT '?', \"a?\" -- ?\n FROM t /* ? */ WHERE a = ? AND b = 'it''s ?' "
                          "AND c = ?";
        char out[160];
        size_t n = 0;

        (void)state;
        assert_int_equal(floe_sql_placeholders(sql, NULL, 0, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(floe_sql_placeholders(sql, out, sizeof(out), &n), 0);
        assert_string_equal(out, "SELECT '?', \"a?\" -- ?\n FROM t /* ? */ WHERE a = $1 AND "
                                 "b = 'it''s ?' AND c = $2");
        assert_int_equal(floe_sql_placeholders("a = ?", out, 6, &n), -ENOBUFS);
        assert_int_equal(floe_sql_placeholders("a = ?", out, 7, &n), 0);
        assert_string_equal(out, "a = $1");
}

static void test_transactions(void **state)
{
        struct fx *f = *state;
        struct registry_cert c = cert("0A", "acme.gw-1", CA_KIND_DEVICE, CA_ROLE_DEVICE, NOW + DAY),
                             got;

        assert_int_equal(registry_commit(f->reg), -ENOTCONN);
        registry_rollback(f->reg); /* nothing open: no-op */
        registry_rollback(NULL);
        assert_int_equal(registry_begin(f->reg), 0);
        assert_int_equal(registry_begin(f->reg), -EALREADY);
        assert_int_equal(registry_cert_add(f->reg, &c), 0);
        registry_rollback(f->reg);
        assert_int_equal(registry_cert_get(f->reg, "0A", &got), -ENOENT);

        assert_int_equal(registry_begin(f->reg), 0);
        assert_int_equal(registry_cert_add(f->reg, &c), 0);
        /* an operation's own failure inside the caller's transaction leaves it usable */
        assert_int_equal(registry_cert_add(f->reg, &c), -EEXIST);
        assert_int_equal(registry_commit(f->reg), 0);
        assert_int_equal(registry_cert_get(f->reg, "0A", &got), 0);
        registry_cert_clear(&got);
}

static void test_savepoints(void **state)
{
        struct fx *f = *state;
        struct registry_cert a = cert("A1", "acme.gw-1", CA_KIND_DEVICE, CA_ROLE_DEVICE, NOW + DAY),
                             b = cert("B2", "acme.gw-2", CA_KIND_DEVICE, CA_ROLE_DEVICE, NOW + DAY),
                             c = cert("C3", "acme.gw-3", CA_KIND_DEVICE, CA_ROLE_DEVICE, NOW + DAY),
                             got;

        assert_int_equal(registry_savepoint(f->reg), -ENOTCONN);
        assert_int_equal(registry_begin(f->reg), 0);
        assert_int_equal(registry_savepoint_release(f->reg), -ENOTCONN);
        assert_int_equal(registry_cert_add(f->reg, &a), 0);
        assert_int_equal(registry_savepoint(f->reg), 0);
        assert_int_equal(registry_savepoint(f->reg), -EALREADY);
        assert_int_equal(registry_cert_add(f->reg, &b), 0);
        assert_int_equal(registry_savepoint_rollback(f->reg), 0);
        assert_int_equal(registry_savepoint(f->reg), 0);
        assert_int_equal(registry_cert_add(f->reg, &c), 0);
        assert_int_equal(registry_cert_add(f->reg, &a), -EEXIST);
        assert_int_equal(registry_savepoint_release(f->reg), 0);
        assert_int_equal(registry_commit(f->reg), 0);
        assert_int_equal(registry_cert_get(f->reg, "A1", &got), 0);
        registry_cert_clear(&got);
        assert_int_equal(registry_cert_get(f->reg, "B2", &got), -ENOENT);
        assert_int_equal(registry_cert_get(f->reg, "C3", &got), 0);
        registry_cert_clear(&got);
}

/* -- certificates ---------------------------------------------------------------------- */

struct collected {
        char serials[16][CA_SERIAL_HEX_MAX + 1];
        size_t n;
        int stop_after;
};

static int collect(const struct registry_cert *c, void *userdata)
{
        struct collected *l = userdata;

        assert_true(l->n < 16);
        memcpy(l->serials[l->n++], c->serial, sizeof(c->serial));
        return l->stop_after && (int)l->n == l->stop_after ? 42 : 0;
}

static void test_certificates(void **state)
{
        struct fx *f = *state;
        struct registry_cert c1 = cert("01", "acme.gw-1", CA_KIND_DEVICE, CA_ROLE_DEVICE,
                                       NOW + DAY),
                             c2 = cert("02", "acme.gw-1", CA_KIND_DEVICE, CA_ROLE_DEVICE,
                                       NOW + 2 * DAY),
                             c3 = cert("03", "acme.gw-2", CA_KIND_DEVICE, CA_ROLE_DEVICE, NOW - 1),
                             c4 = cert("04", "floe device CA", CA_KIND_CA, CA_ROLE_ROOT,
                                       NOW + 100 * DAY),
                             c5 = cert("05", "claim-x", CA_KIND_CLAIM, CA_ROLE_CLAIM, NOW + DAY),
                             got, bad;
        struct registry_filter flt = REGISTRY_FILTER_ALL;
        struct collected l = {0};
        size_t n = 0;

        c2.not_before = NOW - 100;
        snprintf(c2.key_sha256, sizeof(c2.key_sha256), "%s", KEY2);
        c2.pem = (char *)"second";
        assert_int_equal(registry_cert_add(f->reg, &c1), 0);
        assert_int_equal(registry_cert_add(f->reg, &c2), 0);
        assert_int_equal(registry_cert_add(f->reg, &c3), 0);
        assert_int_equal(registry_cert_add(f->reg, &c4), 0);
        assert_int_equal(registry_cert_add(f->reg, &c5), 0);
        assert_int_equal(registry_cert_add(f->reg, &c1), -EEXIST);
        bad = c1;
        bad.pem = NULL;
        assert_int_equal(registry_cert_add(f->reg, &bad), -EINVAL);
        bad = c1;
        bad.kind = (enum ca_kind)77;
        assert_int_equal(registry_cert_add(f->reg, &bad), -EINVAL);

        assert_int_equal(registry_cert_get(f->reg, "02", &got), 0);
        assert_string_equal(got.identity, "acme.gw-1");
        assert_int_equal(got.kind, CA_KIND_DEVICE);
        assert_int_equal(got.issuer, CA_ROLE_DEVICE);
        assert_int_equal(got.not_after, NOW + 2 * DAY);
        assert_string_equal(got.pem, "second");
        assert_string_equal(got.key_sha256, KEY2);
        assert_int_equal(registry_cert_status(&got, NOW), REGISTRY_VALID);
        assert_int_equal(registry_cert_status(&got, NOW + 2 * DAY), REGISTRY_EXPIRED);
        registry_cert_clear(&got);
        registry_cert_clear(NULL);
        assert_int_equal(registry_cert_get(f->reg, "99", &got), -ENOENT);

        /* order: identity, not_before, serial; filters combine */
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), 0);
        assert_int_equal(l.n, 5);
        assert_string_equal(l.serials[0], "01");
        assert_string_equal(l.serials[1], "02");
        assert_string_equal(l.serials[2], "03");
        assert_string_equal(l.serials[3], "05");
        assert_string_equal(l.serials[4], "04");
        l = (struct collected){0};
        flt.identity = "acme.gw-1";
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), 0);
        assert_int_equal(l.n, 2);
        l = (struct collected){.stop_after = 1};
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), 42);
        assert_int_equal(l.n, 1);
        l = (struct collected){0};
        flt = REGISTRY_FILTER_ALL;
        flt.kind = CA_KIND_CA;
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), 0);
        assert_int_equal(l.n, 1);
        assert_string_equal(l.serials[0], "04");
        flt.kind = 99;
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), -EINVAL);

        /* the newest valid certificate with that key */
        assert_int_equal(registry_cert_find_by_key(f->reg, "acme.gw-1", KEY2, NOW, &got), 0);
        assert_string_equal(got.serial, "02");
        registry_cert_clear(&got);
        assert_int_equal(registry_cert_find_by_key(f->reg, "acme.gw-2", KEY1, NOW, &got),
                         -ENOENT); /* expired */

        /* revocation */
        assert_int_equal(registry_revoke_serial(f->reg, "77", CA_REASON_KEY_COMPROMISE, NOW),
                         -ENOENT);
        assert_int_equal(registry_revoke_serial(f->reg, "01", (enum ca_reason)8, NOW), -EINVAL);
        assert_int_equal(registry_revoke_serial(f->reg, "01", CA_REASON_KEY_COMPROMISE, NOW + 5),
                         0);
        assert_int_equal(registry_revoke_serial(f->reg, "01", CA_REASON_KEY_COMPROMISE, NOW),
                         -EALREADY);
        assert_int_equal(registry_cert_get(f->reg, "01", &got), 0);
        assert_int_equal(registry_cert_status(&got, NOW), REGISTRY_REVOKED);
        assert_int_equal(got.revoked_at, NOW + 5);
        assert_int_equal(got.reason, CA_REASON_KEY_COMPROMISE);
        registry_cert_clear(&got);
        /* by identity: the rest that is valid and unexpired; CAs never */
        assert_int_equal(
                registry_revoke_identity(f->reg, "acme.gw-1", CA_REASON_SUPERSEDED, NOW, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(
                registry_revoke_identity(f->reg, "acme.gw-1", CA_REASON_SUPERSEDED, NOW, &n),
                -ENOENT);
        assert_int_equal(
                registry_revoke_identity(f->reg, "acme.gw-2", CA_REASON_SUPERSEDED, NOW, NULL),
                -ENOENT);
        assert_int_equal(
                registry_revoke_identity(f->reg, "floe device CA", CA_REASON_SUPERSEDED, NOW, NULL),
                -ENOENT);
        l = (struct collected){0};
        flt = REGISTRY_FILTER_ALL;
        flt.revoked_only = true;
        assert_int_equal(registry_cert_foreach(f->reg, &flt, collect, &l), 0);
        assert_int_equal(l.n, 2);
        assert_int_equal(registry_cert_find_by_key(f->reg, "acme.gw-1", KEY2, NOW, &got), -ENOENT);
}

static void test_revoking_a_claim_disables_it(void **state)
{
        struct fx *f = *state;
        struct registry_cert c = cert("05", "claim-x", CA_KIND_CLAIM, CA_ROLE_CLAIM, NOW + DAY);
        struct registry_claim got;

        add_claim(f->reg, "claim-x", "acme", NOW + DAY);
        add_claim(f->reg, "claim-y", "acme", NOW + DAY);
        assert_int_equal(registry_cert_add(f->reg, &c), 0);
        assert_int_equal(registry_revoke_serial(f->reg, "05", CA_REASON_KEY_COMPROMISE, NOW), 0);
        assert_int_equal(registry_claim_get(f->reg, "claim-x", &got), 0);
        assert_true(got.disabled);
        assert_int_equal(registry_claim_get(f->reg, "claim-y", &got), 0);
        assert_false(got.disabled);
        assert_int_equal(registry_claim_disable(f->reg, "claim-y"), 0);
        assert_int_equal(registry_claim_get(f->reg, "claim-y", &got), 0);
        assert_true(got.disabled);
        assert_int_equal(registry_claim_disable(f->reg, "claim-z"), -ENOENT);
}

static void test_crl_numbers(void **state)
{
        struct fx *f = *state;
        uint64_t n = 0;
        int64_t tu, nu;

        assert_int_equal(registry_crl_last(f->reg, CA_ROLE_DEVICE, &n, &tu, &nu), -ENOENT);
        for (uint64_t i = 1; i <= 3; i++) {
                assert_int_equal(
                        registry_crl_next(f->reg, CA_ROLE_DEVICE, NOW + (int64_t)i, NOW + DAY, &n),
                        0);
                assert_int_equal(n, i);
        }
        assert_int_equal(registry_crl_next(f->reg, CA_ROLE_CLAIM, NOW, NOW + DAY, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(registry_crl_last(f->reg, CA_ROLE_DEVICE, &n, &tu, &nu), 0);
        assert_int_equal(n, 3);
        assert_int_equal(tu, NOW + 3);
        assert_int_equal(nu, NOW + DAY);
        assert_int_equal(registry_crl_next(f->reg, CA_ROLE_DEVICE, NOW, NOW, &n), -EINVAL);
        assert_int_equal(registry_crl_next(f->reg, (enum ca_role)9, NOW, NOW + 1, &n), -EINVAL);
}

/* -- claims, allowlist --------------------------------------------------------------------- */

static void test_claims_and_allowlist(void **state)
{
        struct fx *f = *state;
        struct registry_claim c = {.created_at = NOW, .expires_at = NOW + DAY}, got;
        bool replay = true;

        snprintf(c.claim_id, sizeof(c.claim_id), "claim-a");
        snprintf(c.tenant, sizeof(c.tenant), "acme");
        assert_int_equal(registry_claim_add(f->reg, &c), 0);
        assert_int_equal(registry_claim_add(f->reg, &c), -EEXIST);
        snprintf(c.claim_id, sizeof(c.claim_id), "notaclaim");
        assert_int_equal(registry_claim_add(f->reg, &c), -EINVAL);
        snprintf(c.claim_id, sizeof(c.claim_id), "claim-b");
        snprintf(c.tenant, sizeof(c.tenant), "Acme");
        assert_int_equal(registry_claim_add(f->reg, &c), -EINVAL);
        c.tenant[0] = '\0';
        c.expires_at = NOW;
        assert_int_equal(registry_claim_add(f->reg, &c), -EINVAL);
        assert_int_equal(registry_claim_get(f->reg, "claim-a", &got), 0);
        assert_string_equal(got.tenant, "acme");
        assert_int_equal(got.expires_at, NOW + DAY);
        assert_int_equal(registry_claim_get(f->reg, "claim-b", &got), -ENOENT);
        add_claim(f->reg, "claim-any", "", NOW + DAY);

        assert_int_equal(registry_entitlement_add(f->reg, "claim-a", "acme.gw-1", false, NOW), 0);
        assert_int_equal(registry_entitlement_add(f->reg, "claim-a", "acme.gw-1", false, NOW),
                         -EEXIST);
        assert_int_equal(registry_entitlement_add(f->reg, "claim-a", "other.gw-1", false, NOW),
                         -EINVAL);
        assert_int_equal(registry_entitlement_add(f->reg, "claim-a", "acme/gw", false, NOW),
                         -EINVAL);
        assert_int_equal(registry_entitlement_add(f->reg, "claim-b", "acme.gw-1", false, NOW),
                         -ENOENT);
        assert_int_equal(registry_entitlement_add(f->reg, "claim-any", "other.gw-9", true, NOW), 0);

        /* single use: first use, then idempotent retries with the same key only */
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-a", "acme.gw-1", KEY1, NOW, &replay), 0);
        assert_false(replay);
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-a", "acme.gw-1", KEY1, NOW + 1, &replay),
                0);
        assert_true(replay);
        replay = false;
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-a", "acme.gw-1", KEY2, NOW, &replay),
                -EALREADY);
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-a", "acme.gw-2", KEY1, NOW, &replay),
                -EPERM);
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-zz", "acme.gw-1", KEY1, NOW, &replay),
                -EPERM);
        assert_int_equal(registry_entitlement_use(f->reg, "claim-a", "acme.gw-1", "", NOW, &replay),
                         -EINVAL);
        /* reusable: any key, each time counted */
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-any", "other.gw-9", KEY1, NOW, &replay), 0);
        assert_false(replay);
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-any", "other.gw-9", KEY2, NOW, &replay), 0);
        assert_false(replay);
        /* expired and disabled claims entitle nothing, not even a replay */
        assert_int_equal(registry_entitlement_use(f->reg, "claim-any", "other.gw-9", KEY1,
                                                  NOW + DAY, &replay),
                         -EKEYEXPIRED);
        assert_int_equal(registry_claim_disable(f->reg, "claim-a"), 0);
        assert_int_equal(
                registry_entitlement_use(f->reg, "claim-a", "acme.gw-1", KEY1, NOW, &replay),
                -EKEYREVOKED);
}

/* -- tokens -------------------------------------------------------------------------------- */

static void test_token_format_and_hash(void **state)
{
        char t1[64], t2[64], h1[65], h2[65];

        (void)state;
        assert_int_equal(registry_token_generate(t1, sizeof(t1)), 0);
        assert_int_equal(registry_token_generate(t2, sizeof(t2)), 0);
        assert_int_equal(strlen(t1), REGISTRY_TOKEN_LEN);
        assert_memory_equal(t1, REGISTRY_TOKEN_PREFIX, strlen(REGISTRY_TOKEN_PREFIX));
        assert_string_not_equal(t1, t2);
        assert_int_equal(registry_token_generate(t1, REGISTRY_TOKEN_LEN), -ENOBUFS);
        assert_int_equal(registry_token_hash(t2, h1), 0);
        assert_int_equal(registry_token_hash(t2, h2), 0);
        assert_string_equal(h1, h2);
        assert_int_equal(strlen(h1), 64);
        /* SHA-256("floe-et1-000...0") computed independently with sha256sum */
        assert_int_equal(registry_token_hash("floe-et1-00000000000000000000000000000000", h1), 0);
        assert_string_equal(h1, "c43aadaac164fa3d8a187e4639a1d6f2b35cb0e7caf523651c1c4e905b2f5c6a");
        assert_int_equal(registry_token_hash("floe-et1-0000000000000000000000000000000G", h1),
                         -EINVAL);
        assert_int_equal(registry_token_hash("floe-et1-000", h1), -EINVAL);
        assert_int_equal(registry_token_hash("floe-et2-00000000000000000000000000000000", h1),
                         -EINVAL);
        assert_int_equal(registry_token_hash(NULL, h1), -EINVAL);
}

static void test_tokens_burn_once(void **state)
{
        struct fx *f = *state;
        char bound[64], open[64], other[64], late[64];
        uint64_t total = 0, unused = 0;
        bool replay = true;

        add_claim(f->reg, "claim-t", "acme", NOW + 10 * DAY);
        add_claim(f->reg, "claim-u", "acme", NOW + 10 * DAY);
        add_claim(f->reg, "claim-none", "", NOW + 10 * DAY);
        assert_int_equal(registry_token_generate(bound, sizeof(bound)), 0);
        assert_int_equal(registry_token_generate(open, sizeof(open)), 0);
        assert_int_equal(registry_token_generate(other, sizeof(other)), 0);
        assert_int_equal(registry_token_generate(late, sizeof(late)), 0);
        assert_int_equal(registry_token_add(f->reg, "claim-t", bound, "acme.gw-1", NOW + DAY, NOW),
                         0);
        assert_int_equal(registry_token_add(f->reg, "claim-t", bound, "acme.gw-1", NOW + DAY, NOW),
                         -EEXIST);
        assert_int_equal(registry_token_add(f->reg, "claim-t", open, NULL, NOW + DAY, NOW), 0);
        assert_int_equal(registry_token_add(f->reg, "claim-u", other, NULL, NOW + DAY, NOW), 0);
        assert_int_equal(registry_token_add(f->reg, "claim-t", late, NULL, NOW + 10, NOW), 0);
        /* unbound tokens need a tenant; bound ones must lie in it */
        assert_int_equal(registry_token_add(f->reg, "claim-none", other, NULL, NOW + DAY, NOW),
                         -EINVAL);
        assert_int_equal(registry_token_add(f->reg, "claim-t", "floe-et1-x", NULL, NOW + DAY, NOW),
                         -EINVAL);
        assert_int_equal(registry_token_add(f->reg, "claim-t", other, "evil.gw-1", NOW + DAY, NOW),
                         -EINVAL);
        assert_int_equal(registry_token_add(f->reg, "claim-t", other, NULL, NOW, NOW), -EINVAL);
        assert_int_equal(registry_token_add(f->reg, "claim-q", other, NULL, NOW + DAY, NOW),
                         -ENOENT);
        assert_int_equal(registry_token_count(f->reg, "claim-t", &total, &unused), 0);
        assert_int_equal(total, 3);
        assert_int_equal(unused, 3);

        /* bound token: only for its identity */
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", bound, "acme.gw-2", KEY1, NOW, &replay),
                -EPERM);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", bound, "acme.gw-1", KEY1, NOW, &replay), 0);
        assert_false(replay);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", bound, "acme.gw-1", KEY1, NOW + 1, &replay),
                0);
        assert_true(replay);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", bound, "acme.gw-1", KEY2, NOW, &replay),
                -EALREADY);
        /* unbound: any identity of the tenant, once */
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", open, "evil.gw-1", KEY1, NOW, &replay),
                -EPERM);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", open, "acme.gw-7", KEY2, NOW, &replay), 0);
        assert_false(replay);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", open, "acme.gw-8", KEY2, NOW, &replay),
                -EALREADY);
        /* another claim's token does not exist for this claim */
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", other, "acme.gw-1", KEY1, NOW, &replay),
                -ENOENT);
        assert_int_equal(registry_token_burn(f->reg, "claim-t",
                                             "floe-et1-0123456789abcdef0123456789abcdef",
                                             "acme.gw-1", KEY1, NOW, &replay),
                         -ENOENT);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", "nope", "acme.gw-1", KEY1, NOW, &replay),
                -EINVAL);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", late, "acme.gw-1", "", NOW, &replay),
                -EINVAL);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", late, "acme/gw-1", KEY1, NOW, &replay),
                -EINVAL);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", late, "acme.gw-1", KEY1, NOW + 10, &replay),
                -EKEYEXPIRED);
        assert_int_equal(registry_token_count(f->reg, "claim-t", &total, &unused), 0);
        assert_int_equal(total, 3);
        assert_int_equal(unused, 1);
        /* a disabled claim burns nothing, replays included */
        assert_int_equal(registry_claim_disable(f->reg, "claim-u"), 0);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-u", other, "acme.gw-1", KEY1, NOW, &replay),
                -EKEYREVOKED);
        assert_int_equal(registry_claim_disable(f->reg, "claim-t"), 0);
        assert_int_equal(
                registry_token_burn(f->reg, "claim-t", bound, "acme.gw-1", KEY1, NOW, &replay),
                -EKEYREVOKED);
}

/* Two connections race, each from its own thread (as two floe-enrolld processes
 * would): each token and single-use entitlement is used exactly once, and the
 * rate limit lets exactly limit attempts through. */
enum { RACE_N = 40, RATE_LIMIT = 30 };

struct racer {
        const char *path;
        const char *key;
        char (*tokens)[64];
        int wins, denied, errors;
};

static void *race(void *userdata)
{
        struct racer *rc = userdata;
        struct registry *reg = NULL;

        if (registry_open(rc->path, &reg) < 0) {
                rc->errors++;
                return NULL;
        }
        for (int i = 0; i < RACE_N; i++) {
                char identity[32];
                bool replay = false, r2 = false;
                int r, e;

                snprintf(identity, sizeof(identity), "acme.gw-%d", i);
                r = registry_token_burn(reg, "claim-race", rc->tokens[i], "acme.gw-1", rc->key, NOW,
                                        &replay);
                e = registry_entitlement_use(reg, "claim-race", identity, rc->key, NOW, &r2);
                rc->wins += (r == 0 && !replay) + (e == 0 && !r2);
                rc->errors += (r < 0 && r != -EALREADY) + (e < 0 && e != -EALREADY);
                r = registry_rate_hit(reg, "claim-race", NOW, 3600, RATE_LIMIT, NULL);
                rc->denied += r == -EDQUOT;
                rc->errors += r < 0 && r != -EDQUOT;
        }
        registry_close(reg);
        return NULL;
}

static void test_races_across_connections(void **state)
{
        struct fx *f = *state;
        char tokens[RACE_N][64], identity[32];
        struct racer a = {.path = f->path, .key = KEY1, .tokens = tokens},
                     b = {.path = f->path, .key = KEY2, .tokens = tokens};
        uint64_t total = 0, unused = 0, count = 0;
        pthread_t ta, tb;

        add_claim(f->reg, "claim-race", "acme", NOW + DAY);
        for (int i = 0; i < RACE_N; i++) {
                assert_int_equal(registry_token_generate(tokens[i], sizeof(tokens[i])), 0);
                assert_int_equal(
                        registry_token_add(f->reg, "claim-race", tokens[i], NULL, NOW + DAY, NOW),
                        0);
                snprintf(identity, sizeof(identity), "acme.gw-%d", i);
                assert_int_equal(
                        registry_entitlement_add(f->reg, "claim-race", identity, false, NOW), 0);
        }
        assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
        assert_int_equal(pthread_join(ta, NULL), 0);
        assert_int_equal(pthread_join(tb, NULL), 0);
        assert_int_equal(a.errors + b.errors, 0);
        assert_int_equal(a.wins + b.wins, 2 * RACE_N);
        assert_int_equal(registry_token_count(f->reg, "claim-race", &total, &unused), 0);
        assert_int_equal(total, RACE_N);
        assert_int_equal(unused, 0);
        /* 2 * RACE_N attempts counted; all beyond the limit refused */
        assert_int_equal(a.denied + b.denied, 2 * RACE_N - RATE_LIMIT);
        assert_int_equal(registry_rate_hit(f->reg, "claim-race", NOW, 3600, 1000, &count), 0);
        assert_int_equal(count, 2 * RACE_N + 1);
}

struct opener {
        const char *path;
        int r;
};

static void *open_one(void *userdata)
{
        struct opener *o = userdata;
        struct registry *reg = NULL;

        o->r = registry_open(o->path, &reg);
        registry_close(reg);
        return NULL;
}

/* Daemons starting together on an empty database: one creates the schema, none fails.
 * Several rounds of eight, as the race is narrow. */
static void test_concurrent_schema_creation(void **state)
{
        struct fx *f = *state;

        for (int round = 0; round < 6; round++) {
                struct opener o[8];
                pthread_t t[8];
                char loc[1100], name[32];
                struct registry *reg = NULL;
                uint64_t n = 0;

                snprintf(name, sizeof(name), "fresh%d", round);
                fresh_location(f, name, loc, sizeof(loc));
                if (!pg_base) {
                        /* An empty file already in WAL mode: SQLite refuses a concurrent
                         * switch to WAL at once ("database is locked"); floe-ca init
                         * creates it alone. */
                        sqlite3 *db;

                        assert_int_equal(sqlite3_open(loc, &db), SQLITE_OK);
                        assert_int_equal(
                                sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
                                SQLITE_OK);
                        sqlite3_close(db);
                }
                for (size_t i = 0; i < ELEMENTSOF(o); i++) {
                        o[i] = (struct opener){.path = loc, .r = 1};
                        assert_int_equal(pthread_create(&t[i], NULL, open_one, &o[i]), 0);
                }
                for (size_t i = 0; i < ELEMENTSOF(o); i++)
                        assert_int_equal(pthread_join(t[i], NULL), 0);
                for (size_t i = 0; i < ELEMENTSOF(o); i++)
                        assert_int_equal(o[i].r, 0);
                assert_int_equal(registry_open(loc, &reg), 0);
                assert_int_equal(registry_crl_next(reg, CA_ROLE_DEVICE, NOW, NOW + DAY, &n), 0);
                assert_int_equal(n, 1);
                registry_close(reg);
        }
}

static void test_rate_limit(void **state)
{
        struct fx *f = *state;
        int64_t start = NOW - NOW % 60;
        uint64_t n = 0;

        for (uint64_t i = 1; i <= 3; i++) {
                assert_int_equal(registry_rate_hit(f->reg, "claim-a", start + 1, 60, 3, &n), 0);
                assert_int_equal(n, i);
        }
        assert_int_equal(registry_rate_hit(f->reg, "claim-a", start + 59, 60, 3, &n), -EDQUOT);
        assert_int_equal(n, 4);
        /* other claims have their own count */
        assert_int_equal(registry_rate_hit(f->reg, "claim-b", start + 2, 60, 3, NULL), 0);
        /* the next window starts over */
        assert_int_equal(registry_rate_hit(f->reg, "claim-a", start + 60, 60, 3, &n), 0);
        assert_int_equal(n, 1);
        /* which pruned the old one: a late hit there starts from scratch */
        assert_int_equal(registry_rate_hit(f->reg, "claim-a", start + 1, 60, 3, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(registry_rate_hit(f->reg, "claim-a", start, 0, 3, &n), -EINVAL);
        assert_int_equal(registry_rate_hit(f->reg, "", start, 60, 3, &n), -EINVAL);
}

/* Every floe allocation of an open and an insert fails in turn: errors, no leaks. */
static void test_allocation_failures(void **state)
{
        struct fx *f = *state;
        char path[1100];
        int r;

        fresh_location(f, "torture", path, sizeof(path));
        for (uint64_t n = 1; n < 100; n++) {
                struct registry_cert c = cert("AB", "acme.gw-1", CA_KIND_DEVICE, CA_ROLE_DEVICE,
                                              NOW + DAY),
                                     got;
                struct registry *reg = NULL;

                floe_alloc_fail_at(n);
                r = registry_open(path, &reg);
                if (r == 0) {
                        r = registry_cert_add(reg, &c);
                        if (r == 0 || r == -EEXIST)
                                r = registry_cert_get(reg, "AB", &got);
                        if (r == 0)
                                registry_cert_clear(&got);
                        registry_close(reg);
                }
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(r, 0);
                        return;
                }
                floe_alloc_fail_at(0);
                assert_true(r == 0 || r == -ENOMEM);
        }
        fail_msg("more than 100 allocations");
}

/* -- --serve: a long-lived client for the system tests ---------------------------------- */

static int reply(int r, struct registry *reg, const char *fmt, ...)
{
        va_list ap;

        if (r < 0 && r != -EDQUOT) {
                printf("err %d %s\n", -r, registry_last_error(reg));
        } else {
                va_start(ap, fmt);
                vprintf(fmt, ap);
                va_end(ap);
        }
        fflush(stdout);
        return r;
}

static long number(const char *s)
{
        char *end;
        long v;

        errno = 0;
        v = s ? strtol(s, &end, 10) : -1;
        return s && errno == 0 && *end == '\0' ? v : -1;
}

/*
 * One command per line, one answer line each ("err ERRNO MESSAGE" on failure):
 *   claim ID TENANT                      -> ok
 *   token CLAIM TOKEN                    -> ok
 *   burn CLAIM IDENTITY KEY TOKEN...     -> ok WINS ALREADY   (stops at another error)
 *   rate CLAIM LIMIT N                   -> ok ALLOWED DENIED (N hits, window of an hour)
 *   count CLAIM                          -> ok TOTAL UNUSED
 *   begin | commit | rollback            -> ok
 * Times are NOW (1800000000).
 */
static int serve(const char *location)
{
        struct registry *reg = NULL;
        char line[16384], why[512];
        int r;

        r = registry_open_explain(location, why, sizeof(why), &reg);
        if (r < 0) {
                printf("err %d %s\n", -r, why);
                return 1;
        }
        printf("ready\n");
        fflush(stdout);
        while (fgets(line, sizeof(line), stdin)) {
                char *save = NULL, *cmd = strtok_r(line, " \n", &save);
                char *a1 = strtok_r(NULL, " \n", &save), *a2 = strtok_r(NULL, " \n", &save);
                long wins = 0, other = 0;

                if (!cmd)
                        continue;
                if (strcmp(cmd, "claim") == 0 && a2) {
                        struct registry_claim c = {.created_at = NOW, .expires_at = NOW + DAY};

                        snprintf(c.claim_id, sizeof(c.claim_id), "%s", a1);
                        snprintf(c.tenant, sizeof(c.tenant), "%s", a2);
                        r = registry_claim_add(reg, &c);
                        reply(r, reg, "ok\n");
                } else if (strcmp(cmd, "token") == 0 && a2) {
                        r = registry_token_add(reg, a1, a2, NULL, NOW + DAY, NOW);
                        reply(r, reg, "ok\n");
                } else if (strcmp(cmd, "burn") == 0 && a2) {
                        const char *key = strtok_r(NULL, " \n", &save), *tok;

                        r = 0;
                        while (key && r >= 0 && (tok = strtok_r(NULL, " \n", &save))) {
                                bool replay = false;

                                r = registry_token_burn(reg, a1, tok, a2, key, NOW, &replay);
                                wins += r == 0 && !replay;
                                other += r == -EALREADY;
                                if (r == -EALREADY)
                                        r = 0;
                        }
                        reply(key ? r : -EINVAL, reg, "ok %ld %ld\n", wins, other);
                } else if (strcmp(cmd, "rate") == 0 && a2) {
                        long limit = number(a2), n = number(strtok_r(NULL, " \n", &save));

                        r = limit < 0 || n < 0 ? -EINVAL : 0;
                        for (long i = 0; i < n && r >= 0; i++) {
                                r = registry_rate_hit(reg, a1, NOW, 3600, (uint64_t)limit, NULL);
                                wins += r == 0;
                                other += r == -EDQUOT;
                                if (r == -EDQUOT)
                                        r = 0;
                        }
                        reply(r, reg, "ok %ld %ld\n", wins, other);
                } else if (strcmp(cmd, "count") == 0 && a1) {
                        uint64_t total = 0, unused = 0;

                        r = registry_token_count(reg, a1, &total, &unused);
                        reply(r, reg, "ok %llu %llu\n", (unsigned long long)total,
                              (unsigned long long)unused);
                } else if (strcmp(cmd, "begin") == 0) {
                        reply(registry_begin(reg), reg, "ok\n");
                } else if (strcmp(cmd, "commit") == 0) {
                        reply(registry_commit(reg), reg, "ok\n");
                } else if (strcmp(cmd, "rollback") == 0) {
                        registry_rollback(reg);
                        reply(0, reg, "ok\n");
                } else {
                        reply(-EINVAL, NULL, "");
                }
        }
        registry_close(reg);
        return 0;
}

int main(int argc, char **argv)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_schema_and_locations, setup, teardown),
                cmocka_unit_test(test_location_redact),
                cmocka_unit_test(test_placeholders),
                cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_certificates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoking_a_claim_disables_it, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crl_numbers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claims_and_allowlist, setup, teardown),
                cmocka_unit_test(test_token_format_and_hash),
                cmocka_unit_test_setup_teardown(test_tokens_burn_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_races_across_connections, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_schema_creation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        };
        const char *env = getenv("FLOE_TEST_REGISTRY");

        if (argc == 3 && strcmp(argv[1], "--serve") == 0)
                return serve(argv[2]);
        if (argc > 1) {
                fprintf(stderr, "usage: %s [--serve LOCATION]\n", argv[0]);
                return 2;
        }
        if (env && *env) {
                if (strncmp(env, "postgresql://", 13) != 0 &&
                    strncmp(env, "postgres://", 11) != 0) {
                        fprintf(stderr, "FLOE_TEST_REGISTRY: not a postgresql:// URI (unset: "
                                        "SQLite temp files)\n");
                        return 2;
                }
                pg_base = env;
        }
        printf("registry backend: %s\n", pg_base ? "postgresql" : "sqlite");
        return cmocka_run_group_tests(tests, NULL, NULL);
}
