/* SPDX-License-Identifier: Apache-2.0 */
/* The certificate registry (certs/registry.h) on a real SQLite file. */
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
#include <sqlite3.h>

#include "floe-alloc.h"
#include "registry.h"

#define NOW  1800000000LL
#define DAY  86400LL
#define KEY1 "1111111111111111111111111111111111111111111111111111111111111111"
#define KEY2 "2222222222222222222222222222222222222222222222222222222222222222"

struct fx {
        char dir[64];
        char path[128];
        struct registry *reg;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/floe-test-registry-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/registry.db", f->dir);
        assert_int_equal(registry_open(f->path, &f->reg), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        registry_close(f->reg);
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
        char loc[160];
        struct stat st;
        sqlite3 *db;

        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        /* reopening finds the schema; "sqlite:" prefix is the same file */
        snprintf(loc, sizeof(loc), "sqlite:%s", f->path);
        assert_int_equal(registry_open(loc, &other), 0);
        other = registry_close(other);
        assert_null(other);
        assert_null(registry_close(NULL));
        assert_int_equal(registry_open("postgresql://db/floe", &other), -EPROTONOSUPPORT);
        assert_int_equal(registry_open("", &other), -EINVAL);
        assert_int_equal(registry_open("sqlite:", &other), -EINVAL);
        assert_int_equal(registry_open("/nonexistent-dir/x/registry.db", &other), -ENOENT);
        assert_null(other);

        /* a registry written by a newer floe is refused */
        assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db,
                                      "UPDATE registry_meta SET value = '99' WHERE name = "
                                      "'schema_version'",
                                      NULL, NULL, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL),
                         SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(registry_open(f->path, &other), -EPROTO);
        assert_null(other);
        assert_string_equal(registry_last_error(NULL), "");
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

/* Two connections race to burn the same tokens, each from its own thread (as two
 * floe-enrolld processes would): each token is burned exactly once. */
enum { RACE_N = 40 };

struct racer {
        const char *path;
        const char *key;
        char (*tokens)[64];
        int wins, errors;
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
                bool replay = false;
                int r = registry_token_burn(reg, "claim-race", rc->tokens[i], "acme.gw-1", rc->key,
                                            NOW, &replay);

                if (r == 0 && !replay)
                        rc->wins++;
                else if (r != -EALREADY)
                        rc->errors++;
        }
        registry_close(reg);
        return NULL;
}

static void test_tokens_burn_once_across_connections(void **state)
{
        struct fx *f = *state;
        char tokens[RACE_N][64];
        struct racer a = {.path = f->path, .key = KEY1, .tokens = tokens},
                     b = {.path = f->path, .key = KEY2, .tokens = tokens};
        uint64_t total = 0, unused = 0;
        pthread_t ta, tb;

        add_claim(f->reg, "claim-race", "acme", NOW + DAY);
        for (int i = 0; i < RACE_N; i++) {
                assert_int_equal(registry_token_generate(tokens[i], sizeof(tokens[i])), 0);
                assert_int_equal(
                        registry_token_add(f->reg, "claim-race", tokens[i], NULL, NOW + DAY, NOW),
                        0);
        }
        assert_int_equal(pthread_create(&ta, NULL, race, &a), 0);
        assert_int_equal(pthread_create(&tb, NULL, race, &b), 0);
        assert_int_equal(pthread_join(ta, NULL), 0);
        assert_int_equal(pthread_join(tb, NULL), 0);
        assert_int_equal(a.errors + b.errors, 0);
        assert_int_equal(a.wins + b.wins, RACE_N);
        assert_int_equal(registry_token_count(f->reg, "claim-race", &total, &unused), 0);
        assert_int_equal(total, RACE_N);
        assert_int_equal(unused, 0);
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
        assert_int_equal(registry_rate_hit(f->reg, "claim-a", start, 0, 3, &n), -EINVAL);
        assert_int_equal(registry_rate_hit(f->reg, "", start, 60, 3, &n), -EINVAL);
}

/* Every floe allocation of an open and an insert fails in turn: errors, no leaks. */
static void test_allocation_failures(void **state)
{
        struct fx *f = *state;
        char path[160];
        int r;

        snprintf(path, sizeof(path), "%s/torture.db", f->dir);
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_schema_and_locations, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transactions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_certificates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_revoking_a_claim_disables_it, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crl_numbers, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claims_and_allowlist, setup, teardown),
                cmocka_unit_test(test_token_format_and_hash),
                cmocka_unit_test_setup_teardown(test_tokens_burn_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tokens_burn_once_across_connections, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
