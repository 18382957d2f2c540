/* SPDX-License-Identifier: Apache-2.0 */
#include "window.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ring.h"

#define NIL            UINT32_MAX
#define US_PER_S       1000000LL
#define MAX_SERIES     (1u << 24)
#define MAX_WINDOWS    (1u << 26)
#define MAX_DURATION   (1LL << 40) /* grace and max_future: ~12 days */
#define COMPACT_SHARE  8           /* rebuild when 1/8 of the series are idle */
#define MAX_NAME_BYTES UINT32_MAX

/* One series' aggregate over one window. */
struct cell {
        int64_t k;          /* window index: start = k * L */
        uint32_t series;    /* index into series[] */
        uint32_t next;      /* next cell of the series, or of the free list */
        uint32_t slot_next; /* next cell of the same window start */
        uint32_t slot;      /* index into slots[] */
        uint64_t min_pos;
        uint64_t count;
        double sum, comp; /* Neumaier: sum + comp is the total */
        double min, max, first, last;
        int64_t first_ts, last_ts;
};

struct series {
        uint32_t name_off; /* sensor then metric bytes in names[] */
        uint8_t sensor_len;
        uint8_t metric_len;
        uint16_t ncells;
        uint32_t hash;
        uint32_t cells;
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
        struct series *series;
        uint32_t nseries, idle;
        uint32_t hint; /* the series found last: readings repeat their order */
        int64_t cached_k, cached_start, cached_end; /* the window of the last reading */
        uint32_t *table;                            /* open addressing: series index + 1, 0 empty */
        uint32_t tmask;
        char *names;
        uint64_t names_used;
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

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

int64_t agent_window_build_floor_us(void)
{
        static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
        const char *date = __DATE__; /* "Mmm dd yyyy", day space-padded */
        const char *m = strstr(months, (char[4]){date[0], date[1], date[2], 0});
        unsigned day = (unsigned)((date[4] == ' ' ? 0 : date[4] - '0') * 10 + date[5] - '0');
        int64_t year = (date[7] - '0') * 1000 + (date[8] - '0') * 100 + (date[9] - '0') * 10 +
                       (date[10] - '0');

        if (!m)
                return 0;
        return (days_from_civil(year, (unsigned)((m - months) / 3 + 1), day) - 1) * 86400 *
               US_PER_S;
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
        uint64_t tsize = 1, nslots;

        if (o->window_us < US_PER_S || o->window_us % US_PER_S ||
            o->window_us / US_PER_S > UINT32_MAX || o->grace_us < 0 || o->grace_us > MAX_DURATION ||
            o->max_future_us < 0 || o->max_future_us > MAX_DURATION || o->max_series == 0 ||
            o->max_series > MAX_SERIES || o->max_windows == 0 || o->max_windows > MAX_WINDOWS ||
            o->name_bytes < 2 || o->name_bytes > MAX_NAME_BYTES)
                return -EINVAL;
        while (tsize < 2ULL * o->max_series)
                tsize <<= 1;
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
        w->tmask = (uint32_t)(tsize - 1);
        w->nslots = (uint32_t)nslots;
        w->free_cells = NIL;
        w->series = floe_calloc(o->max_series, sizeof(*w->series));
        w->table = floe_calloc(tsize, sizeof(*w->table));
        w->names = floe_malloc(o->name_bytes);
        w->cells = floe_calloc(o->max_windows, sizeof(*w->cells));
        w->slots = floe_calloc(nslots, sizeof(*w->slots));
        w->order = floe_calloc(o->max_windows, sizeof(*w->order));
        if (!w->series || !w->table || !w->names || !w->cells || !w->slots || !w->order) {
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
        floe_free(w->series);
        floe_free(w->table);
        floe_free(w->names);
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

static uint32_t series_hash(const struct agent_reading *rd)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (size_t i = 0; i < rd->sensor_len; i++)
                h = (h ^ (uint8_t)rd->sensor[i]) * 0x100000001b3ULL;
        h = (h ^ 0x1ff) * 0x100000001b3ULL; /* no byte value: "ab"+"c" != "a"+"bc" */
        for (size_t i = 0; i < rd->metric_len; i++)
                h = (h ^ (uint8_t)rd->metric[i]) * 0x100000001b3ULL;
        return (uint32_t)(h ^ (h >> 32));
}

static void table_insert(struct agent_window *w, uint32_t idx)
{
        uint32_t i = w->series[idx].hash & w->tmask;

        while (w->table[i])
                i = (i + 1) & w->tmask;
        w->table[i] = idx + 1;
}

/* Drop series without open windows; names and indices move down in order. */
static void compact(struct agent_window *w)
{
        uint32_t n = 0;
        uint64_t used = 0;

        w->hint = 0;
        for (uint32_t i = 0; i < w->nseries; i++) {
                struct series s = w->series[i];
                uint32_t len = (uint32_t)s.sensor_len + s.metric_len;

                if (!s.ncells)
                        continue;
                memmove(w->names + used, w->names + s.name_off, len);
                s.name_off = (uint32_t)used;
                used += len;
                for (uint32_t c = s.cells; c != NIL; c = w->cells[c].next)
                        w->cells[c].series = n;
                w->series[n++] = s;
        }
        w->nseries = n;
        w->names_used = used;
        w->idle = 0;
        memset(w->table, 0, ((size_t)w->tmask + 1) * sizeof(*w->table));
        for (uint32_t i = 0; i < n; i++)
                table_insert(w, i);
        w->st.compactions++;
}

static uint32_t series_get(struct agent_window *w, const struct agent_reading *rd)
{
        uint32_t h = series_hash(rd), i = h & w->tmask, idx;
        uint64_t len = rd->sensor_len + rd->metric_len;
        struct series *s;

        /* Series are numbered in arrival order and sensors report in a
         * steady order: the one after the last hit is the likely match, and
         * it sits next to it in memory, unlike a hash table slot. */
        for (uint32_t g = w->hint + 1, tries = 0; tries < 2; g = w->hint, tries++) {
                if (g >= w->nseries)
                        continue;
                s = &w->series[g];
                if (s->hash == h && s->sensor_len == rd->sensor_len &&
                    s->metric_len == rd->metric_len &&
                    memcmp(w->names + s->name_off, rd->sensor, rd->sensor_len) == 0 &&
                    memcmp(w->names + s->name_off + rd->sensor_len, rd->metric, rd->metric_len) ==
                            0) {
                        w->hint = g;
                        return g;
                }
        }
        for (; w->table[i]; i = (i + 1) & w->tmask) {
                s = &w->series[w->table[i] - 1];
                if (s->hash == h && s->sensor_len == rd->sensor_len &&
                    s->metric_len == rd->metric_len &&
                    memcmp(w->names + s->name_off, rd->sensor, rd->sensor_len) == 0 &&
                    memcmp(w->names + s->name_off + rd->sensor_len, rd->metric, rd->metric_len) ==
                            0) {
                        w->hint = w->table[i] - 1;
                        return w->hint;
                }
        }
        if (w->nseries == w->o.max_series || w->names_used + len > w->o.name_bytes) {
                if (w->idle == 0 || (uint64_t)w->idle * COMPACT_SHARE < w->nseries)
                        return NIL;
                compact(w);
                if (w->nseries == w->o.max_series || w->names_used + len > w->o.name_bytes)
                        return NIL;
        }
        idx = w->nseries++;
        s = &w->series[idx];
        *s = (struct series){.name_off = (uint32_t)w->names_used,
                             .sensor_len = (uint8_t)rd->sensor_len,
                             .metric_len = (uint8_t)rd->metric_len,
                             .hash = h,
                             .cells = NIL};
        memcpy(w->names + w->names_used, rd->sensor, rd->sensor_len);
        memcpy(w->names + w->names_used + rd->sensor_len, rd->metric, rd->metric_len);
        w->names_used += len;
        w->idle++;
        table_insert(w, idx);
        w->hint = idx;
        return idx;
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

static uint32_t cell_get(struct agent_window *w, uint32_t si, int64_t k, uint64_t pos)
{
        struct series *s = &w->series[si];
        struct slot *sl;
        struct cell *c;
        uint32_t ci;

        for (ci = s->cells; ci != NIL; ci = w->cells[ci].next)
                if (w->cells[ci].k == k)
                        return ci;
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
        if (s->ncells++ == 0)
                w->idle--;
        sl->cells = ci;
        sl->n++;
        w->open++;
        return ci;
}

/* Back to the free list; the caller fixes the slot's list. */
static void cell_release(struct agent_window *w, uint32_t ci)
{
        struct series *s = &w->series[w->cells[ci].series];
        uint32_t *p = &s->cells;

        while (*p != ci)
                p = &w->cells[*p].next;
        *p = w->cells[ci].next;
        if (--s->ncells == 0)
                w->idle++;
        w->cells[ci].next = w->free_cells;
        w->free_cells = ci;
        w->open--;
}

static void cell_add(struct cell *c, double v, int64_t ts)
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
        bool null = rd->value_null;
        int64_t k, end;
        uint32_t si, ci;
        struct slot *sl;

        if (!rd->sensor_len || !rd->metric_len || rd->sensor_len > AGENT_RING_NAME_MAX ||
            rd->metric_len > AGENT_RING_NAME_MAX || rd->ts_us == AGENT_TS_NONE)
                return -EINVAL;
        if ((flags & AGENT_RING_F_TS_IMPLAUSIBLE) ||
            !agent_window_ts_plausible(w, rd->ts_us, arrival_us)) {
                w->st.implausible++;
                return AGENT_WINDOW_IMPLAUSIBLE;
        }
        /* most readings fall in the window of the one before: no division */
        if (rd->ts_us >= w->cached_start && rd->ts_us < w->cached_end) {
                k = w->cached_k;
                end = w->cached_end;
        } else {
                k = floor_div(rd->ts_us, w->o.window_us);
                end = k_end(w, k);
                w->cached_k = k;
                w->cached_start = k_start(w, k);
                w->cached_end = end;
        }
        if (end <= w->wm || sat_add(end, w->o.grace_us) <= arrival_us) {
                w->st.late++;
                return AGENT_WINDOW_LATE;
        }
        if (!null && !isfinite(rd->value)) {
                w->st.nonfinite++;
                null = true;
        }
        si = series_get(w, rd);
        if (si == NIL) {
                w->st.dropped_series++;
                return AGENT_WINDOW_DROPPED;
        }
        ci = cell_get(w, si, k, pos);
        if (ci == NIL) {
                w->st.dropped_windows++;
                return AGENT_WINDOW_DROPPED;
        }
        if (!null)
                cell_add(&w->cells[ci], rd->value, rd->ts_us);
        if (pos < w->cells[ci].min_pos)
                w->cells[ci].min_pos = pos;
        sl = &w->slots[w->cells[ci].slot];
        if (pos < sl->min_pos)
                sl->min_pos = pos;
        w->st.added++;
        return AGENT_WINDOW_ADDED;
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
        const struct series *x = &w->series[w->cells[*(const uint32_t *)a].series];
        const struct series *y = &w->series[w->cells[*(const uint32_t *)b].series];
        int c = cmp_names(w->names + x->name_off, x->sensor_len, w->names + y->name_off,
                          y->sensor_len);

        return c ? c
                 : cmp_names(w->names + x->name_off + x->sensor_len, x->metric_len,
                             w->names + y->name_off + y->sensor_len, y->metric_len);
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
                const struct series *s = &w->series[c->series];
                struct floe_agg_row row;

                if (fn) {
                        cell_row(w, c, &row);
                        r = fn(userdata, w->names + s->name_off, s->sensor_len,
                               w->names + s->name_off + s->sensor_len, s->metric_len, &row);
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
        ret->series = w->nseries;
        ret->open_windows = w->open;
}
