/* SPDX-License-Identifier: Apache-2.0 */
#include "window.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-version.h"
#include "ring.h"
#include "series.h"

#define NIL            UINT32_MAX
#define US_PER_S       1000000LL
#define MAX_SERIES     (1u << 24)
#define MAX_WINDOWS    (1u << 26)
#define MAX_DURATION   (1LL << 40) /* grace and max_future: ~12 days */
#define MAX_NAME_BYTES UINT32_MAX

/* One series' aggregate over one window. */
struct cell {
        int64_t k;          /* window index: start = k * L */
        uint32_t series;    /* id in the series registry */
        uint32_t next;      /* next cell of the series, or of the free list */
        uint32_t slot_next; /* next cell of the same window start */
        uint32_t slot;      /* index into slots[] */
        uint64_t min_pos;
        uint64_t count;
        double sum, comp; /* Neumaier: sum + comp is the total */
        double min, max, first, last;
        int64_t first_ts, last_ts;
};

/* All open cells of one window start: windows are aligned for every series. */
struct slot {
        int64_t k;
        uint64_t min_pos;
        uint32_t cells;
        uint32_t n; /* 0: slot free */
};

struct agent_window {
        struct agent_window_opts o;
        int64_t wm;
        struct agent_series_reg *reg;
        uint32_t last;                              /* the series found last */
        int64_t cached_k, cached_start, cached_end; /* the window of the last reading */
        struct cell *cells;
        uint32_t cells_hw; /* cells below were handed out at least once */
        uint32_t free_cells;
        uint32_t open;
        struct slot *slots;
        uint32_t nslots;
        uint32_t *order; /* scratch: a slot's cells sorted for emission */
        struct agent_window_stats st;
};

static int64_t floor_div(int64_t a, int64_t b)
{
        return a / b - (a % b < 0);
}

static int64_t sat_add(int64_t a, int64_t b)
{
        int64_t r;

        if (__builtin_add_overflow(a, b, &r))
                return a > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

/* Start of window k; saturates (such a window is never plausible). */
static int64_t k_start(const struct agent_window *w, int64_t k)
{
        int64_t r;

        if (__builtin_mul_overflow(k, w->o.window_us, &r))
                return k > 0 ? INT64_MAX : INT64_MIN;
        return r;
}

static int64_t k_end(const struct agent_window *w, int64_t k)
{
        return sat_add(k_start(w, k), w->o.window_us);
}

/* The midnight (UTC) a day before the build's date: readings before it are implausible. */
int64_t agent_window_build_floor_us(void)
{
        int64_t day = (int64_t)FLOE_BUILD_EPOCH / 86400;

        return day > 0 ? (day - 1) * 86400 * US_PER_S : 0;
}

void agent_window_opts_default(struct agent_window_opts *ret)
{
        *ret = (struct agent_window_opts){
                .window_us = 60 * US_PER_S,
                .grace_us = 5 * US_PER_S,
                .max_future_us = 600 * US_PER_S,
                .floor_us = agent_window_build_floor_us(),
                .max_series = 65536,
                .max_windows = 2 * 65536,
                .name_bytes = 64 * 65536,
        };
}

int agent_window_new(const struct agent_window_opts *o, struct agent_window **ret)
{
        struct agent_window *w;
        uint64_t nslots;

        if (o->window_us < US_PER_S || o->window_us % US_PER_S ||
            o->window_us / US_PER_S > UINT32_MAX || o->grace_us < 0 || o->grace_us > MAX_DURATION ||
            o->max_future_us < 0 || o->max_future_us > MAX_DURATION || o->max_series == 0 ||
            o->max_series > MAX_SERIES || o->max_windows == 0 || o->max_windows > MAX_WINDOWS ||
            o->name_bytes < 2 || o->name_bytes > MAX_NAME_BYTES)
                return -EINVAL;
        /* window starts that can be open at once: grace behind, max_future
         * ahead, the current one and slack for a late close_due() */
        nslots = (uint64_t)((o->grace_us + o->max_future_us) / o->window_us) + 4;
        if (nslots > AGENT_WINDOW_SLOTS_MAX)
                nslots = AGENT_WINDOW_SLOTS_MAX;

        w = floe_calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->o = *o;
        w->wm = INT64_MIN;
        w->last = AGENT_SERIES_NONE;
        w->nslots = (uint32_t)nslots;
        w->free_cells = NIL;
        w->cells = floe_calloc(o->max_windows, sizeof(*w->cells));
        w->slots = floe_calloc(nslots, sizeof(*w->slots));
        w->order = floe_calloc(o->max_windows, sizeof(*w->order));
        if (agent_series_new(o->max_series, o->name_bytes, &w->reg) < 0 || !w->cells || !w->slots ||
            !w->order) {
                agent_window_free(w);
                return -ENOMEM;
        }
        *ret = w;
        return 0;
}

struct agent_window *agent_window_free(struct agent_window *w)
{
        if (!w)
                return NULL;
        agent_series_free(w->reg);
        floe_free(w->cells);
        floe_free(w->slots);
        floe_free(w->order);
        floe_free(w);
        return NULL;
}

bool agent_window_ts_plausible(const struct agent_window *w, int64_t ts_us, int64_t arrival_us)
{
        /* the last bound keeps every window end below INT64_MAX (the year
         * 292277) without a division per reading */
        return ts_us != AGENT_TS_NONE && ts_us >= w->o.floor_us &&
               ts_us <= sat_add(arrival_us, w->o.max_future_us) &&
               ts_us < INT64_MAX - 2 * w->o.window_us;
}

/* ---- series ---- */

struct agent_series_reg *agent_window_series(struct agent_window *w)
{
        return w->reg;
}

int agent_window_series_compact(struct agent_window *w)
{
        int r = agent_series_evict_idle(w->reg);

        if (r == 0)
                w->st.compactions++;
        return r;
}

/* The series of a reading, making room among idle series if the registry is full. */
static uint32_t series_get(struct agent_window *w, const struct agent_reading *rd)
{
        uint32_t id;
        int r;

        r = agent_series_get(w->reg, rd->sensor, rd->sensor_len, rd->metric, rd->metric_len,
                             w->last, &id);
        if (r == -ENOSPC && agent_window_series_compact(w) == 0)
                r = agent_series_get(w->reg, rd->sensor, rd->sensor_len, rd->metric, rd->metric_len,
                                     AGENT_SERIES_NONE, &id);
        if (r < 0)
                return NIL;
        w->last = id;
        return id;
}

/* ---- cells and slots ---- */

static struct slot *slot_get(struct agent_window *w, int64_t k, bool create)
{
        uint32_t start = (uint32_t)(((k % w->nslots) + w->nslots) % w->nslots);
        struct slot *fresh = NULL;

        for (uint32_t j = 0; j < w->nslots; j++) {
                struct slot *sl = &w->slots[(start + j) % w->nslots];

                if (sl->n && sl->k == k)
                        return sl;
                if (!sl->n && !fresh)
                        fresh = sl;
        }
        if (!create || !fresh)
                return NULL;
        *fresh = (struct slot){.k = k, .min_pos = UINT64_MAX, .cells = NIL};
        return fresh;
}

/* A new cell of series si for window k; NIL when none is left. */
static __attribute__((noinline)) uint32_t cell_new(struct agent_window *w, uint32_t si, int64_t k,
                                                   uint64_t pos)
{
        struct agent_series *s = &w->reg->series[si];
        struct slot *sl;
        struct cell *c;
        uint32_t ci;

        if (w->free_cells == NIL && w->cells_hw == w->o.max_windows)
                return NIL;
        sl = slot_get(w, k, true);
        if (!sl)
                return NIL;
        if (w->free_cells != NIL) {
                ci = w->free_cells;
                w->free_cells = w->cells[ci].next;
        } else {
                ci = w->cells_hw++;
        }
        c = &w->cells[ci];
        *c = (struct cell){.k = k,
                           .series = si,
                           .next = s->cells,
                           .slot_next = sl->cells,
                           .slot = (uint32_t)(sl - w->slots),
                           .min_pos = pos,
                           .first_ts = INT64_MAX,
                           .last_ts = INT64_MIN};
        s->cells = ci;
        agent_series_cell_added(w->reg, si);
        sl->cells = ci;
        sl->n++;
        w->open++;
        return ci;
}

static inline uint32_t cell_get(struct agent_window *w, uint32_t si, int64_t k, uint64_t pos)
{
        for (uint32_t ci = w->reg->series[si].cells; ci != NIL; ci = w->cells[ci].next)
                if (w->cells[ci].k == k)
                        return ci;
        return cell_new(w, si, k, pos);
}

/* Back to the free list; the caller fixes the slot's list. */
static void cell_release(struct agent_window *w, uint32_t ci)
{
        uint32_t si = w->cells[ci].series;
        uint32_t *p = &w->reg->series[si].cells;

        while (*p != ci)
                p = &w->cells[*p].next;
        *p = w->cells[ci].next;
        agent_series_cell_removed(w->reg, si);
        w->cells[ci].next = w->free_cells;
        w->free_cells = ci;
        w->open--;
}

static inline __attribute__((always_inline)) void cell_add(struct cell *c, double v, int64_t ts)
{
        double t = c->sum + v;

        if (c->count == 0) {
                c->min = c->max = c->first = c->last = v;
                c->first_ts = c->last_ts = ts;
        } else {
                c->min = v < c->min ? v : c->min;
                c->max = v > c->max ? v : c->max;
                /* first/last by event time; on a tie the earlier arrival is
                 * first and the later one last */
                if (ts < c->first_ts) {
                        c->first = v;
                        c->first_ts = ts;
                }
                if (ts >= c->last_ts) {
                        c->last = v;
                        c->last_ts = ts;
                }
        }
        if (fabs(c->sum) >= fabs(v))
                c->comp += (c->sum - t) + v;
        else
                c->comp += (v - t) + c->sum;
        c->sum = t;
        c->count++;
}

int agent_window_add(struct agent_window *w, const struct agent_reading *rd, uint8_t flags,
                     uint64_t pos, int64_t arrival_us)
{
        if (!rd->sensor_len || !rd->metric_len || rd->sensor_len > AGENT_RING_NAME_MAX ||
            rd->metric_len > AGENT_RING_NAME_MAX || rd->ts_us == AGENT_TS_NONE)
                return -EINVAL;
        return agent_window_add_series(w, AGENT_WINDOW_SERIES_LOOKUP, rd, flags, pos, arrival_us);
}

/* Where a reading goes: its window k, or why none (an agent_window_result). */
static int classify(struct agent_window *w, int64_t ts, uint8_t flags, int64_t arrival_us,
                    int64_t *ret_k)
{
        int64_t k, end;

        if ((flags & AGENT_RING_F_TS_IMPLAUSIBLE) ||
            (!(flags & AGENT_WINDOW_F_PLAUSIBLE) && !agent_window_ts_plausible(w, ts, arrival_us)))
                return AGENT_WINDOW_IMPLAUSIBLE;
        /* most readings fall in the window of the one before: no division */
        if (ts >= w->cached_start && ts < w->cached_end) {
                k = w->cached_k;
                end = w->cached_end;
        } else {
                k = floor_div(ts, w->o.window_us);
                end = k_end(w, k);
                w->cached_k = k;
                w->cached_start = k_start(w, k);
                w->cached_end = end;
        }
        if (end <= w->wm || sat_add(end, w->o.grace_us) <= arrival_us)
                return AGENT_WINDOW_LATE;
        *ret_k = k;
        return AGENT_WINDOW_ADDED;
}

static inline __attribute__((always_inline)) int add_one(struct agent_window *w, uint32_t si,
                                                         const struct agent_reading *rd, int64_t k,
                                                         uint64_t pos)
{
        bool null = rd->value_null;
        struct cell *c;
        struct slot *sl;
        uint32_t ci;

        if (!null && !isfinite(rd->value)) {
                w->st.nonfinite++;
                null = true;
        }
        if (si == NIL) {
                w->st.dropped_series++;
                return AGENT_WINDOW_DROPPED;
        }
        ci = cell_get(w, si, k, pos);
        if (ci == NIL) {
                w->st.dropped_windows++;
                return AGENT_WINDOW_DROPPED;
        }
        c = &w->cells[ci];
        if (!null)
                cell_add(c, rd->value, rd->ts_us);
        if (pos < c->min_pos)
                c->min_pos = pos;
        sl = &w->slots[c->slot];
        if (pos < sl->min_pos)
                sl->min_pos = pos;
        w->st.added++;
        return AGENT_WINDOW_ADDED;
}

static void count(struct agent_window *w, int verdict)
{
        if (verdict == AGENT_WINDOW_IMPLAUSIBLE)
                w->st.implausible++;
        else
                w->st.late++;
}

int agent_window_add_series(struct agent_window *w, uint32_t si, const struct agent_reading *rd,
                            uint8_t flags, uint64_t pos, int64_t arrival_us)
{
        int64_t k = 0;
        int v;

        if (rd->ts_us == AGENT_TS_NONE)
                return -EINVAL;
        v = classify(w, rd->ts_us, flags, arrival_us, &k);
        if (v != AGENT_WINDOW_ADDED) {
                count(w, v);
                return v;
        }
        if (si == AGENT_WINDOW_SERIES_LOOKUP)
                si = series_get(w, rd);
        return add_one(w, si, rd, k, pos);
}

void agent_window_add_group(struct agent_window *w, const uint32_t *series,
                            const struct agent_reading *rd, const uint8_t *flags, size_t n,
                            uint64_t pos, int64_t arrival_us)
{
        int64_t k = 0;
        int v = -EINVAL;

        for (size_t i = 0; i < n; i++) {
                /* readings of a record mostly share their time */
                if (i == 0 || rd[i].ts_us != rd[i - 1].ts_us || flags[i] != flags[i - 1])
                        v = rd[i].ts_us == AGENT_TS_NONE
                                    ? -EINVAL
                                    : classify(w, rd[i].ts_us, flags[i], arrival_us, &k);
                if (v == AGENT_WINDOW_ADDED)
                        add_one(w, series[i], &rd[i], k, pos);
                else if (v != -EINVAL)
                        count(w, v);
        }
}

/* ---- closing ---- */

static int cmp_names(const char *a, size_t al, const char *b, size_t bl)
{
        int c = memcmp(a, b, al < bl ? al : bl);

        return c ? c : (al > bl) - (al < bl);
}

static int cmp_cells(const void *a, const void *b, void *userdata)
{
        const struct agent_window *w = userdata;
        uint32_t x = w->cells[*(const uint32_t *)a].series,
                 y = w->cells[*(const uint32_t *)b].series;
        const char *xs, *ys;
        size_t xl, yl;
        int c;

        if (w->reg->series[x].sensor != w->reg->series[y].sensor) {
                xs = agent_series_sensor(w->reg, x, &xl);
                ys = agent_series_sensor(w->reg, y, &yl);
                c = cmp_names(xs, xl, ys, yl);
                if (c)
                        return c;
        }
        xs = agent_series_metric(w->reg, x, &xl);
        ys = agent_series_metric(w->reg, y, &yl);
        return cmp_names(xs, xl, ys, yl);
}

static void cell_row(const struct agent_window *w, const struct cell *c, struct floe_agg_row *row)
{
        double sum = c->sum + c->comp;

        *row = (struct floe_agg_row){
                .window_start_us = k_start(w, c->k),
                .window_s = (uint32_t)(w->o.window_us / US_PER_S),
                .count = c->count,
                .v = {[FLOE_AGG_SUM] = sum,
                      [FLOE_AGG_MIN] = c->min,
                      [FLOE_AGG_MAX] = c->max,
                      [FLOE_AGG_FIRST] = c->first,
                      [FLOE_AGG_LAST] = c->last},
        };
        /* a sum past the double range is unknown, not infinite */
        row->null[FLOE_AGG_SUM] = !isfinite(sum);
        for (int i = 0; i < FLOE_AGG_NCOLS; i++) {
                row->null[i] |= c->count == 0;
                if (row->null[i])
                        row->v[i] = 0;
        }
}

/* Emit (fn) or discard (fn NULL) the cells of one slot, sorted; on a
 * callback error the rest stay in the slot. */
static int slot_close(struct agent_window *w, struct slot *sl, agent_window_emit_fn fn,
                      void *userdata)
{
        uint32_t n = 0, i;
        int r = 0;

        for (uint32_t ci = sl->cells; ci != NIL; ci = w->cells[ci].slot_next)
                w->order[n++] = ci;
        if (fn)
                qsort_r(w->order, n, sizeof(*w->order), cmp_cells, w);
        for (i = 0; i < n; i++) {
                const struct cell *c = &w->cells[w->order[i]];
                struct floe_agg_row row;
                const char *sensor, *metric;
                size_t slen, mlen;

                if (fn) {
                        cell_row(w, c, &row);
                        sensor = agent_series_sensor(w->reg, c->series, &slen);
                        metric = agent_series_metric(w->reg, c->series, &mlen);
                        r = fn(userdata, sensor, slen, metric, mlen, &row);
                        if (r < 0)
                                break;
                        w->st.emitted++;
                } else {
                        w->st.discarded++;
                }
                cell_release(w, w->order[i]);
        }
        /* what is left, in emission order */
        sl->cells = NIL;
        sl->n = n - i;
        sl->min_pos = UINT64_MAX;
        for (uint32_t j = n; j > i; j--) {
                struct cell *c = &w->cells[w->order[j - 1]];

                c->slot_next = sl->cells;
                sl->cells = w->order[j - 1];
                if (c->min_pos < sl->min_pos)
                        sl->min_pos = c->min_pos;
        }
        return r;
}

/* The open slot with the lowest k whose start (use_end false) or end is at
 * or before limit. */
static struct slot *slot_first(struct agent_window *w, int64_t limit, bool use_end)
{
        struct slot *best = NULL;

        for (uint32_t i = 0; i < w->nslots; i++) {
                struct slot *sl = &w->slots[i];

                if (sl->n && (use_end ? k_end(w, sl->k) : k_start(w, sl->k)) <= limit &&
                    (!best || sl->k < best->k))
                        best = sl;
        }
        return best;
}

static void wm_raise(struct agent_window *w, int64_t wm)
{
        if (wm > w->wm)
                w->wm = wm;
}

static int close_until(struct agent_window *w, int64_t limit, bool use_end, agent_window_emit_fn fn,
                       void *userdata)
{
        struct slot *sl;

        while ((sl = slot_first(w, limit, use_end))) {
                int64_t end = k_end(w, sl->k);
                int r = slot_close(w, sl, fn, userdata);

                if (r < 0)
                        return r;
                wm_raise(w, end);
        }
        return 0;
}

int agent_window_close_due(struct agent_window *w, int64_t now_us, agent_window_emit_fn fn,
                           void *userdata)
{
        int64_t limit = sat_add(now_us, -w->o.grace_us);
        int r = close_until(w, limit, true, fn, userdata);

        if (r == 0)
                wm_raise(w, k_start(w, floor_div(limit, w->o.window_us)));
        return r;
}

int agent_window_flush_all(struct agent_window *w, int64_t now_us, agent_window_emit_fn fn,
                           void *userdata)
{
        int r = close_until(w, now_us, false, fn, userdata);

        if (r == 0)
                wm_raise(w, k_end(w, floor_div(now_us, w->o.window_us)));
        return r;
}

int64_t agent_window_watermark(const struct agent_window *w)
{
        return w->wm;
}

int agent_window_set_watermark(struct agent_window *w, int64_t watermark_us)
{
        wm_raise(w, watermark_us);
        return close_until(w, w->wm, true, NULL, NULL);
}

int agent_window_oldest_pos(const struct agent_window *w, uint64_t *ret_pos)
{
        uint64_t min = UINT64_MAX;
        bool any = false;

        for (uint32_t i = 0; i < w->nslots; i++)
                if (w->slots[i].n) {
                        any = true;
                        if (w->slots[i].min_pos < min)
                                min = w->slots[i].min_pos;
                }
        if (!any)
                return -ENOENT;
        *ret_pos = min;
        return 0;
}

void agent_window_stats(const struct agent_window *w, struct agent_window_stats *ret)
{
        *ret = w->st;
        ret->series = w->reg->live;
        ret->open_windows = w->open;
}
