/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "board.h"
#include "floe-alloc.h"
#include "floe-config.h"

#define NOW_US INT64_C(1763676000000000)

/* Readings copied out of the callback (their strings are borrowed). */
struct got {
        size_t n;
        size_t stop_after; /* 0: never stop */
        struct {
                char sensor[BOARD_NAME_MAX];
                char metric[BOARD_NAME_MAX];
                double value;
                int64_t ts_us;
        } r[512];
};

static int collect(void *userdata, const struct agent_reading *r)
{
        struct got *g = userdata;

        assert_true(g->n < ELEMENTSOF(g->r));
        assert_true(r->sensor_len < BOARD_NAME_MAX && r->metric_len < BOARD_NAME_MAX);
        assert_false(r->value_null);
        assert_null(r->text);
        memcpy(g->r[g->n].sensor, r->sensor, r->sensor_len);
        g->r[g->n].sensor[r->sensor_len] = '\0';
        memcpy(g->r[g->n].metric, r->metric, r->metric_len);
        g->r[g->n].metric[r->metric_len] = '\0';
        g->r[g->n].value = r->value;
        g->r[g->n].ts_us = r->ts_us;
        g->n++;
        if (g->stop_after && g->n == g->stop_after)
                return -ENOSPC;
        return 0;
}

static const char *fmt_err(const struct floe_config_error *err)
{
        static char buf[600];

        return floe_config_error_format(err, buf, sizeof(buf));
}

static struct floe_config *conf(const char *text)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;

        if (floe_config_load_string("t.conf", text, strlen(text), &cfg, &err) < 0)
                fail_msg("config: %s", fmt_err(&err));
        return cfg;
}

/* Opens board name with the config text; fails the test on error. */
static void *open_ok(const char *name, const char *text)
{
        const struct board_ops *b = board_find(name);
        struct floe_config_error err = {0};
        struct floe_config *cfg = conf(text);
        char section[64];
        void *st = NULL;
        int r;

        assert_non_null(b);
        assert_int_equal(board_section(b, section, sizeof(section)), 0);
        r = b->open(cfg, section, &st, &err);
        if (r < 0)
                fail_msg("open %s: %d %s", name, r, fmt_err(&err));
        floe_config_free(cfg);
        return st;
}

/* Expects open to fail with r and an error message starting with msg. */
static void open_fails(const char *name, const char *text, int r, const char *msg)
{
        const struct board_ops *b = board_find(name);
        struct floe_config_error err = {0};
        struct floe_config *cfg = conf(text);
        char section[64];
        void *st = NULL;

        assert_int_equal(board_section(b, section, sizeof(section)), 0);
        assert_int_equal(b->open(cfg, section, &st, &err), r);
        assert_null(st);
        if (strncmp(fmt_err(&err), msg, strlen(msg)) != 0)
                fail_msg("error \"%s\", expected \"%s...\"", fmt_err(&err), msg);
        floe_config_free(cfg);
}

static void expect_near(double got, double want)
{
        if (!(fabs(got - want) <= 1e-9 * fmax(1.0, fabs(want))))
                fail_msg("value %.17g, expected %.17g", got, want);
}

static const char *fixture(const char *name)
{
        static char buf[PATH_MAX];
        const char *env = getenv("FLOE_FIXTURES");

        /* __FILE__ is tests/unit/test-board.c; tests run from the top of the tree. */
        if (env)
                snprintf(buf, sizeof(buf), "%s/sysfs/%s", env, name);
        else
                snprintf(buf, sizeof(buf), "tests/fixtures/sysfs/%s", name);
        if (access(buf, F_OK) < 0)
                fail_msg("fixture %s not found (run from the top of the tree)", buf);
        return buf;
}

/* A writable copy of a fixture tree, for tests that write (LED, watchdog) or break files. */
static char tmpdir[64];
static const char *copy_src;

static int copy_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        char dst[PATH_MAX], link[PATH_MAX], buf[4096];
        ssize_t n;
        int in, out;

        (void)ftw;
        snprintf(dst, sizeof(dst), "%s%s", tmpdir, path + strlen(copy_src));
        switch (flag) {
        case FTW_D:
                return path[strlen(copy_src)] ? mkdir(dst, st->st_mode & 0777) : 0;
        case FTW_SL:
                n = readlink(path, link, sizeof(link) - 1);
                if (n < 0)
                        return -1;
                link[n] = '\0';
                return symlink(link, dst);
        case FTW_F:
                in = open(path, O_RDONLY | O_CLOEXEC);
                out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
                assert_true(in >= 0 && out >= 0);
                while ((n = read(in, buf, sizeof(buf))) > 0)
                        assert_int_equal(write(out, buf, (size_t)n), n);
                close(in);
                close(out);
                return 0;
        default:
                return -1;
        }
}

static const char *tmp_copy(const char *name)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-board-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        copy_src = fixture(name);
        assert_int_equal(nftw(copy_src, copy_one, 16, FTW_PHYS), 0);
        return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void tmp_remove(void)
{
        if (tmpdir[0] == '\0')
                return;
        assert_int_equal(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        tmpdir[0] = '\0';
}

/* Also after a failed test, whose own tmp_remove() was skipped. */
static int teardown(void **state)
{
        (void)state;
        floe_alloc_fail_at(0);
        if (tmpdir[0] != '\0')
                nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        tmpdir[0] = '\0';
        return 0;
}

static const char *tmp_path(const char *rel)
{
        static char buf[4][PATH_MAX];
        static unsigned k;
        char *p = buf[k++ % 4];

        snprintf(p, PATH_MAX, "%s/%s", tmpdir, rel);
        return p;
}

static void tmp_write_len(const char *rel, const char *text, size_t len)
{
        int fd = open(tmp_path(rel), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

static void tmp_write(const char *rel, const char *text)
{
        tmp_write_len(rel, text, strlen(text));
}

/* Contents of a file under tmpdir; returns the length (files may hold NULs). */
static size_t tmp_read(const char *rel, char *buf, size_t size)
{
        int fd = open(tmp_path(rel), O_RDONLY | O_CLOEXEC);
        ssize_t n;

        assert_true(fd >= 0);
        n = read(fd, buf, size - 1);
        assert_true(n >= 0);
        buf[n] = '\0';
        close(fd);
        return (size_t)n;
}

static const char *tmp_text(const char *rel)
{
        static char buf[4][256];
        static unsigned k;
        char *p = buf[k++ % 4];

        tmp_read(rel, p, 256);
        return p;
}

/* "[board.<name>]\nsysfs_root = <root>\n" + extra */
static const char *root_conf(const char *name, const char *root, const char *extra)
{
        static char buf[PATH_MAX + 512];

        snprintf(buf, sizeof(buf), "[board.%s]\nsysfs_root = %s\n%s", name, root, extra);
        return buf;
}

static void test_registry(void **state)
{
        static const char *const names[] = {"sim", "linux-generic", "rpi"};
        char buf[16];
        size_t i;

        (void)state;
        for (i = 0; board_at(i); i++) {
                const struct board_ops *b = board_at(i);

                assert_true(i < ELEMENTSOF(names));
                assert_string_equal(b->name, names[i]);
                assert_ptr_equal(board_find(names[i]), b);
                assert_non_null(b->open);
                assert_non_null(b->poll);
                assert_non_null(b->opts);
                for (const struct board_opt *o = b->opts; o->key; o++)
                        assert_non_null(o->doc);
        }
        assert_int_equal(i, ELEMENTSOF(names));
        assert_null(board_find("nope"));
        assert_null(board_find(NULL));
        assert_int_equal(board_section(board_find("rpi"), buf, sizeof(buf)), 0);
        assert_string_equal(buf, "board.rpi");
        assert_int_equal(board_section(board_find("linux-generic"), buf, sizeof(buf)), -ENOBUFS);
}

static void test_helpers(void **state)
{
        char buf[16];

        (void)state;
        assert_int_equal(board_identity_check("gw-0001"), 0);
        assert_int_equal(board_identity_check("0"), 0);
        assert_int_equal(board_identity_check(""), -EINVAL);
        assert_int_equal(board_identity_check("-gw"), -EINVAL);
        assert_int_equal(board_identity_check("Gw"), -EINVAL);
        assert_int_equal(board_identity_check("gw_1"), -EINVAL);
        assert_int_equal(board_identity_check("a23456789012345678901234567890123456789012345678"
                                              "901234567890123"),
                         0);
        assert_int_equal(board_identity_check("a23456789012345678901234567890123456789012345678"
                                              "9012345678901234"),
                         -EINVAL);
        assert_int_equal(board_path_join(buf, sizeof(buf), "/", "/sys"), 0);
        assert_string_equal(buf, "/sys");
        assert_int_equal(board_path_join(buf, sizeof(buf), "/r//", "sys/x"), 0);
        assert_string_equal(buf, "/r/sys/x");
        assert_int_equal(board_path_join(buf, sizeof(buf), "/a-long-root", "sys"), -ENAMETOOLONG);
        assert_int_equal(board_name_sanitize("Package id 0", buf, sizeof(buf)), 12);
        assert_string_equal(buf, "package-id-0");
        assert_int_equal(board_name_sanitize("  +12V ", buf, sizeof(buf)), 3);
        assert_string_equal(buf, "12v");
        assert_int_equal(board_name_sanitize("x86_pkg_temp", buf, 6), 5);
        assert_string_equal(buf, "x86_p");
        assert_int_equal(board_name_sanitize("a b", buf, 3), 1); /* no trailing dash */
        assert_string_equal(buf, "a");
        assert_int_equal(board_name_sanitize("!!!", buf, sizeof(buf)), 0);
}

static void test_sim_counts_and_quantised(void **state)
{
        static const double res[] = {0.1, 0.01, 1};
        static const char *const metrics[] = {"temp", "humidity", "pressure", "voltage"};
        void *st = open_ok("sim", "[board.sim]\nsensors = 3\nmetrics = 4\n");
        struct board_stats stats;
        struct got g;

        (void)state;
        for (int p = 0; p < 50; p++) {
                g = (struct got){0};
                assert_int_equal(board_sim_ops.poll(st, NOW_US + p, collect, &g), 0);
                assert_int_equal(g.n, 12);
                for (size_t i = 0; i < g.n; i++) {
                        char sensor[32];
                        double units = g.r[i].value / res[i % 3];

                        snprintf(sensor, sizeof(sensor), "sim-%zu", i / 4);
                        assert_string_equal(g.r[i].sensor, sensor);
                        assert_string_equal(g.r[i].metric, metrics[i % 4]);
                        assert_int_equal(g.r[i].ts_us, NOW_US + p);
                        if (fabs(units - round(units)) > 1e-6)
                                fail_msg("poll %d series %zu: %.17g not a multiple of %g", p, i,
                                         g.r[i].value, res[i % 3]);
                }
        }
        assert_int_equal(board_sim_ops.stats(st, &stats), 0);
        assert_int_equal(stats.sensors, 12);
        assert_int_equal(stats.polls, 50);
        assert_int_equal(board_sim_ops.poll_interval_us(st), 1000000);
        board_sim_ops.close(st);
}

/* The walk as docs/boards.md specifies it, written out independently. */
static uint64_t mix(uint64_t z)
{
        z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
        return z ^ (z >> 31);
}

static void test_sim_predicted(void **state)
{
        static const int64_t scale[] = {10, 100, 1};
        const uint64_t golden = UINT64_C(0x9E3779B97F4A7C15), seed = 7;
        void *st = open_ok("sim", "[board.sim]\nsensors = 2\nmetrics = 5\nseed = 7\n");
        int64_t q[10];
        bool clamped = false;

        (void)state;
        for (int i = 0; i < 10; i++)
                q[i] = (20 + 10 * (i % 5)) * scale[i % 3];
        for (uint64_t p = 0; p < 2000; p++) {
                struct got g = {0};

                assert_int_equal(board_sim_ops.poll(st, NOW_US, collect, &g), 0);
                assert_int_equal(g.n, 10);
                for (int i = 0; i < 10; i++) {
                        int64_t s = scale[i % 3], centre = (20 + 10 * (i % 5)) * s;
                        uint64_t key = mix(seed + (uint64_t)(i + 1) * golden);
                        int64_t step = (int64_t)(mix(key + (p + 1) * golden) % 21) - 10;

                        q[i] += step;
                        if (q[i] < centre - 50 * s || q[i] > centre + 50 * s)
                                clamped = true;
                        q[i] = q[i] < centre - 50 * s   ? centre - 50 * s
                               : q[i] > centre + 50 * s ? centre + 50 * s
                                                        : q[i];
                        if (g.r[i].value != (double)q[i] / (double)s)
                                fail_msg("poll %" PRIu64 " series %d: %.17g, expected %.17g", p, i,
                                         g.r[i].value, (double)q[i] / (double)s);
                }
        }
        assert_true(clamped); /* the bound was exercised */
        board_sim_ops.close(st);
}

static void test_sim_deterministic(void **state)
{
        void *a = open_ok("sim", "[board.sim]\nseed = 42\n");
        void *b = open_ok("sim", "[board.sim]\nseed = 42\n");
        void *c = open_ok("sim", "[board.sim]\nseed = 43\n");
        size_t differ = 0;

        (void)state;
        for (int p = 0; p < 100; p++) {
                struct got ga = {0}, gb = {0}, gc = {0};

                assert_int_equal(board_sim_ops.poll(a, NOW_US, collect, &ga), 0);
                assert_int_equal(board_sim_ops.poll(b, NOW_US, collect, &gb), 0);
                assert_int_equal(board_sim_ops.poll(c, NOW_US, collect, &gc), 0);
                assert_int_equal(ga.n, 12); /* defaults: 4 sensors x 3 metrics */
                assert_int_equal(gb.n, ga.n);
                for (size_t i = 0; i < ga.n; i++) {
                        assert_true(ga.r[i].value == gb.r[i].value);
                        differ += ga.r[i].value != gc.r[i].value;
                }
        }
        assert_true(differ > 100);
        board_sim_ops.close(a);
        board_sim_ops.close(b);
        board_sim_ops.close(c);
}

static void test_sim_burst(void **state)
{
        void *polled = open_ok("sim", "[board.sim]\nsensors = 2\nmetrics = 3\nseed = 9\n");
        void *burst = open_ok("sim", "[board.sim]\nsensors = 2\nmetrics = 3\nseed = 9\n");
        struct got gp = {0}, gb = {0};

        (void)state;
        for (int p = 0; p < 3; p++)
                assert_int_equal(board_sim_ops.poll(polled, NOW_US, collect, &gp), 0);
        floe_alloc_fail_at(0);
        /* 15 readings in two bursts: 2.5 rounds, the second burst resumes mid-round */
        assert_int_equal(board_sim_emit_burst(burst, 10, 1000, 10, collect, &gb), 0);
        assert_int_equal(board_sim_emit_burst(burst, 5, 5000, 1, collect, &gb), 0);
        assert_int_equal(floe_alloc_count(), 0);
        assert_int_equal(gb.n, 15);
        for (size_t k = 0; k < gb.n; k++) {
                assert_string_equal(gb.r[k].sensor, gp.r[k].sensor);
                assert_string_equal(gb.r[k].metric, gp.r[k].metric);
                assert_true(gb.r[k].value == gp.r[k].value);
                assert_int_equal(gb.r[k].ts_us,
                                 k < 10 ? 1000 + 10 * (int64_t)k : 5000 + (int64_t)k - 10);
        }
        /* a callback error stops the burst and is returned */
        gb = (struct got){.stop_after = 2};
        assert_int_equal(board_sim_emit_burst(burst, 100, 0, 0, collect, &gb), -ENOSPC);
        assert_int_equal(gb.n, 2);
        board_sim_ops.close(polled);
        board_sim_ops.close(burst);
}

static void test_sim_config(void **state)
{
        char buf[PATH_MAX];
        void *st;

        (void)state;
        st = open_ok("sim", "");
        assert_int_equal(board_sim_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "sim-0001");
        assert_int_equal(board_sim_ops.identity(st, buf, 8), -ENOBUFS);
        assert_int_equal(board_sim_ops.key_location(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, BOARD_STATE_DIR_DEFAULT "/device.key");
        assert_int_equal(board_sim_led(st), BOARD_LED_OFF);
        assert_int_equal(board_sim_ops.led_set(st, BOARD_LED_ERROR), 0);
        assert_int_equal(board_sim_led(st), BOARD_LED_ERROR);
        assert_int_equal(board_sim_ops.led_set(st, _BOARD_LED_MAX), -EINVAL);
        assert_int_equal(board_sim_led(st), BOARD_LED_ERROR);
        /* no watchdog configured: no-ops */
        assert_int_equal(board_sim_ops.watchdog_open(st), 0);
        assert_int_equal(board_sim_ops.watchdog_kick(st), 0);
        board_sim_ops.watchdog_close(st, true);
        board_sim_ops.close(st);
        board_sim_ops.close(NULL);

        st = open_ok("sim", "[agent]\nstate_dir = /srv/floe/\n[board.sim]\n"
                            "identity = gw-7\ninterval = 250ms\n");
        assert_int_equal(board_sim_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "gw-7");
        assert_int_equal(board_sim_ops.poll_interval_us(st), 250000);
        assert_int_equal(board_sim_ops.key_location(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "/srv/floe/device.key");
        board_sim_ops.close(st);

        open_fails("sim", "[board.sim]\nsensors = 2\nsensorz = 3\n", -EINVAL,
                   "t.conf:3: [board.sim] sensorz: unknown key");
        open_fails("sim", "[board.sim]\nidentity = Gw_1\n", -EINVAL,
                   "t.conf:2: [board.sim] identity: expected [a-z0-9]");
        open_fails("sim", "[board.sim]\nsensors = 0\n", -ERANGE, "t.conf:2: [board.sim] sensors: ");
        open_fails("sim", "[board.sim]\nsensors = 10000\nmetrics = 64\n", -ERANGE,
                   "t.conf:2: [board.sim] sensors: sensors x metrics must be at most");
        open_fails("sim", "[board.sim]\ninterval = soon\n", -EINVAL,
                   "t.conf:2: [board.sim] interval: ");
        open_fails("sim", "[board.sim]\nkey = handle:0x81000002\n", -EINVAL,
                   "t.conf:2: [board.sim] key: TPM handles need");
        open_fails("sim", "[board.sim]\nkey = device.key\n", -EINVAL,
                   "t.conf:2: [board.sim] key: expected an absolute path");
}

static void test_sim_watchdog(void **state)
{
        char conf_text[256], buf[16];
        struct board_stats stats;
        void *st;

        (void)state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-board-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        tmp_write("wd", "");
        snprintf(conf_text, sizeof(conf_text), "[board.sim]\nwatchdog = %s\n", tmp_path("wd"));
        st = open_ok("sim", conf_text);
        assert_int_equal(board_sim_ops.watchdog_open(st), 0);
        assert_int_equal(board_sim_ops.watchdog_kick(st), 0);
        assert_int_equal(board_sim_ops.stats(st, &stats), 0);
        assert_int_equal(stats.watchdog_kicks, 1);
        board_sim_ops.watchdog_close(st, true);
        board_sim_ops.close(st);
        assert_int_equal(tmp_read("wd", buf, sizeof(buf)), 2);
        assert_memory_equal(buf, "\0V", 2);
        tmp_remove();
}

static void test_poll_stops_on_callback_error(void **state)
{
        void *st = open_ok("sim", "");
        struct got g = {.stop_after = 3};
        struct board_stats stats;

        (void)state;
        assert_int_equal(board_sim_ops.poll(st, NOW_US, collect, &g), -ENOSPC);
        assert_int_equal(g.n, 3);
        board_sim_ops.close(st);

        st = open_ok("linux-generic", root_conf("linux-generic", fixture("linux-generic"), ""));
        g = (struct got){.stop_after = 5};
        assert_int_equal(board_linux_generic_ops.poll(st, NOW_US, collect, &g), -ENOSPC);
        assert_int_equal(g.n, 5);
        assert_int_equal(board_linux_generic_ops.stats(st, &stats), 0);
        assert_int_equal(stats.read_errors, 0);
        board_linux_generic_ops.close(st);
}

static const struct expect {
        const char *sensor, *metric;
        double value;
} linux_expect[] = {
        {"coretemp", "temp.package-id-0", 45.0},
        {"coretemp", "temp.core-0", 43.5},
        {"nct6775", "current.1", 1.5},
        {"nct6775", "fan.1", 1200},
        {"nct6775", "voltage.vcore", 1.104},
        {"nct6775", "voltage.1", 3.3},
        {"nct6775", "power.ppt", 12.5},
        {"nvme", "temp.composite", 38.85},
        {"sht3x", "humidity.1", 45.2},
        {"sht3x", "temp.1", 23.456},
        {"lm75", "temp.1", 31.5},            /* an old-style driver: attributes in hwmon4/device */
        {"nvme-2", "temp.composite", 40.85}, /* hwmon10 after hwmon3: natural order */
        {"acpitz", "temp", 27.8},
        {"x86_pkg_temp", "temp", 45.0},
        {"lis3dh", "accel_x", 100 * 0.009576},
        {"lis3dh", "accel_y", -200 * 0.009576},
        {"lis3dh", "accel_z", 1024 * 0.019152}, /* per-channel scale beats the shared one */
        {"lis3dh", "temp", (1500 + 500) * 0.125},
};

static void check_linux_readings(const struct got *g, size_t skip_index)
{
        size_t k = 0;

        for (size_t i = 0; i < ELEMENTSOF(linux_expect); i++) {
                const struct expect *e = &linux_expect[i];

                if (i == skip_index)
                        continue;
                assert_true(k < g->n);
                assert_string_equal(g->r[k].sensor, e->sensor);
                assert_string_equal(g->r[k].metric, e->metric);
                assert_int_equal(g->r[k].ts_us, NOW_US);
                if (strcmp(e->sensor, "lis3dh") == 0)
                        expect_near(g->r[k].value, e->value);
                else if (g->r[k].value != e->value) /* m-units / 1000 exactly, not * 0.001 */
                        fail_msg("%s %s: %.17g, expected %.17g", e->sensor, e->metric,
                                 g->r[k].value, e->value);
                k++;
        }
        assert_int_equal(g->n, k);
}

static void test_linux_generic_fixture(void **state)
{
        void *st =
                open_ok("linux-generic", root_conf("linux-generic", fixture("linux-generic"), ""));
        struct board_stats stats;
        struct got g = {0};
        char buf[64];

        (void)state;
        assert_int_equal(board_linux_generic_ops.poll(st, NOW_US, collect, &g), 0);
        check_linux_readings(&g, SIZE_MAX);
        assert_int_equal(board_linux_generic_ops.stats(st, &stats), 0);
        assert_int_equal(stats.sensors, ELEMENTSOF(linux_expect));
        /* hwmon1/fan2_input holds "garbage", hwmon1/temp3_input is a dangling link */
        assert_int_equal(stats.skipped, 2);
        assert_int_equal(stats.read_errors, 0);
        assert_int_equal(stats.polls, 1);
        assert_int_equal(board_linux_generic_ops.poll_interval_us(st), 10000000);

        assert_int_equal(board_linux_generic_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "4c4c4544004d3510804bb4c04f584d32");
        assert_int_equal(board_linux_generic_ops.identity(st, buf, 32), -ENOBUFS);
        assert_int_equal(board_linux_generic_ops.key_location(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, BOARD_STATE_DIR_DEFAULT "/device.key");
        /* no LED and no watchdog configured: no-ops */
        assert_int_equal(board_linux_generic_ops.led_set(st, BOARD_LED_OK), 0);
        assert_int_equal(board_linux_generic_ops.watchdog_open(st), 0);
        assert_int_equal(board_linux_generic_ops.watchdog_kick(st), 0);
        board_linux_generic_ops.watchdog_close(st, true);
        board_linux_generic_ops.close(st);
}

static void test_linux_generic_config(void **state)
{
        const char *root = fixture("linux-generic");
        char buf[64];
        void *st;

        (void)state;
        st = open_ok("linux-generic", root_conf("linux-generic", root,
                                                "identity = gw-17\nkey = handle:0x81000002\n"
                                                "max_sensors = 3\ninterval = 30s\n"));
        assert_int_equal(board_linux_generic_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "gw-17");
        assert_int_equal(board_linux_generic_ops.key_location(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "handle:0x81000002");
        assert_int_equal(board_linux_generic_ops.poll_interval_us(st), 30000000);
        {
                struct board_stats stats;
                struct got g = {0};

                assert_int_equal(board_linux_generic_ops.poll(st, NOW_US, collect, &g), 0);
                assert_int_equal(g.n, 3);
                assert_int_equal(board_linux_generic_ops.stats(st, &stats), 0);
                assert_int_equal(stats.skipped, ELEMENTSOF(linux_expect) - 3 + 2);
        }
        board_linux_generic_ops.close(st);

        open_fails("linux-generic", root_conf("linux-generic", root, "key = handle:0x80000001\n"),
                   -EINVAL, "t.conf:3: [board.linux-generic] key: expected handle:0x81xxxxxx");
        open_fails("linux-generic", root_conf("linux-generic", root, "key = handle:0x810000021\n"),
                   -EINVAL, "t.conf:3: [board.linux-generic] key: expected handle:0x81xxxxxx");
        open_fails("linux-generic", root_conf("linux-generic", root, "led = capslock\n"), -ENOENT,
                   "t.conf:3: [board.linux-generic] led: ");
        open_fails("linux-generic", root_conf("linux-generic", root, "led = ../../etc\n"), -EINVAL,
                   "t.conf:3: [board.linux-generic] led: expected a name");
        open_fails("linux-generic", root_conf("linux-generic", root, "watchdog = /dev/watchdog\n"),
                   -ENOENT, "t.conf:3: [board.linux-generic] watchdog: ");
        open_fails("linux-generic", root_conf("linux-generic", root, "bogus = 1\n"), -EINVAL,
                   "t.conf:3: [board.linux-generic] bogus: unknown key");
}

static void test_linux_bad_root(void **state)
{
        char want[PATH_MAX + 128];

        (void)state;
        open_fails("linux-generic", root_conf("linux-generic", "/nonexistent-floe-root", ""),
                   -ENOENT,
                   "t.conf:2: [board.linux-generic] sysfs_root: /nonexistent-floe-root: No such "
                   "file or directory");
        /* a directory without sys/: the message names <root>/sys */
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-board-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        snprintf(want, sizeof(want), "t.conf:2: [board.rpi] sysfs_root: %s/sys: No such file",
                 tmpdir);
        open_fails("rpi", root_conf("rpi", tmpdir, ""), -ENOENT, want);
        tmp_write("sys", "not a directory");
        snprintf(want, sizeof(want), "t.conf:2: [board.rpi] sysfs_root: %s/sys: Not a directory",
                 tmpdir);
        open_fails("rpi", root_conf("rpi", tmpdir, ""), -ENOTDIR, want);
        tmp_remove();
}

static void test_linux_read_errors(void **state)
{
        const char *root = tmp_copy("linux-generic");
        const char *temp1 = "sys/class/hwmon/hwmon0/temp1_input";
        struct board_stats stats;
        struct got g = {0};
        void *st = open_ok("linux-generic", root_conf("linux-generic", root, ""));

        (void)state;
        /* a sensor that starts failing after open is skipped and counted at each poll */
        tmp_write(temp1, "oops\n");
        assert_int_equal(board_linux_generic_ops.poll(st, NOW_US, collect, &g), 0);
        check_linux_readings(&g, 0);
        assert_int_equal(board_linux_generic_ops.stats(st, &stats), 0);
        assert_int_equal(stats.read_errors, 1);
        /* and comes back with a fresh value: each poll re-reads the file */
        tmp_write(temp1, "50125\n");
        g = (struct got){0};
        assert_int_equal(board_linux_generic_ops.poll(st, NOW_US, collect, &g), 0);
        assert_int_equal(g.n, ELEMENTSOF(linux_expect));
        assert_string_equal(g.r[0].metric, "temp.package-id-0");
        assert_true(g.r[0].value == 50.125);
        assert_int_equal(board_linux_generic_ops.stats(st, &stats), 0);
        assert_int_equal(stats.read_errors, 1);
        assert_int_equal(stats.polls, 2);
        board_linux_generic_ops.close(st);

        /* a missing machine-id: no identity; a bad one: -EINVAL */
        st = open_ok("linux-generic", root_conf("linux-generic", root, ""));
        {
                char buf[64];

                tmp_write("etc/machine-id", "not an id\n");
                assert_int_equal(board_linux_generic_ops.identity(st, buf, sizeof(buf)), -EINVAL);
                assert_int_equal(unlink(tmp_path("etc/machine-id")), 0);
                assert_int_equal(board_linux_generic_ops.identity(st, buf, sizeof(buf)), -ENOENT);
        }
        board_linux_generic_ops.close(st);
        tmp_remove();
}

static void test_rpi_fixture(void **state)
{
        const char *root = tmp_copy("rpi");
        struct board_stats stats;
        struct got g = {0};
        char buf[64];
        void *st;

        (void)state;
        tmp_write("sys/class/leds/ACT/brightness", "1\n");
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "10000000abcdef01");
        assert_int_equal(board_rpi_ops.poll(st, NOW_US, collect, &g), 0);
        assert_int_equal(g.n, 2);
        assert_string_equal(g.r[0].sensor, "cpu_thermal");
        assert_string_equal(g.r[0].metric, "temp.1");
        assert_true(g.r[0].value == 48.312);
        assert_string_equal(g.r[1].sensor, "soc"); /* thermal_zone0, whatever its type */
        assert_string_equal(g.r[1].metric, "temp");
        assert_true(g.r[1].value == 48.312);
        assert_int_equal(board_rpi_ops.stats(st, &stats), 0);
        assert_int_equal(stats.skipped, 0);

        /* the ACT LED: trigger none at open, 0/1 for states */
        assert_string_equal(tmp_text("sys/class/leds/ACT/trigger"), "none");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_OFF), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/brightness"), "0");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_OK), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/brightness"), "1");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_BUSY), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/brightness"), "0");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_BUSY), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/brightness"), "1");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_ERROR), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/trigger"), "timer");
        assert_string_equal(tmp_text("sys/class/leds/ACT/delay_on"), "100");
        assert_string_equal(tmp_text("sys/class/leds/ACT/delay_off"), "100");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_OFF), 0);
        assert_string_equal(tmp_text("sys/class/leds/ACT/trigger"), "none");
        assert_string_equal(tmp_text("sys/class/leds/ACT/brightness"), "0");
        assert_int_equal(board_rpi_ops.led_set(st, (enum board_led_state)7), -EINVAL);
        board_rpi_ops.close(st);
        /* close hands the LED back to its old trigger */
        assert_string_equal(tmp_text("sys/class/leds/ACT/trigger"), "mmc0");
        tmp_remove();
}

/* In a child with its own mount namespace: the LED directory bind-mounted read-only, as a
 * unit's ProtectKernelTunables makes /sys. 0 as expected, 77 when namespaces are not allowed
 * here, else the step that went wrong. */
static int ro_led_child(const char *root)
{
        const struct board_ops *b = board_find("rpi");
        struct floe_config_error err = {0};
        struct floe_config *cfg;
        char dir[PATH_MAX], section[64];
        void *st = NULL;

        snprintf(dir, sizeof(dir), "%s/sys/class/leds/ACT", root);
        /* "none": the kernel ignores source and type here, valgrind wants strings */
        if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) < 0 ||
            mount(dir, dir, "none", MS_BIND, NULL) < 0 ||
            mount("none", dir, "none", MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                return 77;
        if (board_section(b, section, sizeof(section)) < 0)
                return 1;
        /* auto: no LED, no error */
        cfg = conf(root_conf("rpi", root, ""));
        if (b->open(cfg, section, &st, &err) < 0 || !st)
                return 2;
        if (b->led_set(st, BOARD_LED_ERROR) < 0)
                return 3;
        b->close(st);
        floe_config_free(cfg);
        /* named: refused, and the message says what the unit must allow */
        cfg = conf(root_conf("rpi", root, "led = ACT\n"));
        st = NULL;
        if (b->open(cfg, section, &st, &err) != -EROFS || st)
                return 4;
        if (!strstr(fmt_err(&err), "Read-only file system (the unit must allow writing it"))
                return 5;
        floe_config_free(cfg);
        return 0;
}

static void test_rpi_led_read_only(void **state)
{
        const char *root = tmp_copy("rpi");
        int status;
        pid_t pid;

        (void)state;
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0)
                _exit(ro_led_child(root));
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        /* the unit's sandbox cannot be copied here without mount namespaces */
        if (WEXITSTATUS(status) == 77) {
                tmp_remove();
                skip();
        }
        assert_int_equal(WEXITSTATUS(status), 0);
        /* the LED was left as it was */
        assert_string_equal(tmp_text("sys/class/leds/ACT/trigger"),
                            "none timer heartbeat default-on [mmc0]\n");
        tmp_remove();
}

static void test_rpi_watchdog(void **state)
{
        const char *root = tmp_copy("rpi");
        struct board_stats stats;
        char buf[16];
        void *st;
        int rd;

        (void)state;
        /* no /dev/watchdog under the root: the default device is optional */
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
        assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        board_rpi_ops.close(st);

        assert_int_equal(mkdir(tmp_path("dev"), 0755), 0);
        tmp_write("dev/watchdog", "");
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_int_equal(board_rpi_ops.watchdog_kick(st), -EBADF); /* not opened yet */
        assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
        for (int i = 0; i < 3; i++)
                assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        assert_int_equal(board_rpi_ops.stats(st, &stats), 0);
        assert_int_equal(stats.watchdog_kicks, 3);
        board_rpi_ops.watchdog_close(st, true);
        assert_int_equal(tmp_read("dev/watchdog", buf, sizeof(buf)), 4);
        assert_memory_equal(buf, "\0\0\0V", 4);
        /* reopened after a close; without magic close no 'V' is written */
        tmp_write("dev/watchdog", "");
        assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
        assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        board_rpi_ops.watchdog_close(st, false);
        assert_int_equal(tmp_read("dev/watchdog", buf, sizeof(buf)), 1);
        assert_memory_equal(buf, "\0", 1);
        board_rpi_ops.close(st);

        /* a FIFO with a reader, as a stand-in for the character device */
        assert_int_equal(mkfifo(tmp_path("dev/wd-fifo"), 0600), 0);
        rd = open(tmp_path("dev/wd-fifo"), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        assert_true(rd >= 0);
        st = open_ok("rpi", root_conf("rpi", root, "watchdog = /dev/wd-fifo\n"));
        assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
        assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        board_rpi_ops.close(st); /* close without watchdog_close: no magic */
        assert_int_equal(read(rd, buf, sizeof(buf)), 2);
        assert_memory_equal(buf, "\0\0", 2);
        close(rd);

        open_fails("rpi", root_conf("rpi", root, "watchdog = /dev/watchdog1\n"), -ENOENT,
                   "t.conf:3: [board.rpi] watchdog: ");
        st = open_ok("rpi", root_conf("rpi", root, "watchdog = none\n"));
        assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
        assert_int_equal(board_rpi_ops.watchdog_kick(st), 0);
        board_rpi_ops.close(st);
        assert_int_equal(tmp_read("dev/watchdog", buf, sizeof(buf)), 1); /* untouched */
        tmp_remove();
}

static void test_rpi_identity_and_leds(void **state)
{
        const char *root = tmp_copy("rpi");
        char buf[64];
        void *st;

        (void)state;
        /* /proc/device-tree first; the kernel ends the string with a NUL */
        assert_int_equal(mkdir(tmp_path("proc"), 0755), 0);
        assert_int_equal(mkdir(tmp_path("proc/device-tree"), 0755), 0);
        tmp_write_len("proc/device-tree/serial-number", "00000000DEADbeef\0", 17);
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "00000000deadbeef");
        tmp_write_len("proc/device-tree/serial-number", "0000\0beef\0", 10);
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), -EINVAL);
        tmp_write("proc/device-tree/serial-number", "serial #1\n");
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), -EINVAL);
        assert_int_equal(unlink(tmp_path("proc/device-tree/serial-number")), 0);
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "10000000abcdef01");
        assert_int_equal(unlink(tmp_path("sys/firmware/devicetree/base/serial-number")), 0);
        assert_int_equal(board_rpi_ops.identity(st, buf, sizeof(buf)), -ENOENT);
        board_rpi_ops.close(st);

        /* older kernels call the LED led0 */
        assert_int_equal(rename(tmp_path("sys/class/leds/ACT"), tmp_path("sys/class/leds/led0")),
                         0);
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_string_equal(tmp_text("sys/class/leds/led0/trigger"), "none");
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_OK), 0);
        assert_string_equal(tmp_text("sys/class/leds/led0/brightness"), "1");
        board_rpi_ops.close(st);
        open_fails("rpi", root_conf("rpi", root, "led = ACT\n"), -ENOENT,
                   "t.conf:3: [board.rpi] led: ");

        /* no LED at all: led = auto finds none, led_set does nothing */
        assert_int_equal(rename(tmp_path("sys/class/leds/led0"), tmp_path("led0")), 0);
        st = open_ok("rpi", root_conf("rpi", root, ""));
        assert_int_equal(board_rpi_ops.led_set(st, BOARD_LED_ERROR), 0);
        board_rpi_ops.close(st);
        assert_string_equal(tmp_text("led0/brightness"), "1");
        tmp_remove();
}

static void poll_no_alloc(const struct board_ops *b, void *st, size_t want)
{
        for (int i = 0; i < 20; i++) {
                struct got g = {0};

                floe_alloc_fail_at(0);
                assert_int_equal(b->poll(st, NOW_US + i, collect, &g), 0);
                assert_int_equal(floe_alloc_count(), 0);
                assert_int_equal(g.n, want);
        }
        floe_alloc_fail_at(0);
        assert_int_equal(b->led_set(st, BOARD_LED_BUSY), 0);
        assert_int_equal(b->watchdog_kick(st), 0);
        assert_int_equal(floe_alloc_count(), 0);
        b->close(st);
}

static void test_no_alloc_per_poll(void **state)
{
        const char *root;

        (void)state;
        poll_no_alloc(&board_sim_ops, open_ok("sim", "[board.sim]\nsensors = 20\n"), 60);
        poll_no_alloc(
                &board_linux_generic_ops,
                open_ok("linux-generic", root_conf("linux-generic", fixture("linux-generic"), "")),
                ELEMENTSOF(linux_expect));
        root = tmp_copy("rpi");
        assert_int_equal(mkdir(tmp_path("dev"), 0755), 0);
        tmp_write("dev/watchdog", "");
        {
                void *st = open_ok("rpi", root_conf("rpi", root, ""));

                assert_int_equal(board_rpi_ops.watchdog_open(st), 0);
                poll_no_alloc(&board_rpi_ops, st, 2);
        }
        tmp_remove();
}

/* Every allocation of open failing in turn: -ENOMEM, nothing leaked (ASan, valgrind). */
static void test_open_alloc_failures(void **state)
{
        const char *names[] = {"sim", "linux-generic"};

        (void)state;
        for (size_t b = 0; b < ELEMENTSOF(names); b++) {
                const struct board_ops *ops = board_find(names[b]);
                struct floe_config *cfg = conf(root_conf(names[b], fixture("linux-generic"), ""));
                char section[64];
                bool done = false;

                if (b == 0) {
                        floe_config_free(cfg);
                        cfg = conf("[board.sim]\nsensors = 5\n");
                }
                assert_int_equal(board_section(ops, section, sizeof(section)), 0);
                for (uint64_t n = 1; !done && n < 1000; n++) {
                        struct floe_config_error err = {0};
                        void *st = NULL;
                        int r;

                        floe_alloc_fail_at(n);
                        r = ops->open(cfg, section, &st, &err);
                        if (r == 0) {
                                done = !floe_alloc_failed();
                                ops->close(st);
                                continue;
                        }
                        assert_int_equal(r, -ENOMEM);
                        assert_null(st);
                }
                floe_alloc_fail_at(0);
                assert_true(done);
                floe_config_free(cfg);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_registry, teardown),
                cmocka_unit_test_teardown(test_helpers, teardown),
                cmocka_unit_test_teardown(test_sim_counts_and_quantised, teardown),
                cmocka_unit_test_teardown(test_sim_predicted, teardown),
                cmocka_unit_test_teardown(test_sim_deterministic, teardown),
                cmocka_unit_test_teardown(test_sim_burst, teardown),
                cmocka_unit_test_teardown(test_sim_config, teardown),
                cmocka_unit_test_teardown(test_sim_watchdog, teardown),
                cmocka_unit_test_teardown(test_poll_stops_on_callback_error, teardown),
                cmocka_unit_test_teardown(test_linux_generic_fixture, teardown),
                cmocka_unit_test_teardown(test_linux_generic_config, teardown),
                cmocka_unit_test_teardown(test_linux_bad_root, teardown),
                cmocka_unit_test_teardown(test_linux_read_errors, teardown),
                cmocka_unit_test_teardown(test_rpi_fixture, teardown),
                cmocka_unit_test_teardown(test_rpi_led_read_only, teardown),
                cmocka_unit_test_teardown(test_rpi_watchdog, teardown),
                cmocka_unit_test_teardown(test_rpi_identity_and_leds, teardown),
                cmocka_unit_test_teardown(test_no_alloc_per_poll, teardown),
                cmocka_unit_test_teardown(test_open_alloc_failures, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
