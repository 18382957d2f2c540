/* SPDX-License-Identifier: Apache-2.0 */
#include "pipeline.h"

#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-log.h"
#include "bytes.h"
#include "floe-wire.h"
#include "outbox.h"
#include "ring.h"
#include "series.h"
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
        struct agent_series_reg *reg; /* the windows' registry: one lookup per reading */
        uint32_t prev_series;         /* the series looked up last */
        uint32_t gen;                 /* of the open event batch, for agent_series.batch_gen */
        uint64_t events_first_mono;   /* when the open event batch got its first row */
        /* one group of readings being accepted (agent_pipeline_accept_many()):
         * the caller's, or copies stamped with the agent's clock */
        const struct agent_reading *grp;
        struct agent_reading stamped[AGENT_RING_GROUP_MAX];
        uint8_t grp_flags[AGENT_RING_GROUP_MAX];  /* for the ring */
        uint8_t grp_wflags[AGENT_RING_GROUP_MAX]; /* for the windows */
        uint32_t grp_series[AGENT_RING_GROUP_MAX];
        bool by_name;      /* the open event batch has series added by name */
        uint32_t room;     /* readings the open event batch surely takes */
        size_t room_bytes; /* and their name and text bytes */
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

static int add_event(struct agent_pipeline *p, const struct agent_ring_entry *e, uint32_t series,
                     int64_t now_us);
static int split_events(struct agent_pipeline *p, uint64_t upto, int64_t now_us);
static uint32_t series_of(struct agent_pipeline *p, const struct agent_reading *rd, uint64_t pos,
                          bool may_evict, int64_t now_us);

static bool dict_room(const struct floe_strdict *d, uint32_t n, uint64_t bytes, uint32_t max)
{
        return d->n + n <= d->cap && d->n + n <= max && d->used + bytes <= d->bufcap;
}

/* Whether the open event batch takes n more readings with names and texts
 * of `bytes` in all, whatever they are. A record's readings go into one
 * batch: the ring's cursor moves between records only. */
static bool batch_room(const struct agent_pipeline *p, uint32_t n, uint64_t bytes)
{
        const struct floe_batch *b = p->events;
        uint32_t dmax = b->lim.max_dict;

        return b->nrows + n <= b->cap && b->nseries + n <= b->series_cap &&
               b->nseries + n <= b->lim.max_series && dict_room(&b->sensors, 1, bytes, dmax) &&
               dict_room(&b->metrics, n, bytes, dmax) && dict_room(&b->texts, n, bytes, dmax);
}

/* How many readings of `bytes` name and text bytes in all the open batch
 * surely takes: counted down per reading, worked out again when used up. */
static void room_count(struct agent_pipeline *p)
{
        const struct floe_batch *b = p->events;
        uint32_t dmax = b->lim.max_dict, n = b->cap - b->nrows;
        const struct floe_strdict *d[3] = {&b->sensors, &b->metrics, &b->texts};
        size_t bytes = SIZE_MAX;

        n = b->series_cap - b->nseries < n ? b->series_cap - b->nseries : n;
        n = b->lim.max_series - b->nseries < n ? b->lim.max_series - b->nseries : n;
        for (int i = 0; i < 3; i++) {
                uint32_t e = (d[i]->cap < dmax ? d[i]->cap : dmax) - d[i]->n;

                n = e < n ? e : n;
                bytes = d[i]->bufcap - d[i]->used < bytes ? d[i]->bufcap - d[i]->used : bytes;
        }
        p->room = n;
        p->room_bytes = bytes;
}

static void events_reset(struct agent_pipeline *p)
{
        floe_batch_reset(p->events);
        p->by_name = false;
        room_count(p);
        p->est_bytes = 0;
        /* series and names stamped with an older generation are not in the batch */
        if (++p->gen == 0)
                p->gen = 1;
}

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
        events_reset(p);
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

        r = agent_ring_iter_init(p->ring, agent_ring_events_cursor(p->ring), &it);
        r = r ?: agent_ring_iter_next(&it, &e);
        if (cap == 0 || (r == 0 && e.next >= upto)) {
                /* one ring record too large for an outbox record: records hold
                 * at most 1/16 of a batch, so only beyond the limits */
                p->st.encode_errors++;
                return -E2BIG;
        }
        p->st.split_batches++;
        events_reset(p);
        r = agent_ring_iter_init(p->ring, agent_ring_events_cursor(p->ring), &it);
        while (r == 0 && (r = agent_ring_iter_next(&it, &e)) == 0 && e.pos < upto) {
                if (e.index == 0 && p->events->nrows > 0 && !batch_room(p, e.entries, e.length))
                        r = close_events(p, e.pos, now_us);
                r = r ?: add_event(p, &e, series_of(p, &e.rd, e.pos, false, now_us), now_us);
                if (r == 0 && e.index + 1 == e.entries && p->events->nrows >= cap)
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

/* The batch series of a reading: from the registry's stamps once the series
 * is in the batch, else interned by name (new to the batch, or no id). */
static int batch_series(struct agent_pipeline *p, uint32_t id, const struct agent_reading *rd,
                        uint32_t *ret)
{
        struct floe_batch *b = p->events;
        struct agent_series *se;
        struct agent_series_name *sn, *mn;
        int r;

        if (id == AGENT_SERIES_NONE) {
                p->by_name = true; /* the batch holds a series no stamp knows */
                return floe_batch_intern_series(b, rd->sensor, rd->sensor_len, rd->metric,
                                                rd->metric_len, ret);
        }
        se = &p->reg->series[id];
        if (se->batch_gen == p->gen) {
                *ret = se->batch_idx;
                return 0;
        }
        sn = &p->reg->sensors.e[se->sensor];
        mn = &p->reg->metrics.e[se->metric];
        if (sn->batch_gen != p->gen) {
                r = floe_batch_intern_name(b, &b->sensors, rd->sensor, rd->sensor_len,
                                           &sn->batch_idx);
                if (r < 0)
                        return r;
                sn->batch_gen = p->gen;
        }
        if (mn->batch_gen != p->gen) {
                r = floe_batch_intern_name(b, &b->metrics, rd->metric, rd->metric_len,
                                           &mn->batch_idx);
                if (r < 0)
                        return r;
                mn->batch_gen = p->gen;
        }
        /* without a stamp and without series added by name, it is new here */
        if (p->by_name)
                r = floe_batch_add_series_raw(b, sn->batch_idx, mn->batch_idx, &se->batch_idx,
                                              NULL);
        else
                r = floe_batch_push_series(b, sn->batch_idx, mn->batch_idx, &se->batch_idx);
        if (r < 0)
                return r;
        se->batch_gen = p->gen;
        *ret = se->batch_idx;
        return 0;
}

static int batch_add(struct agent_pipeline *p, uint32_t id, const struct agent_reading *rd)
{
        struct floe_batch *b = p->events;
        uint32_t series;
        int r = batch_series(p, id, rd, &series);

        r = r
                    ?: floe_batch_add_event(b, series, rd->ts_us, rd->value, rd->value_null,
                                            rd->text, rd->text_len);
        if (r == 0 && b->decimals)
                b->decimals[b->nrows - 1] = rd->decimals; /* the encoder's hint */
        return r;
}

/* Adds one ring record to the open event batch. */
static int add_event(struct agent_pipeline *p, const struct agent_ring_entry *e, uint32_t series,
                     int64_t now_us)
{
        const struct agent_reading *rd = &e->rd;
        int r;

        r = batch_add(p, series, rd);
        if (r == -ENOSPC && e->index == 0) {
                /* the batch is full: it ends before this record (room for a
                 * whole record is checked before its first reading, so this
                 * is the only place a record can be left out) */
                r = close_events(p, e->pos, now_us);
                r = r ?: batch_add(p, series, rd);
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

/*
 * The registry id of a reading's series, or AGENT_SERIES_NONE (bad names, or
 * the registry full of series with open windows). Evicting idle series ends
 * the open event batch first (before `pos`, where the reading goes or is):
 * the batch's stamps must not outlive the ids they are on. Splitting a batch
 * does not evict: a series it cannot add goes to the batch by name.
 */
static uint32_t series_of(struct agent_pipeline *p, const struct agent_reading *rd, uint64_t pos,
                          bool may_evict, int64_t now_us)
{
        uint32_t id;
        int r;

        r = agent_series_get(p->reg, rd->sensor, rd->sensor_len, rd->metric, rd->metric_len,
                             p->prev_series, &id);
        if (r == -ENOSPC && may_evict && p->reg->idle > 0) {
                if (p->events->nrows > 0 && close_events(p, pos, now_us) < 0)
                        return AGENT_SERIES_NONE;
                events_reset(p); /* even empty: no stamp may survive the eviction */
                if (agent_window_series_compact(p->win) == 0)
                        r = agent_series_get(p->reg, rd->sensor, rd->sensor_len, rd->metric,
                                             rd->metric_len, AGENT_SERIES_NONE, &id);
        }
        if (r < 0)
                return AGENT_SERIES_NONE;
        p->prev_series = id;
        return id;
}

/* Feeds one ring record to the consumers that have not seen it. */
static int consume(struct agent_pipeline *p, const struct agent_ring_entry *e, uint32_t series,
                   int64_t now_us)
{
        if (ships(p, AGENT_SHIP_AGGREGATES) && e->pos >= agent_ring_agg_cursor(p->ring))
                agent_window_add_series(p->win, series, &e->rd, e->flags, e->pos, e->arrival_us);
        if (!ships(p, AGENT_SHIP_EVENTS) || e->pos < agent_ring_events_cursor(p->ring))
                return 0;
        return add_event(p, e, series, now_us);
}

static bool events_full(const struct agent_pipeline *p)
{
        return p->events->nrows >= p->o.batch_max_events || p->est_bytes >= p->o.batch_max_bytes;
}

/* Whether the open event batch surely takes n more readings of `bytes`
 * name and text bytes: counted down, worked out again when used up. */
static bool room_take(struct agent_pipeline *p, uint32_t n, size_t bytes)
{
        if (p->room < n || p->room_bytes < bytes)
                room_count(p);
        if (p->room < n || p->room_bytes < bytes)
                return false;
        p->room -= n;
        p->room_bytes -= bytes;
        return true;
}

/* The readings from rd that go into one ring record: of one sensor, within
 * AGENT_RING_GROUP_MAX, the rows the open event batch has left, and 1/16 of
 * a batch, so that a batch too large to encode can be split between records
 * (split_events()). */
static size_t group_len(const struct agent_pipeline *p, const struct agent_reading *rd, size_t n)
{
        uint64_t max = AGENT_RING_GROUP_MAX, part = p->o.batch_max_events / 16;
        size_t k = 1;

        if (ships(p, AGENT_SHIP_EVENTS)) {
                uint64_t rows = p->events->nrows < p->o.batch_max_events
                                        ? p->o.batch_max_events - p->events->nrows
                                        : 1;
                uint64_t by_bytes = p->o.batch_max_bytes / 16 / p->est_per_event;

                max = part < max ? part : max;
                max = by_bytes < max ? by_bytes : max;
                max = rows < max ? rows : max;
        }
        if (max > n)
                max = n;
        if (max == 0)
                max = 1;
        while (k < max && rd[k].sensor_len == rd[0].sensor_len &&
               (rd[k].sensor == rd[0].sensor ||
                agent_bytes_eq(rd[k].sensor, rd[0].sensor, rd[0].sensor_len)))
                k++;
        return k;
}

/* The ring's checks, reading by reading: what agent_pipeline_accept() did
 * before readings were grouped, for a group the ring refused as a whole. */
static int accept_each(struct agent_pipeline *p, size_t n, int64_t now_us, size_t *ret_done);

/* The series of grp[0..n): readings of one record share their sensor, so
 * the one after the series before is checked by its metric alone. */
static void group_series(struct agent_pipeline *p, size_t n, int64_t now_us)
{
        struct agent_series_reg *reg = p->reg;
        const struct agent_reading *g = p->grp;
        uint32_t *ids = p->grp_series;
        uint64_t evictions = reg->evictions, head = agent_ring_head(p->ring);

        for (size_t i = 0; i < n; i++) {
                uint32_t prev = i ? ids[i - 1] : AGENT_SERIES_NONE, c;

                if (prev != AGENT_SERIES_NONE && (c = reg->series[prev].succ) < reg->hw &&
                    reg->series[prev].sensor != AGENT_SERIES_NONE &&
                    reg->series[c].sensor == reg->series[prev].sensor &&
                    agent_series_name_is(reg, &reg->metrics.e[reg->series[c].metric], g[i].metric,
                                         g[i].metric_len)) {
                        ids[i] = p->prev_series = c;
                        continue;
                }
                c = (uint32_t)(reg->evictions - evictions);
                ids[i] = series_of(p, &g[i], head, c == 0, now_us);
                /* idle series evicted to make room may include ones looked up
                 * for this group: look them up again, without evicting */
                if (reg->evictions - evictions != c)
                        for (size_t k = 0; k < i; k++)
                                ids[k] = series_of(p, &g[k], head, false, now_us);
        }
}

/* Appends grp[0..n) to the ring as one record and feeds it to the windows and
 * the open event batch. */
static int accept_group(struct agent_pipeline *p, size_t n, int64_t now_us)
{
        const struct agent_reading *g = p->grp;
        uint8_t *flags = p->grp_flags, *wflags = p->grp_wflags;
        bool events = ships(p, AGENT_SHIP_EVENTS), plausible = false;
        int64_t ts = 0;
        size_t bytes = g[0].sensor_len, done;
        uint64_t pos;
        int r;

        for (size_t i = 0; i < n; i++) {
                bytes += g[i].metric_len + (g[i].text ? g[i].text_len : 0);
                if (g[i].ts_us == AGENT_TS_NONE) {
                        /* the agent's clock, which the window judges */
                        if (g != p->stamped) {
                                memcpy(p->stamped, g, n * sizeof(*g));
                                p->grp = g = p->stamped;
                        }
                        p->stamped[i].ts_us = now_us;
                        flags[i] = wflags[i] = AGENT_RING_F_TS_STAMPED;
                        continue;
                }
                if (i == 0 || g[i].ts_us != ts) {
                        plausible = agent_window_ts_plausible(p->win, g[i].ts_us, now_us);
                        ts = g[i].ts_us;
                }
                flags[i] = plausible ? 0 : AGENT_RING_F_TS_IMPLAUSIBLE;
                wflags[i] = plausible ? AGENT_WINDOW_F_PLAUSIBLE : AGENT_RING_F_TS_IMPLAUSIBLE;
        }
        group_series(p, n, now_us);
        /* a record goes into one event batch whole: make room first */
        if (events && !room_take(p, (uint32_t)n, bytes)) {
                if (p->events->nrows > 0) {
                        r = close_events(p, agent_ring_head(p->ring), now_us);
                        if (r < 0)
                                return r;
                }
                if (!room_take(p, (uint32_t)n, bytes))
                        return accept_each(p, n, now_us, &done);
        }
        r = agent_ring_append_group(p->ring, g, flags, n, now_us, &pos);
        if (r < 0)
                return accept_each(p, n, now_us, &done);
        p->st.accepted += n;
        if (ships(p, AGENT_SHIP_AGGREGATES))
                agent_window_add_group(p->win, p->grp_series, g, wflags, n, pos, now_us);
        if (!events)
                return 0;
        for (size_t i = 0; i < n; i++) {
                uint32_t id = p->grp_series[i];
                const struct agent_series *se =
                        id != AGENT_SERIES_NONE ? &p->reg->series[id] : NULL;

                if (se && se->batch_gen == p->gen && !g[i].text) {
                        /* in the batch already: one row more */
                        floe_batch_push_event(p->events, se->batch_idx, g[i].ts_us, g[i].value,
                                              g[i].value_null, g[i].decimals);
                        p->est_bytes += p->est_per_event;
                } else {
                        struct agent_ring_entry e = {.rd = g[i],
                                                     .flags = flags[i],
                                                     .arrival_us = now_us,
                                                     .pos = pos,
                                                     .index = (uint32_t)i,
                                                     .entries = (uint32_t)n};

                        r = add_event(p, &e, id, now_us);
                        if (r < 0)
                                return r;
                }
        }
        if (events_full(p))
                return close_events(p, agent_ring_head(p->ring), now_us);
        return 0;
}

static int accept_each(struct agent_pipeline *p, size_t n, int64_t now_us, size_t *ret_done)
{
        for (size_t i = 0; i < n; i++) {
                const struct agent_reading *rd = &p->grp[i];
                uint64_t pos;
                int r;

                if (p->events->nrows > 0 &&
                    !room_take(p, 1,
                               rd->sensor_len + rd->metric_len + (rd->text ? rd->text_len : 0))) {
                        r = close_events(p, agent_ring_head(p->ring), now_us);
                        if (r < 0)
                                return r;
                }
                r = agent_ring_append(p->ring, rd, p->grp_flags[i], now_us, &pos);
                if (r < 0) {
                        if (r == -ENOSPC)
                                p->st.ring_full++;
                        else
                                p->st.rejected++;
                        *ret_done = i;
                        return r;
                }
                p->st.accepted++;
                {
                        struct agent_ring_entry e = {.rd = *rd,
                                                     .flags = p->grp_flags[i],
                                                     .arrival_us = now_us,
                                                     .pos = pos};

                        if (ships(p, AGENT_SHIP_AGGREGATES))
                                agent_window_add_series(p->win, p->grp_series[i], rd,
                                                        p->grp_flags[i], pos, now_us);
                        if (ships(p, AGENT_SHIP_EVENTS)) {
                                r = add_event(p, &e, p->grp_series[i], now_us);
                                if (r == 0 && events_full(p))
                                        r = close_events(p, agent_ring_head(p->ring), now_us);
                                if (r < 0)
                                        return r;
                        }
                }
        }
        *ret_done = n;
        return 0;
}

int agent_pipeline_accept_many(struct agent_pipeline *p, const struct agent_reading *rd, size_t n,
                               int64_t now_us, size_t *ret_accepted)
{
        size_t done = 0;
        int r = 0;

        while (done < n) {
                size_t k = group_len(p, rd + done, n - done), each;
                uint64_t accepted = p->st.accepted;

                p->grp = rd + done;
                r = accept_group(p, k, now_us);
                each = (size_t)(p->st.accepted - accepted);
                done += each;
                if (r < 0 || each < k)
                        break;
        }
        if (ret_accepted)
                *ret_accepted = done;
        return r;
}

int agent_pipeline_accept(struct agent_pipeline *p, const struct agent_reading *r, int64_t now_us)
{
        return agent_pipeline_accept_many(p, r, 1, now_us, NULL);
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
                /* a record goes into one batch whole */
                if (e.index == 0 && e.pos >= agent_ring_events_cursor(p->ring) &&
                    p->events->nrows > 0 && !batch_room(p, e.entries, e.length))
                        r = close_events(p, e.pos, now_us);
                r = r ?: consume(p, &e, series_of(p, &e.rd, e.pos, e.index == 0, now_us), now_us);
                if (r == 0 && e.index + 1 == e.entries && events_full(p))
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
        uint32_t rows;
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
        p->reg = agent_window_series(win);
        p->prev_series = AGENT_SERIES_NONE;
        p->gen = 1;
        agent_series_clear_stamps(p->reg); /* a window that served another pipeline */
        r = floe_wire_encoder_new(o->level, &o->lim, &p->enc);
        r = r ?: floe_batch_new(FLOE_KIND_EVENTS, &o->lim, &p->events);
        r = r ?: floe_batch_new(FLOE_KIND_AGGREGATES, &o->lim, &p->aggs);
        /* all working memory now: no allocation per event */
        /* rows for one ring record more than a batch holds: replayed records
         * formed under another batch size still fit whole */
        rows = o->batch_max_events + AGENT_RING_GROUP_MAX;
        if (rows > o->lim.max_rows)
                rows = o->lim.max_rows;
        r = r
                    ?: floe_batch_reserve(p->events, rows, o->lim.max_dict,
                                          (size_t)o->lim.max_dict * 32, true);
        r = r
                    ?: floe_batch_reserve(p->aggs, o->lim.max_series, o->lim.max_dict,
                                          (size_t)o->lim.max_dict * 32, true);
        r = r ?: floe_batch_keep_decimals(p->events);
        r = r ?: floe_batch_set_identity(p->events, o->identity);
        r = r ?: floe_batch_set_identity(p->aggs, o->identity);
        if (r < 0)
                goto fail;
        room_count(p);
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
