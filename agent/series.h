/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The series registry: every (sensor, metric) pair in use gets a small id,
 * stable while the pair is in use, so that each reading is looked up once
 * and the windows and the event batch take the id. Sensor and metric names
 * are stored once each. Readings repeat their order (a payload lists its
 * metrics in the same order every time, sensors report in a steady order),
 * so the series after the previous one is tried first and checked by its
 * names before the hash tables are used.
 *
 * Ids are reused only after agent_series_evict_idle(): a series is idle when
 * no window holds it (cells 0); its user owns the other per-series fields.
 * All memory is allocated by agent_series_new(); nothing per reading.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"

#define AGENT_SERIES_NONE UINT32_MAX

struct agent_series {
        uint32_t sensor; /* name id in sensors[]; AGENT_SERIES_NONE: a free id */
        uint32_t metric; /* name id in metrics[] */
        uint32_t hash;
        uint32_t succ;      /* the series looked up after this one, last time */
        uint32_t cells;     /* windows: first open cell */
        uint32_t ncells;    /* windows: open cells; 0 means idle */
        uint32_t batch_gen; /* pipeline: the event batch holding the series, 0 none */
        uint32_t batch_idx; /* pipeline: its series index there */
};

struct agent_series_name {
        uint32_t off; /* in the name arena */
        uint32_t len; /* 1..255; 0: a free id */
        uint32_t hash;
        uint32_t refs;      /* series using the name */
        uint32_t batch_gen; /* pipeline: the event batch holding the name, 0 none */
        uint32_t batch_idx; /* pipeline: its dictionary index there */
};

struct agent_series_table {
        struct agent_series_name *e;
        uint32_t hw;     /* ids below were handed out */
        uint32_t free;   /* a free id below hw, or AGENT_SERIES_NONE */
        uint32_t *slots; /* open addressing: id + 1, 0 empty */
        uint32_t mask;
};

struct agent_series_reg {
        struct agent_series *series;
        uint32_t max;
        uint32_t hw;     /* ids below were handed out */
        uint32_t live;   /* series in use */
        uint32_t idle;   /* of them, without open windows */
        uint32_t free;   /* head of the free ids, chained through succ */
        uint32_t *slots; /* open addressing over series: id + 1, 0 empty */
        uint32_t mask;
        struct agent_series_table sensors, metrics;
        char *arena; /* names, each after a 5-byte header */
        uint64_t arena_used;
        uint64_t name_bytes, name_bytes_max; /* of the names alone */
        uint64_t evictions;                  /* agent_series_evict_idle() rounds that freed ids */
};

int agent_series_new(uint32_t max_series, uint64_t name_bytes, struct agent_series_reg **ret);
struct agent_series_reg *agent_series_free(struct agent_series_reg *r);

static inline const char *agent_series_sensor(const struct agent_series_reg *r, uint32_t id,
                                              size_t *ret_len)
{
        const struct agent_series_name *n = &r->sensors.e[r->series[id].sensor];

        *ret_len = n->len;
        return r->arena + n->off;
}

static inline const char *agent_series_metric(const struct agent_series_reg *r, uint32_t id,
                                              size_t *ret_len)
{
        const struct agent_series_name *n = &r->metrics.e[r->series[id].metric];

        *ret_len = n->len;
        return r->arena + n->off;
}

static inline bool agent_series_name_is(const struct agent_series_reg *r,
                                        const struct agent_series_name *n, const char *s,
                                        size_t len)
{
        return n->len == len && agent_bytes_eq(r->arena + n->off, s, len);
}

/* Whether id is the live series (sensor, metric). */
static inline bool agent_series_is(const struct agent_series_reg *r, uint32_t id,
                                   const char *sensor, size_t slen, const char *metric, size_t mlen)
{
        const struct agent_series *se;

        if (id >= r->hw)
                return false;
        se = &r->series[id];
        return se->sensor != AGENT_SERIES_NONE &&
               agent_series_name_is(r, &r->metrics.e[se->metric], metric, mlen) &&
               agent_series_name_is(r, &r->sensors.e[se->sensor], sensor, slen);
}

int agent_series_lookup(struct agent_series_reg *r, const char *sensor, size_t slen,
                        const char *metric, size_t mlen, uint32_t *ret_id);

/*
 * The id of (sensor, metric), added if new. prev is the series looked up
 * before (or AGENT_SERIES_NONE): its successor is tried first, and becomes
 * this one. Names are 1..255 bytes (-EINVAL otherwise). -ENOSPC when the
 * registry or the name arena is full: agent_series_evict_idle() may make room.
 */
static inline int agent_series_get(struct agent_series_reg *r, const char *sensor, size_t slen,
                                   const char *metric, size_t mlen, uint32_t prev, uint32_t *ret_id)
{
        struct agent_series *p = prev < r->hw && r->series[prev].sensor != AGENT_SERIES_NONE
                                         ? &r->series[prev]
                                         : NULL;
        uint32_t c = p ? p->succ : AGENT_SERIES_NONE;
        int e;

        if (agent_series_is(r, c, sensor, slen, metric, mlen)) {
                *ret_id = c;
                return 0;
        }
        e = agent_series_lookup(r, sensor, slen, metric, mlen, &c);
        if (e < 0)
                return e;
        if (p)
                p->succ = c;
        *ret_id = c;
        return 0;
}

/* Free every idle series (and names no longer used) if at least 1/8 of the
 * live ones are idle; -ENOSPC otherwise. Ids of live series do not change. */
int agent_series_evict_idle(struct agent_series_reg *r);

/* Forget every batch_gen stamp (a new user of the registry). */
void agent_series_clear_stamps(struct agent_series_reg *r);

/* The windows tell the registry when a series gets its first open window and
 * loses its last one. */
static inline void agent_series_cell_added(struct agent_series_reg *r, uint32_t id)
{
        if (r->series[id].ncells++ == 0)
                r->idle--;
}

static inline void agent_series_cell_removed(struct agent_series_reg *r, uint32_t id)
{
        if (--r->series[id].ncells == 0)
                r->idle++;
}
