/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-wire.h"
#include "outbox.h"
#include "pipeline.h"
#include "ring.h"
#include "window.h"

#define T0 1893456000000000LL /* 2030-01-01: plausible for any build date */

struct rig {
        char dir[64];
        char ring_path[96];
        char ob_dir[96];
        struct agent_ring *ring;
        struct agent_outbox *ob;
        struct agent_window *win;
        struct agent_pipeline *pipe;
};

static size_t rig_max_record;     /* 0: the outbox default */
static uint32_t rig_batch_events; /* 0: 1000 */
static uint32_t rig_max_series;   /* 0: the window default */
static enum agent_ship rig_ship;  /* 0: events */

static void rig_open(struct rig *g)
{
        struct agent_pipeline_opts po = {
                .identity = "acme.gw-1",
                .ship = rig_ship ? rig_ship : AGENT_SHIP_EVENTS,
                .batch_max_events = rig_batch_events ? rig_batch_events : 1000,
                .batch_max_bytes = 1 << 20,
                .batch_max_age_us = 1000000,
                .level = 1,
        };
        struct agent_outbox_opts oo;
        struct agent_window_opts wo;
        struct agent_ring_recovery rec;
        char err[256];

        agent_outbox_opts_default(&oo);
        oo.sync = AGENT_OUTBOX_SYNC_NONE;
        agent_window_opts_default(&wo);
        if (rig_max_series) {
                wo.max_series = rig_max_series;
                wo.max_windows = 2 * rig_max_series;
        }
        floe_wire_limits_default(&po.lim);
        if (rig_max_record) {
                oo.max_record = (uint32_t)rig_max_record;
                po.batch_max_bytes = rig_max_record;
                po.lim.max_compressed = (uint32_t)rig_max_record;
        }
        assert_int_equal(agent_ring_open(g->ring_path, 1 << 20, AGENT_RING_SYNC_NONE, &g->ring,
                                         &rec, err, sizeof(err)),
                         0);
        assert_int_equal(agent_outbox_open(g->ob_dir, &oo, &g->ob, err, sizeof(err)), 0);
        assert_int_equal(agent_window_new(&wo, &g->win), 0);
        assert_int_equal(agent_pipeline_new(&po, g->ring, g->win, g->ob, T0, &g->pipe), 0);
}

/* A crash: nothing is drained, closed or synced beyond what is in place. */
static void rig_crash(struct rig *g)
{
        g->pipe = agent_pipeline_free(g->pipe);
        g->win = agent_window_free(g->win);
        g->ob = agent_outbox_close(g->ob);
        g->ring = agent_ring_close(g->ring);
}

static void rig_init(struct rig *g)
{
        memset(g, 0, sizeof(*g));
        snprintf(g->dir, sizeof(g->dir), "/tmp/floe-test-pipeline-XXXXXX");
        assert_non_null(mkdtemp(g->dir));
        snprintf(g->ring_path, sizeof(g->ring_path), "%s/ring", g->dir);
        snprintf(g->ob_dir, sizeof(g->ob_dir), "%s/outbox", g->dir);
        rig_open(g);
}

static void rig_done(struct rig *g)
{
        char cmd[128];

        rig_crash(g);
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g->dir);
        assert_int_equal(system(cmd), 0);
}

#define ELEMENTS(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

static void accept_n(struct rig *g, int n, int64_t now)
{
        for (int i = 0; i < n; i++) {
                struct agent_reading r = {.sensor = "s",
                                          .sensor_len = 1,
                                          .metric = "m",
                                          .metric_len = 1,
                                          .ts_us = now + i,
                                          .value = i};

                assert_int_equal(agent_pipeline_accept(g->pipe, &r, now), 0);
        }
}

static uint64_t outbox_events(struct rig *g)
{
        struct agent_outbox_stats st;

        agent_outbox_stats(g->ob, &st);
        return st.events;
}

/* A batch is closed by age, and a clean replay after a crash with an open
 * batch ships its records once. */
static void test_open_batch_replayed_once(void **state)
{
        struct rig g;

        (void)state;
        rig_init(&g);
        accept_n(&g, 10, T0);
        rig_crash(&g); /* the open batch was only in memory */
        rig_open(&g);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 1), 0);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 2000000), 0); /* past max_age */
        assert_int_equal(outbox_events(&g), 10);
        rig_crash(&g);
        rig_open(&g);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 1), 0);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 2000000), 0);
        assert_int_equal(outbox_events(&g), 10); /* not shipped again */
        rig_done(&g);
}

/* Values noisier than the size estimate: the batch that encodes larger than an
 * outbox record is split, and every reading is shipped exactly once. */
static void test_batch_too_large_is_split(void **state)
{
        struct agent_pipeline_stats ps;
        uint64_t x = 0x9e3779b97f4a7c15ull;
        struct rig g;

        (void)state;
        rig_max_record = 4096;
        rig_init(&g);
        for (int i = 0; i < 1000; i++) {
                struct agent_reading r = {.sensor = "s",
                                          .sensor_len = 1,
                                          .metric = "m",
                                          .metric_len = 1,
                                          .ts_us = T0 + i * 1000003LL};

                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                r.value = (double)(x >> 11) / 9007199254740992.0; /* full 53-bit mantissas */
                r.ts_us += (int64_t)(x & 0xfffff);                /* and jittered times */
                assert_int_equal(agent_pipeline_accept(g.pipe, &r, T0), 0);
        }
        assert_int_equal(agent_pipeline_drain(g.pipe, T0), 0);
        agent_pipeline_stats(g.pipe, &ps);
        assert_true(ps.split_batches > 0);
        assert_int_equal(ps.encode_errors, 0);
        assert_int_equal(ps.rejected, 0);
        assert_int_equal(outbox_events(&g), 1000);
        rig_done(&g);
        rig_max_record = 0;
}

/* The crash window between the outbox append and the cursor move: the
 * hand-over record finishes the move at start, so no second batch. */
static void test_crash_after_outbox_append(void **state)
{
        struct agent_ring_pending h = {.kind = 1 /* FLOE_KIND_EVENTS */};
        struct floe_wire_encoder *enc;
        struct floe_batch *b;
        const uint8_t *data;
        size_t len;
        uint32_t s;
        struct rig g;

        (void)state;
        rig_init(&g);
        accept_n(&g, 10, T0);
        /* do by hand what batch_to_outbox does, up to the append */
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        floe_batch_set_identity(b, "acme.gw-1");
        for (int i = 0; i < 10; i++) {
                floe_batch_intern_series(b, "s", 1, "m", 1, &s);
                floe_batch_add_event(b, s, T0 + i, i, false, NULL, 0);
        }
        b->epoch = agent_outbox_epoch(g.ob);
        b->seq = agent_outbox_next_seq(g.ob);
        assert_int_equal(floe_wire_encoder_new(1, NULL, &enc), 0);
        assert_int_equal(floe_wire_encode(enc, b, &data, &len), 0);
        h.seq = b->seq;
        h.cursor = agent_ring_head(g.ring);
        assert_int_equal(agent_ring_set_pending(g.ring, &h), 0);
        assert_int_equal(agent_outbox_append(g.ob, b->seq, FLOE_KIND_EVENTS, 10, data, len), 0);
        rig_crash(&g); /* before the cursor moved */
        rig_open(&g);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 1), 0);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 2000000), 0);
        assert_int_equal(outbox_events(&g), 10); /* once, not 20 */
        /* and a hand-over the outbox never got is replayed, not lost */
        accept_n(&g, 5, T0 + 100);
        h.seq = agent_outbox_next_seq(g.ob);
        h.cursor = agent_ring_head(g.ring);
        assert_int_equal(agent_ring_set_pending(g.ring, &h), 0);
        rig_crash(&g);
        rig_open(&g);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 1), 0);
        assert_int_equal(agent_pipeline_tick(g.pipe, T0, 2000000), 0);
        assert_int_equal(outbox_events(&g), 15);
        floe_wire_encoder_free(enc);
        floe_batch_free(b);
        rig_done(&g);
}

/* Which readings the outbox holds, by value (each reading's id): counts. */
static void outbox_seen(struct rig *g, uint8_t *seen, size_t n)
{
        static uint8_t frame[8 << 20];
        struct floe_wire_decoder *d;
        struct floe_batch *b;
        uint64_t seq = 0;

        assert_int_equal(floe_wire_decoder_new(NULL, &d), 0);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        while (agent_outbox_next_unacked(g->ob, seq, &seq) == 0) {
                struct agent_outbox_record rec;
                struct floe_wire_error err;
                size_t len;

                assert_int_equal(agent_outbox_record_info(g->ob, seq, &rec), 0);
                if (rec.kind == FLOE_KIND_EVENTS) {
                        assert_int_equal(agent_outbox_read(g->ob, seq, frame, sizeof(frame), &len),
                                         0);
                        assert_int_equal(floe_wire_decode_into(d, frame, len, b, &err), 0);
                        for (uint32_t i = 0; i < b->nrows; i++) {
                                assert_true(b->value[i] >= 0 && b->value[i] < (double)n);
                                seen[(size_t)b->value[i]]++;
                        }
                }
                seq++;
        }
        floe_batch_free(b);
        floe_wire_decoder_free(d);
}

/* Payloads become ring records of one sensor's readings; batches close
 * between records, of whatever size they are after a restart: across crashes
 * at random points every reading is shipped exactly once. */
static void test_records_ship_once(void **state)
{
        static const uint32_t sizes[] = {7, 3, 1000, 1, 20};
        static uint8_t seen[20000];
        struct agent_reading rd[64];
        static char metrics[20][8];
        uint64_t x = 42, mono = 1;
        size_t id = 0;
        struct rig g;

        (void)state;
        for (int m = 0; m < 20; m++)
                snprintf(metrics[m], sizeof(metrics[m]), "m%d", m);
        rig_batch_events = 7;
        rig_init(&g);
        for (int round = 0; round < 60; round++) {
                int payloads = 1 + (int)(rng(&x) % 4);

                for (int k = 0; k < payloads; k++) {
                        size_t n = 1 + rng(&x) % 40, taken = 99;
                        bool mixed = rng(&x) % 3 == 0;

                        for (size_t i = 0; i < n; i++) {
                                /* runs of one sensor; a mixed payload changes sensor */
                                const char *sensor = mixed && (i / 5) % 2 ? "s2" : "s1";

                                rd[i] = (struct agent_reading){
                                        .sensor = sensor,
                                        .sensor_len = 2,
                                        .metric = metrics[i % 20],
                                        .metric_len = strlen(metrics[i % 20]),
                                        .ts_us = i % 7 == 3 ? AGENT_TS_NONE : T0 + round * 1000,
                                        .value = (double)id++};
                        }
                        assert_int_equal(agent_pipeline_accept_many(g.pipe, rd, n,
                                                                    T0 + round * 1000 + k, &taken),
                                         0);
                        assert_int_equal(taken, n);
                }
                if (rng(&x) % 4 == 0) {
                        mono += 2000000; /* past max_age: the open batch closes */
                        assert_int_equal(agent_pipeline_tick(g.pipe, T0 + round * 1000, mono), 0);
                }
                if (rng(&x) % 5 == 0) {
                        /* a crash, and perhaps other batch sizes after it */
                        rig_crash(&g);
                        rig_batch_events = sizes[rng(&x) % ELEMENTS(sizes)];
                        rig_open(&g);
                }
        }
        assert_int_equal(agent_pipeline_drain(g.pipe, T0 + 60000), 0);
        assert_true(id < sizeof(seen));
        outbox_seen(&g, seen, id);
        for (size_t i = 0; i < id; i++)
                if (seen[i] != 1)
                        fail_msg("reading %zu shipped %u times", i, seen[i]);
        rig_done(&g);
        rig_batch_events = 0;
}

/* More series than the series table holds: idle ones are evicted (the open
 * batch closes first, its series refer to them), those with open windows
 * stay and newcomers go to the batch by name. Every batch decodes (no
 * series twice) and every reading is shipped once. */
static void test_series_table_full(void **state)
{
        static const enum agent_ship ships[] = {AGENT_SHIP_EVENTS, AGENT_SHIP_BOTH};
        static uint8_t seen[4000];
        struct agent_reading rd[8];
        static char names[12][2][8];
        struct agent_pipeline_stats ps;
        struct agent_window_stats ws;
        uint64_t x = 7;

        (void)state;
        for (int i = 0; i < 12; i++) {
                snprintf(names[i][0], sizeof(names[i][0]), "s%d", i);
                snprintf(names[i][1], sizeof(names[i][1]), "m%d", i);
        }
        for (size_t t = 0; t < ELEMENTS(ships); t++) {
                size_t id = 0;
                struct rig g;

                rig_max_series = 4;
                rig_ship = ships[t];
                rig_init(&g);
                for (int k = 0; k < 400; k++) {
                        const char *sensor = names[rng(&x) % 12][0];
                        size_t n = 1 + rng(&x) % 8, taken;

                        for (size_t i = 0; i < n; i++)
                                rd[i] = (struct agent_reading){.sensor = sensor,
                                                               .sensor_len = strlen(sensor),
                                                               .metric = names[rng(&x) % 3][1],
                                                               .metric_len = 2,
                                                               .ts_us = T0 + k * 100000,
                                                               .value = (double)id++};
                        assert_int_equal(agent_pipeline_accept_many(g.pipe, rd, n,
                                                                    T0 + k * 100000 + 1, &taken),
                                         0);
                        if (k % 50 == 49)
                                assert_int_equal(agent_pipeline_tick(g.pipe, T0 + k * 100000, 1),
                                                 0);
                }
                assert_int_equal(agent_pipeline_drain(g.pipe, T0 + 40000000), 0);
                agent_pipeline_stats(g.pipe, &ps);
                agent_window_stats(g.win, &ws);
                assert_int_equal(ps.rejected, 0);
                /* without windows every series is idle; with them, the table
                 * fills with series whose windows are open */
                if (rig_ship == AGENT_SHIP_EVENTS)
                        assert_true(ws.compactions > 0);
                else
                        assert_true(ws.dropped_series > 0);
                memset(seen, 0, sizeof(seen));
                outbox_seen(&g, seen, id);
                for (size_t i = 0; i < id; i++)
                        if (seen[i] != 1)
                                fail_msg("ship %d: reading %zu shipped %u times", rig_ship, i,
                                         seen[i]);
                rig_done(&g);
        }
        rig_max_series = 0;
        rig_ship = 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_batch_replayed_once),
                cmocka_unit_test(test_batch_too_large_is_split),
                cmocka_unit_test(test_crash_after_outbox_append),
                cmocka_unit_test(test_records_ship_once),
                cmocka_unit_test(test_series_table_full),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
