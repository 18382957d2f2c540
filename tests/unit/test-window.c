/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "ring.h"
#include "window.h"

#define S  1000000LL
#define T0 1763676000000000LL /* 2025-11-20T22:00:00Z, a boundary of 1 min and 1 h */
#define L  (60 * S)

struct row {
        char sensor[256];
        char metric[256];
        struct floe_agg_row r;
};

struct sink {
        struct row rows[8192];
        size_t n;
        size_t fail_at; /* 1-based call that fails with -ENOSPC; 0 never */
        size_t calls;
};

static int collect(void *ud, const char *sensor, size_t slen, const char *metric, size_t mlen,
                   const struct floe_agg_row *row)
{
        struct sink *k = ud;
        struct row *o;

        if (++k->calls == k->fail_at)
                return -ENOSPC;
        assert_true(k->n < ELEMENTSOF(k->rows));
        o = &k->rows[k->n++];
        snprintf(o->sensor, sizeof(o->sensor), "%.*s", (int)slen, sensor);
        snprintf(o->metric, sizeof(o->metric), "%.*s", (int)mlen, metric);
        o->r = *row;
        return 0;
}

static struct agent_window_opts opts(void)
{
        struct agent_window_opts o;

        agent_window_opts_default(&o);
        o.floor_us = T0 - 86400 * S;
        o.max_series = 64;
        o.max_windows = 256;
        o.name_bytes = 4096;
        return o;
}

static struct agent_window *new_window(const struct agent_window_opts *o)
{
        struct agent_window *w = NULL;

        assert_int_equal(agent_window_new(o, &w), 0);
        return w;
}

static struct agent_reading rd(const char *sensor, const char *metric, int64_t ts, double v)
{
        return (struct agent_reading){.sensor = sensor,
                                      .sensor_len = strlen(sensor),
                                      .metric = metric,
                                      .metric_len = strlen(metric),
                                      .ts_us = ts,
                                      .value = v};
}

static int add(struct agent_window *w, const char *s, const char *m, int64_t ts, double v,
               int64_t arrival)
{
        struct agent_reading r = rd(s, m, ts, v);

        return agent_window_add(w, &r, 0, (uint64_t)ts, arrival);
}

static int add_null(struct agent_window *w, const char *s, const char *m, int64_t ts,
                    int64_t arrival)
{
        struct agent_reading r = rd(s, m, ts, 0);

        r.value_null = true;
        return agent_window_add(w, &r, 0, 0, arrival);
}

static void assert_row(const struct row *o, const char *s, const char *m, int64_t start,
                       uint64_t count, double sum, double min, double max, double first,
                       double last)
{
        assert_string_equal(o->sensor, s);
        assert_string_equal(o->metric, m);
        assert_int_equal(o->r.window_start_us, start);
        assert_int_equal(o->r.count, count);
        for (int i = 0; i < FLOE_AGG_NCOLS; i++)
                assert_false(o->r.null[i]);
        assert_true(o->r.v[FLOE_AGG_SUM] == sum);
        assert_true(o->r.v[FLOE_AGG_MIN] == min);
        assert_true(o->r.v[FLOE_AGG_MAX] == max);
        assert_true(o->r.v[FLOE_AGG_FIRST] == first);
        assert_true(o->r.v[FLOE_AGG_LAST] == last);
}

static void test_alignment(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w;
        static struct sink k;

        (void)state;
        w = new_window(&o);
        assert_int_equal(add(w, "s", "m", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + L - 1, 2, T0 + L - 1), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + L, 4, T0 + L), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 - 1, 8, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(agent_window_close_due(w, T0 + 2 * L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 3);
        assert_row(&k.rows[0], "s", "m", T0 - L, 1, 8, 8, 8, 8, 8);
        assert_row(&k.rows[1], "s", "m", T0, 2, 3, 1, 2, 1, 2);
        assert_row(&k.rows[2], "s", "m", T0 + L, 1, 4, 4, 4, 4, 4);
        for (int i = 0; i < 3; i++)
                assert_int_equal(k.rows[i].r.window_s, 60);
        assert_int_equal(agent_window_watermark(w), T0 + 2 * L);
        agent_window_free(w);

        /* hour windows; and times before 1970 round down, not toward zero */
        o.window_us = 3600 * S;
        o.floor_us = INT64_MIN;
        w = new_window(&o);
        k.n = 0;
        assert_int_equal(add(w, "s", "m", T0 + 1234 * S, 1, T0 + 1234 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", -1, 1, 0), AGENT_WINDOW_ADDED);
        assert_int_equal(agent_window_close_due(w, T0 + 7200 * S, collect, &k), 0);
        assert_int_equal(k.n, 2);
        assert_int_equal(k.rows[0].r.window_start_us, -3600 * S);
        assert_int_equal(k.rows[1].r.window_start_us, T0);
        assert_int_equal(k.rows[1].r.window_s, 3600);
        agent_window_free(w);
}

/* Out-of-order events inside the grace; first/last ties go by arrival. */
static void test_aggregates(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        static struct sink k;
        int64_t end = T0 + L;

        (void)state;
        assert_int_equal(add(w, "s", "m", T0 + 30 * S, 2.5, end + 1 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 10 * S, -1.25, end + 2 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 10 * S, 7, end + 3 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 59 * S, 0.5, end + 3 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 59 * S, 3, end + 4 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 40 * S, -4, end + 4 * S), AGENT_WINDOW_ADDED);
        /* nothing due before end + grace */
        assert_int_equal(agent_window_close_due(w, end + 5 * S - 1, collect, &k), 0);
        assert_int_equal(k.n, 0);
        assert_int_equal(agent_window_close_due(w, end + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 1);
        /* first: ts +10 s, the earlier arrival (-1.25); last: ts +59 s, the later (3) */
        assert_row(&k.rows[0], "s", "m", T0, 6, 7.75, -4, 7, -1.25, 3);
        agent_window_free(w);
}

static void test_sum_precision(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        static struct sink k;

        (void)state;
        for (int i = 0; i < 10; i++)
                add(w, "s", "tenth", T0 + i * S, 0.1, T0 + i * S);
        add(w, "s", "huge", T0, 1e308, T0);
        add(w, "s", "huge", T0 + 1, 1e308, T0 + 1);
        add(w, "s", "cancel", T0, 1e100, T0);
        add(w, "s", "cancel", T0 + 1, 1, T0 + 1);
        add(w, "s", "cancel", T0 + 2, -1e100, T0 + 2);
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 3);
        assert_string_equal(k.rows[0].metric, "cancel");
        assert_true(k.rows[0].r.v[FLOE_AGG_SUM] == 1); /* compensated */
        assert_string_equal(k.rows[1].metric, "huge");
        assert_true(k.rows[1].r.null[FLOE_AGG_SUM]); /* past the double range */
        assert_false(k.rows[1].r.null[FLOE_AGG_MAX]);
        assert_true(k.rows[1].r.v[FLOE_AGG_MAX] == 1e308);
        assert_int_equal(k.rows[1].r.count, 2);
        assert_string_equal(k.rows[2].metric, "tenth");
        assert_true(k.rows[2].r.v[FLOE_AGG_SUM] == 1.0);
        agent_window_free(w);
}

static void test_nulls(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        struct agent_window_stats st;
        static struct sink k;

        (void)state;
        assert_int_equal(add_null(w, "a", "m", T0 + 1, T0 + 1), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "a", "m", T0 + 2, 5, T0 + 2), AGENT_WINDOW_ADDED);
        assert_int_equal(add_null(w, "a", "m", T0 + 3, T0 + 3), AGENT_WINDOW_ADDED);
        assert_int_equal(add_null(w, "b", "m", T0 + 1, T0 + 1), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "c", "m", T0 + 1, NAN, T0 + 1), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "c", "m", T0 + 2, -INFINITY, T0 + 2), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "c", "m", T0 + 3, 1, T0 + 3), AGENT_WINDOW_ADDED);
        agent_window_stats(w, &st);
        assert_int_equal(st.nonfinite, 2);
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 3);
        /* a null neither counts nor becomes first/last */
        assert_row(&k.rows[0], "a", "m", T0, 1, 5, 5, 5, 5, 5);
        /* only nulls: the window is there, count 0, every aggregate null */
        assert_string_equal(k.rows[1].sensor, "b");
        assert_int_equal(k.rows[1].r.count, 0);
        for (int i = 0; i < FLOE_AGG_NCOLS; i++)
                assert_true(k.rows[1].r.null[i]);
        assert_row(&k.rows[2], "c", "m", T0, 1, 1, 1, 1, 1, 1);
        agent_window_free(w);
}

static void test_late(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        struct agent_window_stats st;
        static struct sink k;
        int64_t end = T0 + L;

        (void)state;
        assert_int_equal(add(w, "s", "m", T0, 1, end + 5 * S - 1), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0, 100, end + 5 * S), AGENT_WINDOW_LATE);
        assert_int_equal(add(w, "s", "m", T0 - L, 100, end), AGENT_WINDOW_LATE);
        assert_int_equal(agent_window_close_due(w, end + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 1);
        assert_row(&k.rows[0], "s", "m", T0, 1, 1, 1, 1, 1, 1);
        /* closed: late even if the arrival clock went back */
        assert_int_equal(add(w, "s", "m", T0 + 1, 100, T0 + 2), AGENT_WINDOW_LATE);
        agent_window_stats(w, &st);
        assert_int_equal(st.late, 3);
        assert_int_equal(st.added, 1);
        assert_int_equal(st.open_windows, 0);
        agent_window_free(w);
}

static void test_implausible(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        struct agent_reading r = rd("s", "m", T0, 1);
        struct agent_window_stats st;
        struct timespec now;
        int64_t fl = agent_window_build_floor_us();

        (void)state;
        assert_int_equal(add(w, "s", "m", o.floor_us - 1, 1, T0), AGENT_WINDOW_IMPLAUSIBLE);
        assert_int_equal(add(w, "s", "m", o.floor_us, 1, T0), AGENT_WINDOW_LATE);
        assert_int_equal(add(w, "s", "m", T0 + 600 * S + 1, 1, T0), AGENT_WINDOW_IMPLAUSIBLE);
        assert_int_equal(add(w, "s", "m", T0 + 600 * S, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", INT64_MAX, 1, INT64_MAX), AGENT_WINDOW_IMPLAUSIBLE);
        /* the ring's flag is honoured */
        assert_int_equal(agent_window_add(w, &r, AGENT_RING_F_TS_IMPLAUSIBLE, 0, T0),
                         AGENT_WINDOW_IMPLAUSIBLE);
        assert_true(agent_window_ts_plausible(w, T0, T0));
        assert_false(agent_window_ts_plausible(w, AGENT_TS_NONE, T0));
        agent_window_stats(w, &st);
        assert_int_equal(st.implausible, 4);
        assert_int_equal(st.added, 1);
        r.ts_us = AGENT_TS_NONE;
        assert_int_equal(agent_window_add(w, &r, 0, 0, T0), -EINVAL);
        r = rd("", "m", T0, 1);
        assert_int_equal(agent_window_add(w, &r, 0, 0, T0), -EINVAL);
        agent_window_free(w);

        /* the build date: a midnight, not after today, not long ago */
        clock_gettime(CLOCK_REALTIME, &now);
        assert_int_equal(fl % (86400 * S), 0);
        assert_true(fl <= (int64_t)now.tv_sec * S);
        assert_true(fl > 1704067200 * S); /* 2024-01-01 */
        agent_window_opts_default(&o);
        assert_int_equal(o.floor_us, fl);
}

static void test_series_full(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w;
        struct agent_window_stats st;
        static struct sink k;

        (void)state;
        o.max_series = 2;
        w = new_window(&o);
        assert_int_equal(add(w, "a", "m", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "b", "m", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "c", "m", T0, 1, T0), AGENT_WINDOW_DROPPED);
        assert_int_equal(add(w, "a", "m", T0 + 1, 2, T0 + 1), AGENT_WINDOW_ADDED);
        agent_window_stats(w, &st);
        assert_int_equal(st.dropped_series, 1);
        assert_int_equal(st.series, 2);
        /* once their windows closed, idle series make room */
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S, collect, &k), 0);
        assert_int_equal(add(w, "c", "m", T0 + L + 6 * S, 1, T0 + L + 6 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "b", "m", T0 + L + 6 * S, 1, T0 + L + 6 * S), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "a", "m", T0 + L + 6 * S, 1, T0 + L + 6 * S), AGENT_WINDOW_DROPPED);
        agent_window_stats(w, &st);
        assert_int_equal(st.compactions, 1);
        assert_int_equal(st.series, 2);
        k.n = 0;
        assert_int_equal(agent_window_close_due(w, T0 + 2 * L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 2);
        assert_string_equal(k.rows[0].sensor, "b");
        assert_string_equal(k.rows[1].sensor, "c");
        agent_window_free(w);

        /* the name arena full */
        o = opts();
        o.name_bytes = 10;
        w = new_window(&o);
        assert_int_equal(add(w, "abcd", "efgh", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "ab", "c", T0, 1, T0), AGENT_WINDOW_DROPPED);
        assert_int_equal(add(w, "ab", "", T0, 1, T0), -EINVAL);
        assert_int_equal(add(w, "a", "b", T0, 1, T0), AGENT_WINDOW_ADDED);
        agent_window_stats(w, &st);
        assert_int_equal(st.dropped_series, 1);
        agent_window_free(w);
}

static void test_windows_full(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window_stats st;
        struct agent_window *w;

        (void)state;
        o.max_windows = 3;
        w = new_window(&o);
        assert_int_equal(add(w, "a", "m", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "a", "m", T0 + L, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "b", "m", T0, 1, T0), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "b", "m", T0 + L, 1, T0), AGENT_WINDOW_DROPPED);
        assert_int_equal(add(w, "b", "m", T0 + 1, 1, T0), AGENT_WINDOW_ADDED);
        agent_window_stats(w, &st);
        assert_int_equal(st.dropped_windows, 1);
        assert_int_equal(st.open_windows, 3);
        agent_window_free(w);

        /* window starts: no grace, no future, nobody closing */
        o = opts();
        o.grace_us = 0;
        o.max_future_us = 0;
        w = new_window(&o);
        for (int i = 0; i < 4; i++)
                assert_int_equal(add(w, "a", "m", T0 + i * L, 1, T0 + i * L), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "a", "m", T0 + 4 * L, 1, T0 + 4 * L), AGENT_WINDOW_DROPPED);
        agent_window_stats(w, &st);
        assert_int_equal(st.dropped_windows, 1);
        agent_window_free(w);
}

static void test_close_order(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        static struct sink k;
        static const char *const names[][2] = {{"b", "z"},        {"a", "y"}, {"ab", "a"},
                                               {"a", "b"},        {"a", "z"}, {"aa", "a"},
                                               {"a\xc3\xa9", "a"}};

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                add(w, names[i][0], names[i][1], T0 + L + (int64_t)i, 1, T0 + L);
                add(w, names[i][0], names[i][1], T0 + (int64_t)i, 1, T0 + L);
        }
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S - 1, collect, &k), 0);
        assert_int_equal(k.n, 0);
        assert_int_equal(agent_window_watermark(w), T0);
        assert_int_equal(agent_window_close_due(w, T0 + 2 * L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 14);
        for (size_t i = 0; i < 14; i++) {
                static const char *const want[][2] = {{"a", "b"},  {"a", "y"},  {"a", "z"},
                                                      {"aa", "a"}, {"ab", "a"}, {"a\xc3\xa9", "a"},
                                                      {"b", "z"}};

                assert_int_equal(k.rows[i].r.window_start_us, i < 7 ? T0 : T0 + L);
                assert_string_equal(k.rows[i].sensor, want[i % 7][0]);
                assert_string_equal(k.rows[i].metric, want[i % 7][1]);
        }
        assert_int_equal(agent_window_watermark(w), T0 + 2 * L);
        /* the watermark moves with time even without windows */
        assert_int_equal(agent_window_close_due(w, T0 + 10 * L + 7 * S, collect, &k), 0);
        assert_int_equal(k.n, 14);
        assert_int_equal(agent_window_watermark(w), T0 + 10 * L);
        assert_int_equal(agent_window_close_due(w, T0, collect, &k), 0);
        assert_int_equal(agent_window_watermark(w), T0 + 10 * L);
        agent_window_free(w);
}

static void test_emit_error(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        struct agent_window_stats st;
        static struct sink k;
        uint64_t pos;
        char s[2] = "a";

        (void)state;
        for (int i = 0; i < 5; i++) {
                struct agent_reading r;

                s[0] = (char)('e' - i); /* added in reverse order */
                r = rd(s, "m", T0 + i, i);
                assert_int_equal(agent_window_add(w, &r, 0, 100 + (uint64_t)i, T0), 0);
        }
        add(w, "z", "m", T0 + L, 1, T0);
        k.fail_at = 3;
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S, collect, &k), -ENOSPC);
        assert_int_equal(k.n, 2);
        assert_string_equal(k.rows[0].sensor, "a");
        assert_string_equal(k.rows[1].sensor, "b");
        /* not all of the window is out: the watermark stays before it */
        assert_true(agent_window_watermark(w) < T0 + L);
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, 100); /* "c".."e" are at 102, 101, 100 */
        assert_int_equal(agent_window_close_due(w, T0 + L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 5);
        assert_string_equal(k.rows[2].sensor, "c");
        assert_string_equal(k.rows[3].sensor, "d");
        assert_string_equal(k.rows[4].sensor, "e");
        assert_int_equal(agent_window_watermark(w), T0 + L);
        agent_window_stats(w, &st);
        assert_int_equal(st.emitted, 5);
        assert_int_equal(st.open_windows, 1);
        agent_window_free(w);
}

static void test_flush_all(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        int64_t now = T0 + L + 2 * S; /* the previous window still in its grace */
        static struct sink k;
        uint64_t pos;

        (void)state;
        assert_int_equal(agent_window_oldest_pos(w, &pos), -ENOENT);
        assert_int_equal(add(w, "s", "m", T0 + 5 * S, 1, now), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + L + 1 * S, 2, now), AGENT_WINDOW_ADDED);
        assert_int_equal(add(w, "s", "m", T0 + 3 * L, 4, now), AGENT_WINDOW_ADDED); /* ahead */
        assert_int_equal(agent_window_flush_all(w, now, collect, &k), 0);
        assert_int_equal(k.n, 2);
        assert_row(&k.rows[0], "s", "m", T0, 1, 1, 1, 1, 1, 1);
        assert_row(&k.rows[1], "s", "m", T0 + L, 1, 2, 2, 2, 2, 2);
        assert_int_equal(agent_window_watermark(w), T0 + 2 * L);
        /* what shutdown closed early is closed: later events are late */
        assert_int_equal(add(w, "s", "m", T0 + L + 3 * S, 8, now + 1), AGENT_WINDOW_LATE);
        /* the future window stays open, and keeps its record in the ring */
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, T0 + 3 * L);
        assert_int_equal(agent_window_close_due(w, T0 + 4 * L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 3);
        assert_int_equal(k.rows[2].r.window_start_us, T0 + 3 * L);
        agent_window_free(w);
}

static void test_oldest_pos_and_set_watermark(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w = new_window(&o);
        struct agent_reading r = rd("s", "m", T0, 1);
        struct agent_window_stats st;
        static struct sink k;
        uint64_t pos;

        (void)state;
        assert_int_equal(agent_window_add(w, &r, 0, 50, T0), 0);
        r.ts_us = T0 + L;
        assert_int_equal(agent_window_add(w, &r, 0, 40, T0), 0);
        r.sensor = "t";
        r.ts_us = T0 + 2 * L;
        assert_int_equal(agent_window_add(w, &r, 0, 60, T0), 0);
        r.ts_us = T0 + 1;
        assert_int_equal(agent_window_add(w, &r, 0, 30, T0), 0);
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, 30);
        /* late and implausible events hold nothing back */
        r.ts_us = T0 - 2 * L;
        assert_int_equal(agent_window_add(w, &r, 0, 1, T0), AGENT_WINDOW_LATE);
        r.ts_us = T0 + 3600 * S;
        assert_int_equal(agent_window_add(w, &r, 0, 2, T0), AGENT_WINDOW_IMPLAUSIBLE);
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, 30);

        /* a restart's watermark discards windows already shipped */
        assert_int_equal(agent_window_set_watermark(w, T0 + L), 0);
        assert_int_equal(agent_window_watermark(w), T0 + L);
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, 40);
        agent_window_stats(w, &st);
        assert_int_equal(st.discarded, 2);
        assert_int_equal(st.open_windows, 2);
        /* never back */
        assert_int_equal(agent_window_set_watermark(w, T0), 0);
        assert_int_equal(agent_window_watermark(w), T0 + L);
        assert_int_equal(agent_window_close_due(w, T0 + 2 * L + 5 * S, collect, &k), 0);
        assert_int_equal(k.n, 1);
        assert_int_equal(agent_window_oldest_pos(w, &pos), 0);
        assert_int_equal(pos, 60);
        agent_window_free(w);
}

/* A stream with jitter, nulls and late events, replayed after "crashes". */
struct ev {
        char sensor[8];
        int64_t ts, arrival;
        double v;
        bool null;
};

#define NEV 3000

static void gen_stream(struct ev *e)
{
        uint64_t x = 88172645463325252ULL;

        for (int i = 0; i < NEV; i++) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                snprintf(e[i].sensor, sizeof(e[i].sensor), "s%u", (unsigned)(x % 23));
                e[i].arrival = T0 + i * 200000LL;                        /* 10 minutes */
                e[i].ts = e[i].arrival - (int64_t)((x >> 8) % (30 * S)); /* 0..30 s behind */
                e[i].v = (double)((x >> 20) % 1000) / 8;
                e[i].null = (x >> 40) % 17 == 0;
        }
}

/* Feeds e[from..to) with close_due every whole second of arrival time; at
 * each close the shipped state (watermark, cursor) is what a pipeline
 * would store in the ring. */
static void run(struct agent_window *w, const struct ev *e, int from, int to, struct sink *k,
                int64_t *ret_wm, int *ret_cursor)
{
        for (int i = from; i < to; i++) {
                struct agent_reading r = rd(e[i].sensor, "v", e[i].ts, e[i].v);
                uint64_t pos;

                if (i > from && e[i].arrival / S != e[i - 1].arrival / S) {
                        assert_int_equal(agent_window_close_due(w, e[i].arrival, collect, k), 0);
                        *ret_wm = agent_window_watermark(w);
                        *ret_cursor = agent_window_oldest_pos(w, &pos) == 0 ? (int)pos : i;
                }
                r.value_null = e[i].null;
                assert_true(agent_window_add(w, &r, 0, (uint64_t)i, e[i].arrival) >= 0);
        }
}

static bool same_rows(const struct row *a, const struct row *b)
{
        return !strcmp(a->sensor, b->sensor) && !strcmp(a->metric, b->metric) &&
               !memcmp(&a->r, &b->r, sizeof(a->r));
}

static void test_replay(void **state)
{
        struct agent_window_opts o = opts();
        static struct sink ref, k;
        static struct ev e[NEV];
        struct agent_window_stats st;
        struct agent_window *w;
        int64_t wm = INT64_MIN;
        int cursor = 0;

        (void)state;
        gen_stream(e);
        w = new_window(&o);
        run(w, e, 0, NEV, &ref, &wm, &cursor);
        assert_int_equal(agent_window_close_due(w, INT64_MAX, collect, &ref), 0);
        agent_window_stats(w, &st);
        assert_true(st.late > 100 && st.added > 2000);
        assert_true(ref.n > 200);
        agent_window_free(w);

        for (int crash = 1; crash < NEV; crash += 97) {
                k.n = 0;
                wm = INT64_MIN;
                cursor = 0;
                w = new_window(&o);
                run(w, e, 0, crash, &k, &wm, &cursor);
                agent_window_free(w);
                /* everything it emitted is covered by its last watermark */
                for (size_t i = 0; i < k.n; i++)
                        assert_true(k.rows[i].r.window_start_us + L <= wm);
                w = new_window(&o);
                assert_int_equal(agent_window_set_watermark(w, wm), 0);
                run(w, e, cursor, NEV, &k, &wm, &cursor);
                assert_int_equal(agent_window_close_due(w, INT64_MAX, collect, &k), 0);
                agent_window_free(w);
                /* no window twice, none missing, every value the same */
                assert_int_equal(k.n, ref.n);
                for (size_t i = 0; i < ref.n; i++)
                        assert_true(same_rows(&k.rows[i], &ref.rows[i]));
        }
}

static void test_zero_alloc(void **state)
{
        struct agent_window_opts o = opts();
        struct agent_window *w;
        static struct sink k;
        static struct ev e[NEV];
        int64_t wm;
        int cursor;
        uint64_t n;

        (void)state;
        o.max_series = 8; /* churn through compactions too */
        gen_stream(e);
        w = new_window(&o);
        floe_alloc_fail_at(0);
        n = floe_alloc_count();
        run(w, e, 0, NEV, &k, &wm, &cursor);
        assert_int_equal(agent_window_flush_all(w, INT64_MAX - L, collect, &k), 0);
        assert_int_equal(floe_alloc_count(), n);
        agent_window_free(w);
}

static void test_opts(void **state)
{
        struct agent_window_opts o = opts(), bad;
        struct agent_window *w = NULL;
        uint64_t i;
        int r;

        (void)state;
        bad = o;
        bad.window_us = 1500000;
        assert_int_equal(agent_window_new(&bad, &w), -EINVAL);
        bad.window_us = 0;
        assert_int_equal(agent_window_new(&bad, &w), -EINVAL);
        bad = o;
        bad.grace_us = -1;
        assert_int_equal(agent_window_new(&bad, &w), -EINVAL);
        bad = o;
        bad.max_series = 0;
        assert_int_equal(agent_window_new(&bad, &w), -EINVAL);
        bad = o;
        bad.max_windows = 0;
        assert_int_equal(agent_window_new(&bad, &w), -EINVAL);
        assert_null(w);
        assert_null(agent_window_free(NULL));
        /* every allocation failing in turn fails cleanly */
        for (i = 1;; i++) {
                floe_alloc_fail_at(i);
                r = agent_window_new(&o, &w);
                floe_alloc_fail_at(0);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_null(w);
        }
        assert_true(i > 5);
        agent_window_free(w);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_alignment),
                cmocka_unit_test(test_aggregates),
                cmocka_unit_test(test_sum_precision),
                cmocka_unit_test(test_nulls),
                cmocka_unit_test(test_late),
                cmocka_unit_test(test_implausible),
                cmocka_unit_test(test_series_full),
                cmocka_unit_test(test_windows_full),
                cmocka_unit_test(test_close_order),
                cmocka_unit_test(test_emit_error),
                cmocka_unit_test(test_flush_all),
                cmocka_unit_test(test_oldest_pos_and_set_watermark),
                cmocka_unit_test(test_replay),
                cmocka_unit_test(test_zero_alloc),
                cmocka_unit_test(test_opts),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
