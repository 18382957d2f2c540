/* SPDX-License-Identifier: Apache-2.0 */
/* floe-uploader's configuration: defaults, every section, and errors naming file and line. */
#include <errno.h>
#include <ftw.h>
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

#include "floe-alloc.h"
#include "upl-settings.h"

static char dir[64], tls[600];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st, (void)flag, (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        static const char *const names[] = {"ca.pem", "svc.pem", "svc.key"};

        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/test-uploader-settings-XXXXXX");
        assert_non_null(mkdtemp(dir));
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char p[128];
                FILE *f;

                snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
                f = fopen(p, "we");
                assert_non_null(f);
                fputs("x\n", f);
                fclose(f);
        }
        snprintf(tls, sizeof(tls),
                 "[broker]\nca_file = %s/ca.pem\ncert_file = %s/svc.pem\nkey_file = %s/svc.key\n",
                 dir, dir, dir);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
        return 0;
}

/* Loads tls + text as "u.conf"; r is what upl_settings_load returns, msg the error text. */
static int load(const char *text, struct floe_config **cfg, struct upl_settings *s, char *msg,
                size_t size)
{
        struct floe_config_error err = {0};
        char all[4096];
        int r;

        snprintf(all, sizeof(all), "%s%s", tls, text);
        r = floe_config_load_string("u.conf", all, strlen(all), cfg, &err);
        if (r == 0)
                r = upl_settings_load(*cfg, s, &err);
        if (r < 0)
                floe_config_error_format(&err, msg, size);
        return r;
}

static void test_defaults(void **state)
{
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        char msg[600] = "";

        (void)state;
        assert_int_equal(load("", &cfg, &s, msg, sizeof(msg)), 0);
        assert_string_equal(s.host, "localhost");
        assert_int_equal(s.port, 8885);
        assert_string_equal(s.client_id, "floe-uploader");
        assert_string_equal(s.share_group, "floe-uploaders");
        assert_int_equal(s.session_expiry_us, 600000000);
        assert_int_equal(s.table[0].size, 64 << 20);
        assert_int_equal(s.table[1].interval_us, 10000000);
        assert_int_equal(s.max_memory, 512 << 20);
        assert_int_equal(s.max_ranges, 256);
        assert_true(s.metrics_enabled);
        assert_string_equal(s.metrics_host, "127.0.0.1");
        assert_int_equal(s.metrics_port, 9477);
        assert_string_equal(s.lake.warehouse, UPL_WAREHOUSE_DEFAULT);
        assert_string_equal(s.lake.catalog, UPL_CATALOG_DEFAULT);
        assert_string_equal(s.lake.ns, "floe");
        assert_string_equal(s.dead_letter_prefix, "_dead_letters");
        assert_int_equal(s.limits.max_compressed, 4 << 20);
        assert_true(s.maint.enabled);
        assert_int_equal(s.maint.interval_us, 600000000);
        assert_true(s.maint.compact);
        assert_int_equal(s.maint.compact_min_files, 10);
        assert_true(s.maint.compact_small_fraction == 0.75);
        assert_int_equal(s.maint.compact_target_size, 0); /* the lake's or the table's */
        assert_int_equal(s.maint.compact_min_snapshots, 10);
        assert_int_equal(s.maint.compact_step, 128 << 20);
        assert_true(s.maint.expire);
        assert_int_equal(s.maint.expire_max_age_us, UINT64_C(3600000000));
        assert_int_equal(s.maint.expire_min_snapshots, 100);
        assert_true(s.maint.orphans);
        assert_int_equal(s.maint.orphan_min_age_us, UINT64_C(3) * 86400 * 1000000);
        assert_int_equal(s.maint.orphan_interval_us, UINT64_C(86400) * 1000000);
        floe_config_free(cfg);
}

static void test_maintenance(void **state)
{
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        char msg[600] = "";

        (void)state;
        assert_int_equal(load("[maintenance]\ninterval = 30s\ncompact_min_files = 2\n"
                              "compact_small_fraction = 0.5\ncompact_target_size = 64MiB\n"
                              "compact_min_snapshots = 1\ncompact_step = 0\n"
                              "expire_max_age = 7d\nexpire_min_snapshots = 1\n"
                              "orphans = no\norphan_min_age = 1h\norphan_interval = 1min\n",
                              &cfg, &s, msg, sizeof(msg)),
                         0);
        assert_true(s.maint.enabled);
        assert_int_equal(s.maint.interval_us, 30000000);
        assert_int_equal(s.maint.compact_min_files, 2);
        assert_true(s.maint.compact_small_fraction == 0.5);
        assert_int_equal(s.maint.compact_target_size, 64 << 20);
        assert_int_equal(s.maint.compact_min_snapshots, 1);
        assert_int_equal(s.maint.compact_step, 0);
        assert_int_equal(s.maint.expire_max_age_us, UINT64_C(7) * 86400 * 1000000);
        assert_int_equal(s.maint.expire_min_snapshots, 1);
        assert_false(s.maint.orphans);
        assert_int_equal(s.maint.orphan_min_age_us, UINT64_C(3600000000));
        assert_int_equal(s.maint.orphan_interval_us, 60000000);
        floe_config_free(cfg);
        cfg = NULL;
        assert_int_equal(load("[maintenance]\nenabled = off\ncompact = false\nexpire = 0\n", &cfg,
                              &s, msg, sizeof(msg)),
                         0);
        assert_false(s.maint.enabled);
        assert_false(s.maint.compact);
        assert_false(s.maint.expire);
        floe_config_free(cfg);
}

static void test_values(void **state)
{
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        char msg[600] = "";

        (void)state;
        assert_int_equal(load("client_id = up-2\nsession_expiry = 0\n"
                              "[buffer]\nsize = 2MiB\ninterval = 0\nmax_memory = 16MiB\n"
                              "[table.aggregates]\nsize = 1MiB\ninterval = 15min\n"
                              "[table.events]\nadd_columns = site:string, zone : int ,x:long\n"
                              "[limits]\nmax_compressed = 64KiB\nmax_rows = 10\n"
                              "[metrics]\nlisten = [::1]:9100\n"
                              "[lake]\nwarehouse = s3://b/w\nnamespace = a.b\n"
                              "[ledger]\nmax_ranges = 16\n",
                              &cfg, &s, msg, sizeof(msg)),
                         0);
        assert_string_equal(s.client_id, "up-2");
        assert_int_equal(s.session_expiry_us, 0);
        assert_int_equal(s.table[0].size, 2 << 20);
        assert_int_equal(s.table[0].interval_us, 0);
        assert_int_equal(s.table[1].size, 1 << 20);
        assert_int_equal(s.table[1].interval_us, 900000000);
        assert_int_equal(s.table[0].n_add, 2 + 1);
        assert_string_equal(s.table[0].add[0].name, "site");
        assert_string_equal(s.table[0].add[0].type, "string");
        assert_string_equal(s.table[0].add[1].name, "zone");
        assert_string_equal(s.table[0].add[1].type, "int");
        assert_string_equal(s.table[0].add[2].name, "x");
        assert_string_equal(s.metrics_host, "::1");
        assert_int_equal(s.metrics_port, 9100);
        assert_string_equal(s.lake.warehouse, "s3://b/w");
        assert_string_equal(s.lake.ns, "a.b");
        assert_int_equal(s.max_ranges, 16);
        assert_int_equal(s.limits.max_compressed, 64 << 10);
        assert_int_equal(s.limits.max_rows, 10);
        floe_config_free(cfg);
}

static void test_errors(void **state)
{
        static const struct {
                const char *text, *msg;
        } cases[] = {
                {"[bogus]\nx = 1\n", "u.conf:6: unknown key [bogus] x"},
                {"port = 0\n", "u.conf:5: [broker] port: \"0\" out of range"},
                {"client_id = a/b\n", "u.conf:5: [broker] client_id: 1..64 printable"},
                {"share_group = +\n", "u.conf:5: [broker] share_group: 1..64 printable"},
                {"session_expiry = 1500ms\n", "u.conf:5: [broker] session_expiry: must be whole"},
                {"backoff_min = 2s\nbackoff_max = 1s\n", "u.conf:5: [broker] backoff_min: larger"},
                {"[buffer]\nsize = 200MiB\n", "u.conf:6: [buffer] size: "},
                {"[table.events]\ninterval = 901s\n", "u.conf:6: [table.events] interval: "},
                {"[table.events]\nadd_columns = site\n", "u.conf:6: [table.events] add_columns: "},
                {"[table.events]\nadd_columns = Site:string\n",
                 "u.conf:6: [table.events] add_columns: expected name:type"},
                {"[table.events]\nadd_columns = s:varchar\n",
                 "u.conf:6: [table.events] add_columns: s: \"varchar\" is not"},
                {"[table.events]\nadd_columns = s:string,s:long\n",
                 "u.conf:6: [table.events] add_columns: s: listed twice"},
                {"[buffer]\nmax_memory = 3MiB\nsize = 2MiB\n",
                 "u.conf:6: [buffer] max_memory: must be at least twice"},
                {"[buffer]\nretry_min = 1h\nretry_max = 1s\n", "u.conf:6: [buffer] retry_min:"},
                {"[metrics]\nlisten = 10.0.0.1:9477\n",
                 "u.conf:6: [metrics] listen: 10.0.0.1 is not a loopback address"},
                {"[metrics]\nlisten = localhost:9477\n", "u.conf:6: [metrics] listen: expected"},
                {"[metrics]\nlisten = 127.0.0.1:0\n", "u.conf:6: [metrics] listen: expected"},
                {"[ledger]\nmax_ranges = 2\n", "u.conf:6: [ledger] max_ranges: "},
                {"[limits]\nmax_rows = many\n", "u.conf:6: [limits] max_rows: "},
                {"[dead_letters]\nprefix = /x\n", "u.conf:6: [dead_letters] prefix: not a valid"},
                {"[lake]\nfsync = maybe\n", "u.conf:6: [lake] fsync: "},
                {"[s3]\npart_size = 1KiB\n", "u.conf:6: [s3] part_size: "},
                {"[maintenance]\nenabled = sometimes\n", "u.conf:6: [maintenance] enabled: "},
                {"[maintenance]\ninterval = 500ms\n",
                 "u.conf:6: [maintenance] interval: \"500ms\" out of range"},
                {"[maintenance]\n\ninterval = 2d\n",
                 "u.conf:7: [maintenance] interval: \"2d\" out of range"},
                {"[maintenance]\ncompact_min_files = 1\n",
                 "u.conf:6: [maintenance] compact_min_files: \"1\" out of range"},
                {"[maintenance]\ncompact_small_fraction = 1.5\n",
                 "u.conf:6: [maintenance] compact_small_fraction: "},
                {"[maintenance]\ncompact_small_fraction = 0\n",
                 "u.conf:6: [maintenance] compact_small_fraction: "},
                {"[maintenance]\ncompact_target_size = 100KiB\n",
                 "u.conf:6: [maintenance] compact_target_size: "},
                {"[maintenance]\ncompact_min_snapshots = 0\n",
                 "u.conf:6: [maintenance] compact_min_snapshots: "},
                {"[maintenance]\ncompact_step = 1PiB\n", "u.conf:6: [maintenance] compact_step: "},
                {"[maintenance]\nexpire_max_age = 0\n", "u.conf:6: [maintenance] expire_max_age: "},
                {"[maintenance]\nexpire_min_snapshots = 0\n",
                 "u.conf:6: [maintenance] expire_min_snapshots: "},
                {"[maintenance]\norphan_min_age = 30min\n",
                 "u.conf:6: [maintenance] orphan_min_age: \"30min\" out of range 1h.."},
                {"[maintenance]\norphan_interval = 10s\n",
                 "u.conf:6: [maintenance] orphan_interval: "},
                {"[maintenance]\norphan_age = 3d\n", "u.conf:6: unknown key [maintenance] "
                                                     "orphan_age"},
        };
        int bad = 0;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct floe_config *cfg = NULL;
                struct upl_settings s;
                char msg[600] = "";
                int r = load(cases[i].text, &cfg, &s, msg, sizeof(msg));

                floe_config_free(cfg);
                if (r >= 0 || strncmp(msg, cases[i].msg, strlen(cases[i].msg)) != 0) {
                        print_error("case %zu: %d \"%s\", wanted \"%s...\"\n", i, r, msg,
                                    cases[i].msg);
                        bad++;
                }
        }
        assert_int_equal(bad, 0);
}

/* A drop-in overrides the main file; its errors name the drop-in. */
static void test_dropin(void **state)
{
        static const char dropin[] = "# local\n[broker]\nkey_file = /nonexistent/k\n";
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        char msg[600];

        (void)state;
        assert_int_equal(floe_config_new(NULL, &cfg), 0);
        assert_int_equal(floe_config_add_string(cfg, "u.conf", tls, strlen(tls), &err), 0);
        assert_int_equal(
                floe_config_add_string(cfg, "u.conf.d/10-key.conf", dropin, strlen(dropin), &err),
                0);
        assert_int_equal(upl_settings_load(cfg, &s, &err), -ENOENT);
        floe_config_error_format(&err, msg, sizeof(msg));
        assert_string_equal(msg, "u.conf.d/10-key.conf:3: [broker] key_file: /nonexistent/k: No "
                                 "such file or directory");
        floe_config_free(cfg);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),    cmocka_unit_test(test_values),
                cmocka_unit_test(test_maintenance), cmocka_unit_test(test_errors),
                cmocka_unit_test(test_dropin),
        };

        return cmocka_run_group_tests(tests, setup, teardown);
}
