/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The uploader's ledger: the committed-seq set of a stream (seqset.c) against a plain bitmap
 * model, its text form, and the ledger (ledger.c) on a real SQLite catalog: commits, conflicts
 * found inside the transaction, two uploaders sharing the database, the bound, a corrupt row,
 * and every allocation failing in turn.
 */
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <malloc.h>
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

#include "catalog.h"
#include "floe-alloc.h"
#include "ledger.h"
#include "seqset.h"

/* -- seqset ------------------------------------------------------------------------------- */

static char *fmt(const struct upl_seqset *s)
{
        static char buf[4096];
        char *t = NULL;

        assert_int_equal(upl_seqset_format(s, &t), 0);
        snprintf(buf, sizeof(buf), "%" PRIu64 "|%s", s->hwm, t);
        floe_free(t);
        return buf;
}

static void test_seqset_order(void **state)
{
        struct upl_seqset s = {0};

        (void)state;
        assert_int_equal(upl_seqset_add(&s, 1), 0);
        assert_int_equal(upl_seqset_add(&s, 2), 0);
        assert_string_equal(fmt(&s), "2|");
        /* committing 7 does not make 6 look committed */
        assert_int_equal(upl_seqset_add(&s, 7), 0);
        assert_true(upl_seqset_has(&s, 7));
        assert_false(upl_seqset_has(&s, 6));
        assert_false(upl_seqset_has(&s, 3));
        assert_false(upl_seqset_has(&s, 8));
        assert_string_equal(fmt(&s), "2|7");
        assert_int_equal(upl_seqset_add(&s, 5), 0);
        assert_string_equal(fmt(&s), "2|5,7");
        assert_int_equal(upl_seqset_add(&s, 6), 0);
        assert_string_equal(fmt(&s), "2|5-7");
        assert_int_equal(upl_seqset_add(&s, 4), 0);
        assert_string_equal(fmt(&s), "2|4-7");
        assert_int_equal(upl_seqset_add(&s, 3), 0);
        assert_string_equal(fmt(&s), "7|");
        assert_int_equal(upl_seqset_add(&s, 3), 0); /* again: nothing changes */
        assert_string_equal(fmt(&s), "7|");
        assert_int_equal(upl_seqset_add(&s, 0), -EINVAL);
        assert_int_equal(upl_seqset_add(&s, UPL_SEQ_MAX + 1), -EINVAL);
        assert_false(upl_seqset_has(&s, 0));
        assert_int_equal(upl_seqset_add(&s, UPL_SEQ_MAX), 0);
        assert_true(upl_seqset_has(&s, UPL_SEQ_MAX));
        upl_seqset_clear(&s);
}

/* Random adds against a bitmap, with the text form parsed back after each one. */
static void test_seqset_model(void **state)
{
        enum { N = 300 };
        bool model[N + 2] = {false};
        struct upl_seqset s = {0}, back = {0};
        uint64_t x = 88172645463325252ULL;

        (void)state;
        for (int round = 0; round < 3000; round++) {
                uint64_t seq;
                char *text = NULL;

                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                seq = 1 + x % N;
                assert_int_equal(upl_seqset_add(&s, seq), 0);
                model[seq] = true;
                for (uint64_t q = 1; q <= N; q++)
                        assert_int_equal(upl_seqset_has(&s, q), model[q]);
                /* the mark is exactly the contiguous prefix */
                for (uint64_t q = 1; q <= N + 1; q++)
                        if (!model[q]) {
                                assert_int_equal(s.hwm, q - 1);
                                break;
                        }
                assert_int_equal(upl_seqset_format(&s, &text), 0);
                assert_int_equal(upl_seqset_parse(&back, s.hwm, text, 1000), 0);
                assert_int_equal(back.n, s.n);
                for (uint32_t i = 0; i < s.n; i++) {
                        assert_int_equal(back.r[i].lo, s.r[i].lo);
                        assert_int_equal(back.r[i].hi, s.r[i].hi);
                        assert_true(s.r[i].lo > (i ? s.r[i - 1].hi + 1 : s.hwm + 1));
                }
                floe_free(text);
                if (s.hwm == N)
                        break;
        }
        upl_seqset_clear(&s);
        upl_seqset_clear(&back);
}

static void test_seqset_parse(void **state)
{
        static const char *const bad[] = {
                "-",
                "1-",
                "-1",
                "01",
                "3-2",
                "2",
                "1,5",
                "5,6",
                "5-7,6",
                "5,",
                ",5",
                " 5",
                "5 ",
                "5--6",
                "5-6-7",
                "x",
                "5;7",
                "18446744073709551616",
                "9223372036854775808",
                "4-9223372036854775808",
                "5,5",
                "5-5",
                "7,5",
        };
        struct upl_seqset s = {0};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                if (upl_seqset_parse(&s, 2, bad[i], 100) != -EBADMSG)
                        fail_msg("\"%s\" parsed", bad[i]);
        }
        assert_int_equal(upl_seqset_parse(&s, 2, "", 100), 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(upl_seqset_parse(&s, 2, "4,6-8,10", 100), 0);
        assert_string_equal(fmt(&s), "2|4,6-8,10");
        assert_int_equal(upl_seqset_parse(&s, 2, "4,6-8,10", 2), -EBADMSG); /* the bound */
        assert_string_equal(fmt(&s), "2|4,6-8,10");                         /* kept */
        assert_int_equal(upl_seqset_parse(&s, UPL_SEQ_MAX + 1, "", 100), -EBADMSG);
        assert_int_equal(upl_seqset_parse(&s, 0, "9223372036854775807", 100), 0);
        upl_seqset_clear(&s);
}

static void test_seqset_trim(void **state)
{
        struct upl_seqset s = {0};

        (void)state;
        for (uint64_t q = 10; q <= 50; q += 10)
                assert_int_equal(upl_seqset_add(&s, q), 0);
        assert_string_equal(fmt(&s), "0|10,20,30,40,50");
        assert_int_equal(upl_seqset_trim(&s, 5), 0);
        /* two gaps given up: 1-9 and 11-19 */
        assert_int_equal(upl_seqset_trim(&s, 3), 18);
        assert_string_equal(fmt(&s), "20|30,40,50");
        assert_true(upl_seqset_has(&s, 15));
        assert_false(upl_seqset_has(&s, 25));
        upl_seqset_clear(&s);
}

/* -- the ledger on SQLite ------------------------------------------------------------------- */

struct fx {
        char dir[64];
        char loc[128];
        struct lake_catalog *c;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        snprintf(f->dir, sizeof(f->dir), "/tmp/test-uploader-ledger-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->loc, sizeof(f->loc), "%s/catalog.db", f->dir);
        assert_int_equal(lake_catalog_open(f->loc, "floe", &f->c), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        lake_catalog_close(f->c);
        nftw(f->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        free(f);
        return 0;
}

/* The row of a stream, "hwm|above", through SQLite itself. */
static const char *row(struct fx *f, const char *identity, int64_t epoch)
{
        static char buf[512];
        sqlite3_stmt *st;
        sqlite3 *db;

        buf[0] = '\0';
        assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT hwm, above FROM floe_ledger WHERE "
                                            "catalog_name = 'floe' AND identity = ? AND epoch = ?",
                                            -1, &st, NULL),
                         SQLITE_OK);
        sqlite3_bind_text(st, 1, identity, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, epoch);
        if (sqlite3_step(st) == SQLITE_ROW)
                snprintf(buf, sizeof(buf), "%lld|%s", (long long)sqlite3_column_int64(st, 0),
                         (const char *)sqlite3_column_text(st, 1));
        sqlite3_finalize(st);
        sqlite3_close(db);
        return buf;
}

static void raw(struct fx *f, const char *sql)
{
        sqlite3 *db;

        assert_int_equal(sqlite3_open(f->loc, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
}

/* Commits claims (identity, epoch, seq) in one transaction; ret_conflicts gets a bitmask. */
static int commit(struct upl_ledger *l, struct fx *f, const char *identity, uint64_t epoch,
                  const uint64_t *seqs, size_t n, unsigned *ret_conflicts, uint64_t *ret_lost)
{
        struct upl_claim claims[16], *ptrs[16];
        struct upl_ledger_commit c;
        unsigned mask = 0;
        int r;

        assert_true(n <= 16);
        for (size_t i = 0; i < n; i++) {
                claims[i] = (struct upl_claim){identity, epoch, seqs[i], false, (void *)i};
                ptrs[i] = &claims[i];
        }
        r = upl_ledger_commit_init(&c, l, ptrs, n, 1000);
        if (r < 0)
                return r;
        r = lake_catalog_run(f->c, upl_ledger_txn, &c);
        upl_ledger_commit_finish(&c, r == 0, 1);
        for (size_t i = 0; i < n; i++)
                if (claims[i].conflict)
                        mask |= 1u << (uintptr_t)claims[i].tag;
        if (ret_conflicts)
                *ret_conflicts = mask;
        if (ret_lost)
                *ret_lost = c.written_off;
        upl_ledger_commit_clear(&c);
        return r;
}

static bool committed(struct upl_ledger *l, struct lake_catalog *c, const char *id, uint64_t epoch,
                      uint64_t seq)
{
        bool yes = false;

        assert_int_equal(upl_ledger_check(l, c, id, epoch, seq, 1, &yes), 0);
        return yes;
}

static void test_ledger_commits(void **state)
{
        struct fx *f = *state;
        struct upl_ledger *l = NULL;
        const uint64_t big = UINT64_MAX - 5; /* an epoch beyond INT64_MAX: stored as its bits */
        unsigned conflicts = 0;

        assert_int_equal(upl_ledger_new("floe", 256, 3600000000ULL, &l), 0);
        assert_int_equal(upl_ledger_setup(l, f->c), 0);
        assert_int_equal(upl_ledger_setup(l, f->c), 0); /* idempotent */
        assert_false(committed(l, f->c, "acme.gw-1", big, 1));
        assert_int_equal(commit(l, f, "acme.gw-1", big, (uint64_t[]){1, 2, 3}, 3, &conflicts, NULL),
                         0);
        assert_int_equal(conflicts, 0);
        assert_string_equal(row(f, "acme.gw-1", (int64_t)big), "3|");
        /* out of order: 7 does not make 6 committed */
        assert_int_equal(commit(l, f, "acme.gw-1", big, (uint64_t[]){7}, 1, NULL, NULL), 0);
        assert_string_equal(row(f, "acme.gw-1", (int64_t)big), "3|7");
        assert_false(committed(l, f->c, "acme.gw-1", big, 6));
        assert_true(committed(l, f->c, "acme.gw-1", big, 7));
        assert_true(committed(l, f->c, "acme.gw-1", big, 2));
        /* a claim already committed: the whole transaction rolls back, only it is flagged */
        assert_int_equal(commit(l, f, "acme.gw-1", big, (uint64_t[]){5, 7, 6}, 3, &conflicts, NULL),
                         -EALREADY);
        assert_int_equal(conflicts, 2);
        assert_string_equal(row(f, "acme.gw-1", (int64_t)big), "3|7");
        assert_int_equal(commit(l, f, "acme.gw-1", big, (uint64_t[]){5, 6}, 2, &conflicts, NULL),
                         0);
        assert_string_equal(row(f, "acme.gw-1", (int64_t)big), "3|5-7");
        assert_int_equal(commit(l, f, "acme.gw-1", big, (uint64_t[]){4}, 1, NULL, NULL), 0);
        assert_string_equal(row(f, "acme.gw-1", (int64_t)big), "7|");
        /* streams are apart: another epoch, another identity */
        assert_false(committed(l, f->c, "acme.gw-1", 9, 1));
        assert_false(committed(l, f->c, "acme.gw-2", big, 1));
        assert_int_equal(commit(l, f, "acme.gw-2", big, (uint64_t[]){1}, 1, NULL, NULL), 0);
        assert_string_equal(row(f, "acme.gw-2", (int64_t)big), "1|");
        assert_string_equal(row(f, "acme.gw-1", 9), "");
        upl_ledger_free(l);
}

/* Two uploaders on one database: the second's cache knows nothing of the first's commit, its
 * transaction does. */
static void test_ledger_two_uploaders(void **state)
{
        struct fx *f = *state;
        struct upl_ledger *a = NULL, *b = NULL;
        struct lake_catalog *c2 = NULL;
        unsigned conflicts = 0;

        assert_int_equal(lake_catalog_open(f->loc, "floe", &c2), 0);
        assert_int_equal(upl_ledger_new("floe", 256, 3600000000ULL, &a), 0);
        assert_int_equal(upl_ledger_new("floe", 256, 3600000000ULL, &b), 0);
        assert_int_equal(upl_ledger_setup(a, f->c), 0);
        assert_int_equal(upl_ledger_setup(b, c2), 0);
        assert_false(committed(b, c2, "acme.gw-1", 5, 1)); /* b caches "nothing" */
        assert_int_equal(commit(a, f, "acme.gw-1", 5, (uint64_t[]){1, 2}, 2, NULL, NULL), 0);
        assert_false(committed(b, c2, "acme.gw-1", 5, 1)); /* stale, and says so safely */
        assert_true(committed(a, f->c, "acme.gw-1", 5, 1));
        {
                struct fx g = *f;

                g.c = c2;
                assert_int_equal(
                        commit(b, &g, "acme.gw-1", 5, (uint64_t[]){2, 3}, 2, &conflicts, NULL),
                        -EALREADY);
                assert_int_equal(conflicts, 1);
                /* what the transaction read is learnt */
                assert_true(committed(b, c2, "acme.gw-1", 5, 2));
                assert_false(committed(b, c2, "acme.gw-1", 5, 3));
                assert_int_equal(
                        commit(b, &g, "acme.gw-1", 5, (uint64_t[]){3}, 1, &conflicts, NULL), 0);
        }
        assert_string_equal(row(f, "acme.gw-1", 5), "3|");
        upl_ledger_free(a);
        upl_ledger_free(b);
        lake_catalog_close(c2);
}

static void test_ledger_bound_and_corruption(void **state)
{
        struct fx *f = *state;
        struct upl_ledger *l = NULL;
        uint64_t lost = 0;

        assert_int_equal(upl_ledger_new("floe", 4, 3600000000ULL, &l), 0);
        assert_int_equal(upl_ledger_setup(l, f->c), 0);
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){10, 20, 30, 40}, 4, NULL, &lost),
                         0);
        assert_int_equal(lost, 0);
        assert_string_equal(row(f, "acme.gw-1", 1), "0|10,20,30,40");
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){50}, 1, NULL, &lost), 0);
        assert_int_equal(lost, 9); /* 1..9 given up */
        assert_string_equal(row(f, "acme.gw-1", 1), "10|20,30,40,50");
        /* a row that does not parse stops the commit: never read as "nothing committed" */
        raw(f, "UPDATE floe_ledger SET above = '30,20' WHERE identity = 'acme.gw-1'");
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){60}, 1, NULL, NULL), -EBADMSG);
        raw(f, "UPDATE floe_ledger SET hwm = -4, above = '' WHERE identity = 'acme.gw-1'");
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){60}, 1, NULL, NULL), -EBADMSG);
        upl_ledger_free(l);
}

#define S 1000000ULL

/* What the allocator holds for a block of n bytes, as upl_ledger_memory() counts it. */
static size_t chunk(size_t n)
{
        void *p = malloc(n);
        size_t c;

        assert_non_null(p);
        c = malloc_usable_size(p) + sizeof(size_t);
        free(p);
        return c;
}

static void test_ledger_cache(void **state)
{
        struct fx *f = *state;
        struct upl_ledger *l = NULL;
        bool yes = true;
        size_t base, entry;

        assert_int_equal(upl_ledger_new("floe", 256, 10 * S, &l), 0);
        /* not set up: only the cache answers, and knows nothing */
        assert_int_equal(upl_ledger_check(l, f->c, "acme.gw-1", 1, 1, 0, &yes), 0);
        assert_false(yes);
        assert_int_equal(upl_ledger_setup(l, f->c), 0);
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){1}, 1, NULL, NULL), 0);
        assert_int_equal(upl_ledger_cached(l), 1);
        /* the cache alone (no catalog) knows the commit */
        assert_int_equal(upl_ledger_check(l, NULL, "acme.gw-1", 1, 1, 5 * S + 300000, &yes), 0);
        assert_true(yes);
        assert_int_equal(upl_ledger_expire(l, 14 * S + 999999), 1);
        assert_int_equal(upl_ledger_expire(l, 15 * S), 0);
        base = upl_ledger_memory(l); /* the slot table alone */
        assert_true(base >= 1024 * sizeof(void *));
        assert_int_equal(upl_ledger_check(l, NULL, "acme.gw-1", 1, 1, 20 * S, &yes), 0);
        assert_false(yes);
        /* read again from the database */
        assert_int_equal(upl_ledger_check(l, f->c, "acme.gw-1", 1, 1, 20 * S, &yes), 0);
        assert_true(yes);
        /* one stream without ranges: the slot table and one block of 44 bytes + identity (glibc
         * may hand out up to 31 bytes more rather than split a free chunk) */
        entry = chunk(44 + strlen("acme.gw-1") + 1);
        assert_in_range(upl_ledger_memory(l) - base, entry, entry + 31);
        /* with ranges, their block too */
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){5}, 1, NULL, NULL), 0);
        assert_true(upl_ledger_memory(l) - base >= entry + chunk(4 * 16));
        /* filled again up to hwm: the ranges' block is given back */
        assert_int_equal(commit(l, f, "acme.gw-1", 1, (uint64_t[]){2, 3, 4}, 3, NULL, NULL), 0);
        assert_in_range(upl_ledger_memory(l) - base, entry, entry + 31);
        /* many streams: the table grows */
        for (int i = 0; i < 3000; i++) {
                char id[32];

                snprintf(id, sizeof(id), "acme.gw-%d", i);
                assert_int_equal(upl_ledger_check(l, f->c, id, 2, 1, 30, &yes), 0);
                assert_false(yes);
        }
        assert_int_equal(upl_ledger_cached(l), 3001);
        upl_ledger_free(l);
}

/* Every allocation of a commit failing in turn: an error, never a wrong answer or a leak. */
static void test_ledger_alloc_failures(void **state)
{
        struct fx *f = *state;
        struct upl_ledger *l = NULL;
        int ok = 0;

        assert_int_equal(upl_ledger_new("floe", 256, 3600000000ULL, &l), 0);
        assert_int_equal(upl_ledger_setup(l, f->c), 0);
        for (uint64_t n = 1; n < 200 && ok < 3; n++) {
                uint64_t seq = 100 + n;
                int r;

                floe_alloc_fail_at(n);
                r = commit(l, f, "acme.gw-9", 3, (uint64_t[]){seq, seq + 1000}, 2, NULL, NULL);
                floe_alloc_fail_at(0);
                assert_true(r == 0 || r == -ENOMEM || r == -EIO);
                if (r == 0) {
                        ok++;
                        assert_true(committed(l, f->c, "acme.gw-9", 3, seq));
                } else {
                        struct upl_ledger *fresh = NULL;

                        assert_int_equal(upl_ledger_new("floe", 256, 1, &fresh), 0);
                        assert_int_equal(upl_ledger_setup(fresh, f->c), 0);
                        assert_false(committed(fresh, f->c, "acme.gw-9", 3, seq));
                        upl_ledger_free(fresh);
                }
        }
        assert_true(ok > 0);
        upl_ledger_free(l);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_seqset_order),
                cmocka_unit_test(test_seqset_model),
                cmocka_unit_test(test_seqset_parse),
                cmocka_unit_test(test_seqset_trim),
                cmocka_unit_test_setup_teardown(test_ledger_commits, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ledger_two_uploaders, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ledger_bound_and_corruption, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ledger_cache, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ledger_alloc_failures, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
