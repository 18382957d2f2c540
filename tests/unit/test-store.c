/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object store (store.h) on file:// in a temp directory: round trips, create-if-absent
 * (also raced by forked processes), ranges, listing order and prefixes, streaming writers,
 * locations, key rules, and every allocation failing in turn. S3 is tests/system/test_store.py
 * against Ceph RGW; the S3 backend's pure parts are test-store-s3.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "store.h"

struct fx {
        char dir[64];
        char url[128];
        struct lake_store *s;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));

        assert_non_null(f);
        snprintf(f->dir, sizeof(f->dir), "/tmp/floe-test-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->url, sizeof(f->url), "file://%s/warehouse/", f->dir);
        assert_int_equal(lake_store_open(f->url, NULL, &f->s), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        assert_null(lake_store_close(f->s));
        assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

static void fill(uint8_t *p, size_t n, unsigned seed)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)((i * 131 + seed * 7 + (i >> 9)) & 0xff);
}

static void path_of(const struct fx *f, const char *key, char *buf, size_t size)
{
        snprintf(buf, size, "%s/warehouse/%s", f->dir, key);
}

/* Names in dir (not . and ..), as "name," in readdir order: for "nothing left behind". */
static int count_entries(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d)))
                n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
        closedir(d);
        return n;
}

static void test_round_trips(void **state)
{
        static const size_t sizes[] = {0, 1, 65535, 65536, 65537, 1000003};
        struct fx *f = *state;
        uint8_t *data = malloc(1000003), *got;
        char key[64], path[256];
        size_t len;
        uint64_t size;
        struct stat st;

        assert_non_null(data);
        for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
                fill(data, sizes[i], (unsigned)i);
                snprintf(key, sizeof(key), "t/data/tenant=a b+c/%zu.bin", sizes[i]);
                assert_int_equal(lake_store_put(f->s, key, data, sizes[i], LAKE_PUT_REPLACE), 0);
                assert_int_equal(lake_store_get(f->s, key, sizes[i], &got, &len), 0);
                assert_int_equal(len, sizes[i]);
                assert_memory_equal(got, data, len);
                assert_int_equal(got[len], 0); /* NUL-terminated for convenience */
                floe_free(got);
                assert_int_equal(lake_store_size(f->s, key, &size), 0);
                assert_int_equal(size, sizes[i]);
                if (sizes[i] > 0) {
                        assert_int_equal(lake_store_get(f->s, key, sizes[i] - 1, &got, &len),
                                         -EFBIG);
                        assert_non_null(strstr(lake_store_error(f->s), key));
                }
        }
        /* the directories were made, files readable by other users (query engines) */
        path_of(f, "t/data/tenant=a b+c/1.bin", path, sizeof(path));
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644); /* umask 022 (main) */
        /* replacing */
        assert_int_equal(
                lake_store_put(f->s, "t/data/tenant=a b+c/1.bin", "xy", 2, LAKE_PUT_REPLACE), 0);
        assert_int_equal(lake_store_get(f->s, "t/data/tenant=a b+c/1.bin", 10, &got, &len), 0);
        assert_int_equal(len, 2);
        assert_memory_equal(got, "xy", 2);
        floe_free(got);
        /* missing keys */
        assert_int_equal(lake_store_get(f->s, "t/nope", 10, &got, &len), -ENOENT);
        assert_non_null(strstr(lake_store_error(f->s), "GET t/nope"));
        assert_int_equal(lake_store_size(f->s, "t/nope", &size), -ENOENT);
        assert_int_equal(lake_store_size(f->s, "t/data", &size), -ENOENT); /* a directory */
        assert_int_equal(lake_store_get(f->s, "t/data/tenant=a b+c/1.bin/x", 10, &got, &len),
                         -ENOENT);
        /* delete: gone, and deleting again is fine */
        assert_int_equal(lake_store_delete(f->s, "t/data/tenant=a b+c/1.bin"), 0);
        assert_int_equal(lake_store_size(f->s, "t/data/tenant=a b+c/1.bin", &size), -ENOENT);
        assert_int_equal(lake_store_delete(f->s, "t/data/tenant=a b+c/1.bin"), 0);
        assert_int_equal(lake_store_delete(f->s, "never/was"), 0);
        /* no temp files left next to the objects */
        path_of(f, "t/data/tenant=a b+c", path, sizeof(path));
        assert_int_equal(count_entries(path), (int)ELEMENTSOF(sizes) - 1);
        free(data);
}

static void test_put_if_absent(void **state)
{
        struct fx *f = *state;
        uint8_t *got;
        size_t len;
        char path[256];

        assert_int_equal(
                lake_store_put(f->s, "t/metadata/v1.metadata.json", "one", 3, LAKE_PUT_IF_ABSENT),
                0);
        assert_int_equal(
                lake_store_put(f->s, "t/metadata/v1.metadata.json", "two", 3, LAKE_PUT_IF_ABSENT),
                -EEXIST);
        assert_non_null(strstr(lake_store_error(f->s), "t/metadata/v1.metadata.json"));
        assert_int_equal(lake_store_get(f->s, "t/metadata/v1.metadata.json", 10, &got, &len), 0);
        assert_int_equal(len, 3);
        assert_memory_equal(got, "one", 3);
        floe_free(got);
        path_of(f, "t/metadata", path, sizeof(path));
        assert_int_equal(count_entries(path), 1); /* the loser's temp file is gone */
        assert_int_equal(
                lake_store_put(f->s, "t/metadata/v1.metadata.json", "three", 5, LAKE_PUT_REPLACE),
                0);
}

/* Processes racing for one key: exactly one wins, and its bytes are what is there. */
static void test_put_if_absent_race(void **state)
{
        enum { N = 8, ROUNDS = 20 };
        struct fx *f = *state;

        for (int round = 0; round < ROUNDS; round++) {
                char key[64], body[64];
                pid_t pids[N];
                int winners = 0, winner = -1;
                uint8_t *got;
                size_t len;

                snprintf(key, sizeof(key), "race/metadata/v%d.metadata.json", round);
                for (int i = 0; i < N; i++) {
                        pids[i] = fork();
                        assert_true(pids[i] >= 0);
                        if (pids[i] == 0) {
                                struct lake_store *s;
                                int r;

                                snprintf(body, sizeof(body), "writer %d of round %d", i, round);
                                f->s = lake_store_close(f->s); /* the parent's, inherited */
                                if (lake_store_open(f->url, NULL, &s) < 0)
                                        _exit(3);
                                r = lake_store_put(s, key, body, strlen(body), LAKE_PUT_IF_ABSENT);
                                lake_store_close(s);
                                _exit(r == 0 ? 0 : r == -EEXIST ? 1 : 2);
                        }
                }
                for (int i = 0; i < N; i++) {
                        int st;

                        assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
                        assert_true(WIFEXITED(st));
                        assert_in_range(WEXITSTATUS(st), 0, 1);
                        if (WEXITSTATUS(st) == 0) {
                                winners++;
                                winner = i;
                        }
                }
                assert_int_equal(winners, 1);
                snprintf(body, sizeof(body), "writer %d of round %d", winner, round);
                assert_int_equal(lake_store_get(f->s, key, 100, &got, &len), 0);
                assert_int_equal(len, strlen(body));
                assert_memory_equal(got, body, len);
                floe_free(got);
        }
}

static void test_ranges(void **state)
{
        struct fx *f = *state;
        uint8_t data[1000], buf[1000];
        size_t got = 99;

        fill(data, sizeof(data), 3);
        assert_int_equal(lake_store_put(f->s, "r/x", data, sizeof(data), LAKE_PUT_REPLACE), 0);
        assert_int_equal(lake_store_get_range(f->s, "r/x", 10, 20, buf, &got), 0);
        assert_int_equal(got, 20);
        assert_memory_equal(buf, data + 10, 20);
        /* the footer: short at the end */
        assert_int_equal(lake_store_get_range(f->s, "r/x", 990, 100, buf, &got), 0);
        assert_int_equal(got, 10);
        assert_memory_equal(buf, data + 990, 10);
        assert_int_equal(lake_store_get_range(f->s, "r/x", 1000, 10, buf, &got), 0);
        assert_int_equal(got, 0);
        assert_int_equal(lake_store_get_range(f->s, "r/x", UINT64_MAX - 5, 10, buf, &got), -EINVAL);
        assert_int_equal(lake_store_get_range(f->s, "r/x", 5, 0, buf, &got), 0);
        assert_int_equal(got, 0);
        assert_int_equal(lake_store_get_range(f->s, "r/nope", 0, 0, buf, &got), -ENOENT);
        assert_int_equal(lake_store_get_range(f->s, "r/nope", 0, 10, buf, &got), -ENOENT);
}

struct listing {
        char keys[64][64];
        uint64_t sizes[64];
        int n, stop_at;
};

static int collect(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        struct listing *l = ud;

        assert_true(mtime_ms > 1500000000000LL);
        assert_true(l->n < 64);
        snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
        l->sizes[l->n] = size;
        return ++l->n == l->stop_at ? -ECANCELED : 0;
}

static int strcmp_p(const void *a, const void *b)
{
        return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_list(void **state)
{
        static const char *keys[] = {
                "a/x",   "a.b", "a-b",   "a/b/c", "ab",      "\xc3\xa9t\xc3\xa9", "a/b.c",
                "a/b/d", "A",   "a/b-c", "a0",    "b/a=1/z", "b/a=10/y",          "b/a=1+/w",
        };
        const char *sorted[ELEMENTSOF(keys)];
        struct fx *f = *state;
        struct listing l = {.n = 0};
        char path[256];

        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                assert_int_equal(
                        lake_store_put(f->s, keys[i], keys[i], strlen(keys[i]), LAKE_PUT_REPLACE),
                        0);
                sorted[i] = keys[i];
        }
        /* leftovers of a crashed writer and symlinks are not objects */
        path_of(f, "a/.floe-tmp-0123456789abcdef", path, sizeof(path));
        close(open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
        path_of(f, "a/link", path, sizeof(path));
        assert_int_equal(symlink("x", path), 0);
        qsort(sorted, ELEMENTSOF(sorted), sizeof(sorted[0]), strcmp_p);

        assert_int_equal(lake_store_list(f->s, "", collect, &l), 0);
        assert_int_equal(l.n, (int)ELEMENTSOF(keys));
        for (int i = 0; i < l.n; i++) {
                assert_string_equal(l.keys[i], sorted[i]);
                assert_int_equal(l.sizes[i], strlen(sorted[i]));
        }
        /* a directory prefix */
        l = (struct listing){.n = 0};
        assert_int_equal(lake_store_list(f->s, "a/b/", collect, &l), 0);
        assert_int_equal(l.n, 2);
        assert_string_equal(l.keys[0], "a/b/c");
        assert_string_equal(l.keys[1], "a/b/d");
        /* a prefix that ends inside a name, as S3 has it */
        l = (struct listing){.n = 0};
        assert_int_equal(lake_store_list(f->s, "b/a=1", collect, &l), 0);
        assert_int_equal(l.n, 3);
        assert_string_equal(l.keys[0], "b/a=1+/w");
        assert_string_equal(l.keys[1], "b/a=1/z");
        assert_string_equal(l.keys[2], "b/a=10/y");
        l = (struct listing){.n = 0};
        assert_int_equal(lake_store_list(f->s, "a", collect, &l), 0);
        assert_int_equal(l.n, 9);
        assert_string_equal(l.keys[0], "a-b");
        assert_string_equal(l.keys[8], "ab");
        /* nothing there */
        l = (struct listing){.n = 0};
        assert_int_equal(lake_store_list(f->s, "zz/", collect, &l), 0);
        assert_int_equal(lake_store_list(f->s, "a.b/", collect, &l), 0); /* a file, not a dir */
        assert_int_equal(l.n, 0);
        /* the callback stops it */
        l = (struct listing){.stop_at = 3};
        assert_int_equal(lake_store_list(f->s, NULL, collect, &l), -ECANCELED);
        assert_int_equal(l.n, 3);
        /* bad prefixes */
        assert_int_equal(lake_store_list(f->s, "/a", collect, &l), -EINVAL);
        assert_int_equal(lake_store_list(f->s, "a//", collect, &l), -EINVAL);
        assert_int_equal(lake_store_list(f->s, "../", collect, &l), -EINVAL);
        assert_int_equal(lake_store_list(f->s, "a", NULL, &l), -EINVAL);
}

static void test_writer(void **state)
{
        struct fx *f = *state;
        struct lake_store_writer *w;
        uint8_t *data = malloc(300000), *got;
        char path[256];
        uint64_t size = 0;
        size_t len, off = 0;

        assert_non_null(data);
        fill(data, 300000, 9);
        assert_int_equal(lake_store_writer_open(f->s, "w/data/f.parquet", &w), 0);
        /* pieces below, at and above the writer's buffer */
        for (size_t piece = 1; off < 300000; piece = piece * 3 + 7) {
                size_t n = 300000 - off < piece ? 300000 - off : piece;

                assert_int_equal(lake_store_writer_write(w, data + off, n), 0);
                off += n;
                /* nothing visible before the commit */
                assert_int_equal(lake_store_size(f->s, "w/data/f.parquet", &size), -ENOENT);
        }
        assert_int_equal(lake_store_writer_write(w, data, 0), 0);
        assert_int_equal(lake_store_writer_commit(w, &size), 0);
        assert_int_equal(size, 300000);
        assert_int_equal(lake_store_writer_commit(w, &size), -EALREADY);
        assert_int_equal(lake_store_writer_write(w, data, 1), -EALREADY);
        assert_null(lake_store_writer_free(w));
        assert_int_equal(lake_store_get(f->s, "w/data/f.parquet", 300000, &got, &len), 0);
        assert_int_equal(len, 300000);
        assert_memory_equal(got, data, len);
        floe_free(got);

        /* abandoned: nothing left behind */
        assert_int_equal(lake_store_writer_open(f->s, "w/data/g.parquet", &w), 0);
        assert_int_equal(lake_store_writer_write(w, data, 100000), 0);
        assert_null(lake_store_writer_free(w));
        assert_int_equal(lake_store_size(f->s, "w/data/g.parquet", &size), -ENOENT);
        path_of(f, "w/data", path, sizeof(path));
        assert_int_equal(count_entries(path), 1);
        /* empty */
        assert_int_equal(lake_store_writer_open(f->s, "w/empty", &w), 0);
        assert_int_equal(lake_store_writer_commit(w, NULL), 0);
        lake_store_writer_free(w);
        assert_int_equal(lake_store_size(f->s, "w/empty", &size), 0);
        assert_int_equal(size, 0);
        assert_null(lake_store_writer_free(NULL));
        assert_int_equal(lake_store_writer_open(f->s, "w/", &w), -EINVAL);
        free(data);
}

static void test_locations_and_keys(void **state)
{
        static const char *const bad[] = {"",      "/a", "a/",   "a//b", "a/../b",
                                          "a/./b", "..", "a\nb", "\xff", "a/.floe-tmp-x"};
        struct fx *f = *state;
        char buf[512], want[512];
        uint8_t *got;
        size_t len;
        uint64_t size;
        struct lake_store *s;

        assert_int_equal(lake_store_location(f->s, "t/metadata/v1.metadata.json", buf, sizeof(buf)),
                         0);
        snprintf(want, sizeof(want), "file://%s/warehouse/t/metadata/v1.metadata.json", f->dir);
        assert_string_equal(buf, want);
        assert_int_equal(lake_store_key(f->s, want, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "t/metadata/v1.metadata.json");
        /* Hadoop's file:/path and a bare path name the same file */
        snprintf(want, sizeof(want), "file:%s/warehouse/t/x", f->dir);
        assert_int_equal(lake_store_key(f->s, want, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "t/x");
        snprintf(want, sizeof(want), "%s/warehouse/t/y", f->dir);
        assert_int_equal(lake_store_key(f->s, want, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "t/y");
        snprintf(want, sizeof(want), "file://%s/warehouse2/t/x", f->dir);
        assert_int_equal(lake_store_key(f->s, want, buf, sizeof(buf)), -EXDEV);
        snprintf(want, sizeof(want), "file://%s/warehouse/t/../x", f->dir);
        assert_int_equal(lake_store_key(f->s, want, buf, sizeof(buf)), -EXDEV);
        assert_int_equal(lake_store_key(f->s, "s3://b/warehouse/x", buf, sizeof(buf)), -EXDEV);
        assert_int_equal(lake_store_location(f->s, "t/x", buf, 8), -ENAMETOOLONG);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(lake_store_put(f->s, bad[i], "x", 1, LAKE_PUT_REPLACE), -EINVAL);
                assert_int_equal(lake_store_get(f->s, bad[i], 10, &got, &len), -EINVAL);
                assert_int_equal(lake_store_size(f->s, bad[i], &size), -EINVAL);
                assert_int_equal(lake_store_delete(f->s, bad[i]), -EINVAL);
                assert_int_equal(lake_store_location(f->s, bad[i], buf, sizeof(buf)), -EINVAL);
        }
        assert_int_equal(lake_store_put(f->s, "k", NULL, 1, LAKE_PUT_REPLACE), -EINVAL);
        assert_int_equal(lake_store_put(f->s, "k", "x", 1, (enum lake_put_mode)7), -EINVAL);
        /* URLs */
        assert_int_equal(lake_store_open("file://relative/dir", NULL, &s), -EINVAL);
        assert_int_equal(lake_store_open("file:///a/../b", NULL, &s), -EINVAL);
        assert_int_equal(lake_store_open("http://x", NULL, &s), -EPROTONOSUPPORT);
        assert_int_equal(lake_store_open("file:///proc/version/x", NULL, &s), -ENOTDIR);
        /* a bare absolute path, its missing directories made */
        snprintf(want, sizeof(want), "%s/other/deep/root", f->dir);
        assert_int_equal(lake_store_open(want, NULL, &s), 0);
        assert_int_equal(lake_store_put(s, "k", "v", 1, LAKE_PUT_IF_ABSENT), 0);
        lake_store_close(s);
        assert_null(lake_store_close(NULL));
        assert_string_equal(lake_store_error(NULL), "");
}

/* Every allocation of a round of operations failing in turn: -ENOMEM or success, no leaks
 * (ASan, valgrind) and no half-written objects. */
static void test_allocation_failures(void **state)
{
        struct fx *f = *state;
        struct listing l;
        uint8_t *got;
        size_t len;
        uint64_t size;
        bool done = false;

        assert_int_equal(lake_store_put(f->s, "m/a", "a", 1, LAKE_PUT_REPLACE), 0);
        assert_int_equal(lake_store_put(f->s, "m/b/c", "bc", 2, LAKE_PUT_REPLACE), 0);
        for (uint64_t n = 1; !done && n < 1000; n++) {
                struct lake_store *s = NULL;
                struct lake_store_writer *w = NULL;
                int r;

                floe_alloc_fail_at(n);
                r = lake_store_open(f->url, NULL, &s);
                if (r >= 0) {
                        l = (struct listing){.n = 0};
                        r = lake_store_list(s, "m/", collect, &l);
                        if (r >= 0)
                                assert_int_equal(l.n, 2);
                }
                if (r >= 0) {
                        r = lake_store_get(s, "m/b/c", 10, &got, &len);
                        if (r >= 0)
                                floe_free(got);
                }
                if (r >= 0)
                        r = lake_store_writer_open(s, "m/w", &w);
                if (r >= 0)
                        r = lake_store_writer_write(w, "www", 3);
                if (r >= 0)
                        r = lake_store_writer_commit(w, NULL);
                lake_store_writer_free(w);
                lake_store_close(s);
                done = !floe_alloc_failed();
                floe_alloc_fail_at(0);
                if (!done)
                        assert_int_equal(r, -ENOMEM);
                else
                        assert_int_equal(r, 0);
                lake_store_delete(f->s, "m/w");
        }
        assert_true(done);
        assert_int_equal(lake_store_size(f->s, "m/w", &size), -ENOENT);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trips, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put_if_absent, setup, teardown),
                cmocka_unit_test_setup_teardown(test_put_if_absent_race, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ranges, setup, teardown),
                cmocka_unit_test_setup_teardown(test_list, setup, teardown),
                cmocka_unit_test_setup_teardown(test_writer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_locations_and_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
        };

        umask(022);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
