/* SPDX-License-Identifier: Apache-2.0 */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-log.h"
#include "floe-wire.h"
#include "outbox.h"
#include "ring.h"
#include "window.h"

/* Per-row estimate of the encoded size, for batch_max_bytes: the reference
 * profile needs 1-3 bytes per event, noisy floats up to about 12. The
 * estimate starts here and follows what the last batches really took; a batch
 * that still encodes too big is split (split_events). */
#define EST_BYTES_PER_EVENT 8
#define EST_BYTES_MAX       32

struct agent_pipeline {
        struct agent_pipeline_opts o;
        struct agent_ring *ring;
        struct agent_window *win;
        struct agent_outbox *ob;
        struct floe_wire_encoder *enc;
        struct floe_batch *events;
        struct floe_batch *aggs;
        uint64_t events_first_mono; /* when the open event batch got its first row */
        uint64_t est_bytes;
        uint32_t est_per_event;
        bool replaying;
        struct agent_pipeline_stats st;
        struct floe_ratelimit rl;
};

static bool ships(const struct agent_pipeline *p, enum agent_ship s)
{
        return (p->o.ship & s) != 0;
}

/* Moves a ring cursor past what a batch in the outbox now holds. */
static int move_cursor(struct agent_pipeline *p, const struct agent_ring_pending *h)
{
        if (h->kind == FLOE_KIND_EVENTS)
                return agent_ring_set_events_cursor(p->ring, h->cursor);
        return agent_ring_set_agg_cursor(p->ring, h->cursor, h->watermark_us);
}

/*
 * Encodes b into the outbox and moves the ring cursor h names. The ring
 * records the hand-over first (agent_ring_set_pending), so a crash between
 * the append and the cursor move is finished at the next start instead of
 * shipping the records again in a new batch.
 */
static int batch_to_outbox(struct agent_pipeline *p, struct floe_batch *b,
                           struct agent_ring_pending *h, int64_t now_us)
{
        const uint8_t *data;
        size_t len;
        int r;

        if (b->nrows == 0)
                return move_cursor(p, h);
        b->epoch = agent_outbox_epoch(p->ob);
        b->seq = agent_outbox_next_seq(p->ob);
        b->created_us = now_us;
        r = floe_wire_encode(p->enc, b, &data, &len);
        if (r == -E2BIG)
                return r; /* the caller splits the batch */
        if (r < 0) {
                p->st.encode_errors++;
                log_ratelimit(&p->rl, LOG_ERR, "pipeline: cannot encode a %s batch of %u rows: %s",
                              floe_batch_kind_name(b->kind), b->nrows, strerror(-r));
                return r;
        }
        if (b->kind == FLOE_KIND_EVENTS) {
                /* the next batches are estimated at this one's size per event, with room */
                uint64_t per = (len + len / 4) / b->nrows + 1;

                p->est_per_event = per < EST_BYTES_PER_EVENT ? EST_BYTES_PER_EVENT
                                   : per > EST_BYTES_MAX     ? EST_BYTES_MAX
                                                             : (uint32_t)per;
        }
        h->seq = b->seq;
        r = agent_ring_set_pending(p->ring, h);
        if (r < 0)
                return r;
        r = agent_outbox_append(p->ob, b->seq, (uint8_t)b->kind, b->nrows, data, len);
        if (r == -ENOSPC) {
                /* refused under reject-new and counted by the outbox: the data
                 * is dropped, so the ring lets go of it too */
                p->st.outbox_refused++;
        } else if (r < 0) {
                agent_ring_clear_pending(p->ring);
                return r;
        } else if (b->kind == FLOE_KIND_EVENTS) {
                p->st.event_batches++;
        } else {
                p->st.aggregate_batches++;
        }
        r = move_cursor(p, h);
        agent_ring_clear_pending(p->ring);
        if (r < 0)
                return r;
        if (p->o.on_batch)
                p->o.on_batch(p->o.on_batch_ud);
        return 0;
}

static int add_event(struct agent_pipeline *p, const struct agent_ring_entry *e, int64_t now_us);
static int split_events(struct agent_pipeline *p, uint64_t upto, int64_t now_us);

/* The open event batch holds every record from the events cursor up to
 * `upto` (the ring's head, or the replay's position): once it is in the
 * outbox, the cursor moves there. */
static int close_events(struct agent_pipeline *p, uint64_t upto, int64_t now_us)
{
        struct agent_ring_pending h = {.kind = FLOE_KIND_EVENTS, .cursor = upto};
        int r = batch_to_outbox(p, p->events, &h, now_us);

        if (r == -E2BIG)
                return split_events(p, upto, now_us);
        if (r < 0)
                return r;
        floe_batch_reset(p->events);
        p->est_bytes = 0;
        p->events_first_mono = 0;
        return 0;
}

/* The open batch encodes larger than an outbox record may be (values noisier
 * than the estimate): it is built again from its ring records in batches of
 * half as many rows, each closed as it fills, halving again if need be. */
static int split_events(struct agent_pipeline *p, uint64_t upto, int64_t now_us)
{
        uint32_t cap = p->events->nrows / 2;
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        int r;

        if (cap == 0) {
                /* one reading too large for a record: impossible within the limits */
                p->st.encode_errors++;
                return -E2BIG;
        }
        p->st.split_batches++;
        floe_batch_reset(p->events);
        p->est_bytes = 0;
        r = agent_ring_iter_init(p->ring, agent_ring_events_cursor(p->ring), &it);
        while (r == 0 && (r = agent_ring_iter_next(&it, &e)) == 0 && e.pos < upto) {
                r = add_event(p, &e, now_us);
                if (r == 0 && p->events->nrows >= cap)
                        r = close_events(p, e.next, now_us);
        }
        if (r == 0 || r == -ENOENT)
                r = close_events(p, upto, now_us);
        return r;
}

static int emit_agg(void *ud, const char *sensor, size_t slen, const char *metric, size_t mlen,
                    const struct floe_agg_row *row)
{
        struct agent_pipeline *p = ud;
        uint32_t series;
        int r;

        r = floe_batch_intern_series(p->aggs, sensor, slen, metric, mlen, &series);
        r = r ?: floe_batch_add_aggregate(p->aggs, series, row);
        if (r == -ENOSPC)
                return r; /* the window stays open: shipped with the next batch */
        if (r < 0)
                log_ratelimit(&p->rl, LOG_ERR, "pipeline: aggregate row dropped: %s", strerror(-r));
        return 0;
}

/* Closed windows become one aggregates batch; then the aggregation cursor
 * moves to the oldest record of a still-open window. A full batch leaves
 * the rest of the due windows open for the next tick. */
static int ship_windows(struct agent_pipeline *p, int64_t now_us, bool all)
{
        struct agent_ring_pending h = {.kind = FLOE_KIND_AGGREGATES};
        int r;

        floe_batch_reset(p->aggs);
        if (all)
                r = agent_window_flush_all(p->win, now_us, emit_agg, p);
        else
                r = agent_window_close_due(p->win, now_us, emit_agg, p);
        if (r < 0 && r != -ENOSPC)
                return r;
        if (agent_window_oldest_pos(p->win, &h.cursor) < 0)
                h.cursor = agent_ring_head(p->ring);
        h.watermark_us = agent_window_watermark(p->win);
        return batch_to_outbox(p, p->aggs, &h, now_us);
}

/* Adds one ring record to the open event batch. */
static int add_event(struct agent_pipeline *p, const struct agent_ring_entry *e, int64_t now_us)
{
        const struct agent_reading *rd = &e->rd;
        uint32_t series;
        int r;

        r = floe_batch_intern_series(p->events, rd->sensor, rd->sensor_len, rd->metric,
                                     rd->metric_len, &series);
        r = r
                    ?: floe_batch_add_event(p->events, series, rd->ts_us, rd->value, rd->value_null,
                                            rd->text, rd->text_len);
        if (r == -ENOSPC) {
                /* the batch is full: it ends before this record */
                r = close_events(p, e->pos, now_us);
                r = r
                            ?: floe_batch_intern_series(p->events, rd->sensor, rd->sensor_len,
                                                        rd->metric, rd->metric_len, &series);
                r = r
                            ?: floe_batch_add_event(p->events, series, rd->ts_us, rd->value,
                                                    rd->value_null, rd->text, rd->text_len);
        }
        if (r < 0) {
                /* the ring accepted what the batch refuses: count, never stall */
                p->st.rejected++;
                log_ratelimit(&p->rl, LOG_ERR, "pipeline: reading not batched: %s", strerror(-r));
                return 0;
        }
        p->est_bytes += p->est_per_event + rd->text_len;
        return 0;
}

/* Feeds one ring record to the consumers that have not seen it. */
static int consume(struct agent_pipeline *p, const struct agent_ring_entry *e, int64_t now_us)
{
        if (ships(p, AGENT_SHIP_AGGREGATES) && e->pos >= agent_ring_agg_cursor(p->ring))
                agent_window_add(p->win, &e->rd, e->flags, e->pos, e->arrival_us);
        if (!ships(p, AGENT_SHIP_EVENTS) || e->pos < agent_ring_events_cursor(p->ring))
                return 0;
        return add_event(p, e, now_us);
}

static bool events_full(const struct agent_pipeline *p)
{
        return p->events->nrows >= p->o.batch_max_events || p->est_bytes >= p->o.batch_max_bytes;
}

int agent_pipeline_accept(struct agent_pipeline *p, const struct agent_reading *r, int64_t now_us)
{
        struct agent_ring_entry e = {.rd = *r, .arrival_us = now_us};
        int ret;

        if (e.rd.ts_us == AGENT_TS_NONE) {
                e.rd.ts_us = now_us;
                e.flags |= AGENT_RING_F_TS_STAMPED;
        } else if (!agent_window_ts_plausible(p->win, e.rd.ts_us, now_us)) {
                e.flags |= AGENT_RING_F_TS_IMPLAUSIBLE;
        }
        ret = agent_ring_append(p->ring, &e.rd, e.flags, now_us, &e.pos);
        if (ret == -ENOSPC) {
                p->st.ring_full++;
                return ret;
        }
        if (ret < 0) {
                p->st.rejected++;
                return ret;
        }
        p->st.accepted++;
        ret = consume(p, &e, now_us);
        if (ret < 0)
                return ret;
        if (events_full(p))
                return close_events(p, agent_ring_head(p->ring), now_us);
        return 0;
}

int agent_pipeline_tick(struct agent_pipeline *p, int64_t now_us, uint64_t mono_us)
{
        int r;

        if (p->events->nrows > 0 && p->events_first_mono == 0)
                p->events_first_mono = mono_us;
        if (p->events->nrows > 0 && mono_us - p->events_first_mono >= p->o.batch_max_age_us) {
                r = close_events(p, agent_ring_head(p->ring), now_us);
                if (r < 0)
                        return r;
        }
        if (!ships(p, AGENT_SHIP_EVENTS) && p->events->nrows == 0)
                agent_ring_set_events_cursor(p->ring, agent_ring_head(p->ring));
        if (ships(p, AGENT_SHIP_AGGREGATES))
                return ship_windows(p, now_us, false);
        return agent_ring_set_agg_cursor(p->ring, agent_ring_events_cursor(p->ring), 0);
}

int agent_pipeline_drain(struct agent_pipeline *p, int64_t now_us)
{
        int r = close_events(p, agent_ring_head(p->ring), now_us);

        if (r == 0 && ships(p, AGENT_SHIP_AGGREGATES))
                r = ship_windows(p, now_us, true);
        if (r == 0)
                r = agent_ring_sync(p->ring);
        return r;
}

static int replay(struct agent_pipeline *p, int64_t now_us)
{
        uint64_t from = agent_ring_agg_cursor(p->ring);
        struct agent_ring_iter it;
        struct agent_ring_entry e;
        struct agent_ring_pending h;
        int r;

        /* a batch the outbox took before a crash: its records are shipped */
        agent_ring_get_pending(p->ring, &h);
        if (h.seq && h.seq < agent_outbox_next_seq(p->ob)) {
                r = move_cursor(p, &h);
                if (r < 0)
                        return r;
                from = agent_ring_agg_cursor(p->ring);
        }
        agent_ring_clear_pending(p->ring);
        if (agent_ring_events_cursor(p->ring) < from)
                from = agent_ring_events_cursor(p->ring);
        r = agent_window_set_watermark(p->win, agent_ring_watermark(p->ring));
        r = r ?: agent_ring_iter_init(p->ring, from, &it);
        if (r < 0)
                return r;
        while ((r = agent_ring_iter_next(&it, &e)) == 0) {
                p->st.replayed++;
                r = consume(p, &e, now_us);
                if (r == 0 && events_full(p))
                        r = close_events(p, e.next, now_us);
                if (r < 0)
                        return r;
        }
        return r == -ENOENT ? 0 : r;
}

int agent_pipeline_new(const struct agent_pipeline_opts *o, struct agent_ring *ring,
                       struct agent_window *win, struct agent_outbox *ob, int64_t now_us,
                       struct agent_pipeline **ret)
{
        struct agent_pipeline *p;
        int r;

        if (!o->identity || !o->ship || !o->batch_max_events ||
            o->batch_max_events > o->lim.max_rows)
                return -EINVAL;
        p = floe_calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->o = *o;
        p->ring = ring;
        p->win = win;
        p->ob = ob;
        p->rl = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * 1000000ULL, 5);
        p->est_per_event = EST_BYTES_PER_EVENT;
        r = floe_wire_encoder_new(o->level, &o->lim, &p->enc);
        r = r ?: floe_batch_new(FLOE_KIND_EVENTS, &o->lim, &p->events);
        r = r ?: floe_batch_new(FLOE_KIND_AGGREGATES, &o->lim, &p->aggs);
        /* all working memory now: no allocation per event */
        r = r
                    ?: floe_batch_reserve(p->events, o->batch_max_events, o->lim.max_dict,
                                          (size_t)o->lim.max_dict * 32, true);
        r = r
                    ?: floe_batch_reserve(p->aggs, o->lim.max_series, o->lim.max_dict,
                                          (size_t)o->lim.max_dict * 32, true);
        r = r ?: floe_batch_set_identity(p->events, o->identity);
        r = r ?: floe_batch_set_identity(p->aggs, o->identity);
        if (r < 0)
                goto fail;
        r = replay(p, now_us);
        if (r < 0)
                goto fail;
        *ret = p;
        return 0;
fail:
        agent_pipeline_free(p);
        return r;
}

struct agent_pipeline *agent_pipeline_free(struct agent_pipeline *p)
{
        if (!p)
                return NULL;
        floe_wire_encoder_free(p->enc);
        floe_batch_free(p->events);
        floe_batch_free(p->aggs);
        floe_free(p);
        return NULL;
}

void agent_pipeline_stats(const struct agent_pipeline *p, struct agent_pipeline_stats *ret)
{
        *ret = p->st;
        ret->open_events = p->events->nrows;
}
