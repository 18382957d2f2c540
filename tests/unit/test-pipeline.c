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

static size_t rig_max_record; /* 0: the outbox default */

static void rig_open(struct rig *g)
{
        struct agent_pipeline_opts po = {
                .identity = "acme.gw-1",
                .ship = AGENT_SHIP_EVENTS,
                .batch_max_events = 1000,
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

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_batch_replayed_once),
                cmocka_unit_test(test_batch_too_large_is_split),
                cmocka_unit_test(test_crash_after_outbox_append),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
