/* SPDX-License-Identifier: Apache-2.0 */
#include "series.h"

#include <errno.h>

#include "floe-alloc.h"

#define NAME_MAX_LEN  255
#define NAME_HDR      5 /* arena: u8 length, u8 kind, u24 id; then the name */
#define COMPACT_SHARE 8 /* evict when 1/8 of the series are idle */

enum { KIND_SENSOR, KIND_METRIC };

static uint32_t hash_pair(uint32_t hs, uint32_t hm)
{
        uint64_t h = ((uint64_t)hs << 32 | hm) * 0x9e3779b97f4a7c15ULL;

        return (uint32_t)(h >> 32);
}

static uint32_t table_size(uint32_t n)
{
        uint32_t t = 16;

        while (t < 2 * n)
                t <<= 1;
        return t;
}

static int table_init(struct agent_series_table *t, uint32_t max)
{
        uint32_t n = table_size(max);

        t->e = floe_calloc(max, sizeof(*t->e));
        t->slots = floe_calloc(n, sizeof(*t->slots));
        t->mask = n - 1;
        t->free = AGENT_SERIES_NONE;
        return t->e && t->slots ? 0 : -ENOMEM;
}

static void table_fini(struct agent_series_table *t)
{
        floe_free(t->e);
        floe_free(t->slots);
}

int agent_series_new(uint32_t max_series, uint64_t name_bytes, struct agent_series_reg **ret)
{
        struct agent_series_reg *r;
        uint64_t cap;
        int e;

        if (max_series == 0 || max_series > (1u << 24) || name_bytes == 0)
                return -EINVAL;
        /* the name headers come on top of name_bytes */
        cap = name_bytes + (uint64_t)NAME_HDR * 2 * max_series;
        r = floe_calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->max = max_series;
        r->free = AGENT_SERIES_NONE;
        r->mask = table_size(max_series) - 1;
        r->series = floe_calloc(max_series, sizeof(*r->series));
        r->slots = floe_calloc((size_t)r->mask + 1, sizeof(*r->slots));
        r->name_bytes_max = name_bytes;
        r->arena = floe_malloc(cap);
        e = table_init(&r->sensors, max_series);
        e = e ?: table_init(&r->metrics, max_series);
        if (e < 0 || !r->series || !r->slots || !r->arena) {
                agent_series_free(r);
                return -ENOMEM;
        }
        *ret = r;
        return 0;
}

struct agent_series_reg *agent_series_free(struct agent_series_reg *r)
{
        if (!r)
                return NULL;
        floe_free(r->series);
        floe_free(r->slots);
        floe_free(r->arena);
        table_fini(&r->sensors);
        table_fini(&r->metrics);
        floe_free(r);
        return NULL;
}

/* ---- names ---- */

/* The id of a name, or AGENT_SERIES_NONE; *ret_slot gets the empty slot where it would go. */
static uint32_t name_find(const struct agent_series_reg *r, const struct agent_series_table *t,
                          const char *s, size_t len, uint32_t h, uint32_t *ret_slot)
{
        uint32_t i = h & t->mask;

        for (; t->slots[i]; i = (i + 1) & t->mask) {
                const struct agent_series_name *n = &t->e[t->slots[i] - 1];

                if (n->hash == h && agent_series_name_is(r, n, s, len))
                        return t->slots[i] - 1;
        }
        *ret_slot = i;
        return AGENT_SERIES_NONE;
}

static uint32_t name_add(struct agent_series_reg *r, struct agent_series_table *t, int kind,
                         const char *s, size_t len, uint32_t h, uint32_t slot)
{
        char *p = r->arena + r->arena_used;
        uint32_t id;

        if (t->free != AGENT_SERIES_NONE) {
                id = t->free;
                t->free = t->e[id].off;
        } else {
                id = t->hw++;
        }
        p[0] = (char)len;
        p[1] = (char)kind;
        p[2] = (char)(id & 0xff);
        p[3] = (char)(id >> 8 & 0xff);
        p[4] = (char)(id >> 16 & 0xff);
        memcpy(p + NAME_HDR, s, len);
        t->e[id] = (struct agent_series_name){
                .off = (uint32_t)(r->arena_used + NAME_HDR), .len = (uint32_t)len, .hash = h};
        r->arena_used += NAME_HDR + len;
        r->name_bytes += len;
        t->slots[slot] = id + 1;
        return id;
}

/* ---- series ---- */

int agent_series_lookup(struct agent_series_reg *r, const char *sensor, size_t slen,
                        const char *metric, size_t mlen, uint32_t *ret_id)
{
        uint32_t hs, hm, h, i, sid, mid, sslot = 0, mslot = 0, id;
        uint64_t need = 0;

        if (slen == 0 || slen > NAME_MAX_LEN || mlen == 0 || mlen > NAME_MAX_LEN)
                return -EINVAL;
        hs = agent_bytes_hash(sensor, slen);
        hm = agent_bytes_hash(metric, mlen);
        h = hash_pair(hs, hm);
        for (i = h & r->mask; r->slots[i]; i = (i + 1) & r->mask) {
                id = r->slots[i] - 1;
                if (r->series[id].hash == h && agent_series_is(r, id, sensor, slen, metric, mlen)) {
                        *ret_id = id;
                        return 0;
                }
        }
        if (r->live == r->max)
                return -ENOSPC;
        sid = name_find(r, &r->sensors, sensor, slen, hs, &sslot);
        mid = name_find(r, &r->metrics, metric, mlen, hm, &mslot);
        need = (sid == AGENT_SERIES_NONE ? slen : 0) + (mid == AGENT_SERIES_NONE ? mlen : 0);
        if (r->name_bytes + need > r->name_bytes_max)
                return -ENOSPC;
        if (sid == AGENT_SERIES_NONE)
                sid = name_add(r, &r->sensors, KIND_SENSOR, sensor, slen, hs, sslot);
        if (mid == AGENT_SERIES_NONE)
                mid = name_add(r, &r->metrics, KIND_METRIC, metric, mlen, hm, mslot);
        r->sensors.e[sid].refs++;
        r->metrics.e[mid].refs++;
        if (r->free != AGENT_SERIES_NONE) {
                id = r->free;
                r->free = r->series[id].succ;
        } else {
                id = r->hw++;
        }
        r->series[id] = (struct agent_series){.sensor = sid,
                                              .metric = mid,
                                              .hash = h,
                                              .succ = AGENT_SERIES_NONE,
                                              .cells = AGENT_SERIES_NONE};
        r->slots[i] = id + 1;
        r->live++;
        r->idle++;
        *ret_id = id;
        return 0;
}

static void name_release(struct agent_series_table *t, uint32_t id)
{
        struct agent_series_name *n = &t->e[id];

        if (--n->refs > 0)
                return;
        *n = (struct agent_series_name){.off = t->free};
        t->free = id;
}

/* Moves the live names down over the freed ones, in arena order. */
static void arena_compact(struct agent_series_reg *r)
{
        uint64_t from = 0, to = 0;

        r->name_bytes = 0;
        while (from < r->arena_used) {
                const unsigned char *p = (const unsigned char *)r->arena + from;
                uint32_t len = p[0], id = p[2] | (uint32_t)p[3] << 8 | (uint32_t)p[4] << 16;
                struct agent_series_table *t = p[1] == KIND_SENSOR ? &r->sensors : &r->metrics;
                struct agent_series_name *n = id < t->hw ? &t->e[id] : NULL;

                if (n && n->len == len && n->off == from + NAME_HDR) {
                        memmove(r->arena + to, p, NAME_HDR + len);
                        n->off = (uint32_t)(to + NAME_HDR);
                        to += NAME_HDR + len;
                        r->name_bytes += len;
                }
                from += NAME_HDR + len;
        }
        r->arena_used = to;
}

static void table_rehash(struct agent_series_table *t)
{
        memset(t->slots, 0, ((size_t)t->mask + 1) * sizeof(*t->slots));
        for (uint32_t id = 0; id < t->hw; id++) {
                uint32_t i;

                if (!t->e[id].len)
                        continue;
                for (i = t->e[id].hash & t->mask; t->slots[i]; i = (i + 1) & t->mask)
                        ;
                t->slots[i] = id + 1;
        }
}

int agent_series_evict_idle(struct agent_series_reg *r)
{
        if (r->idle == 0 || (uint64_t)r->idle * COMPACT_SHARE < r->live)
                return -ENOSPC;
        for (uint32_t id = 0; id < r->hw; id++) {
                struct agent_series *se = &r->series[id];

                if (se->sensor == AGENT_SERIES_NONE || se->ncells)
                        continue;
                name_release(&r->sensors, se->sensor);
                name_release(&r->metrics, se->metric);
                *se = (struct agent_series){.sensor = AGENT_SERIES_NONE, .succ = r->free};
                r->free = id;
                r->live--;
        }
        r->idle = 0;
        arena_compact(r);
        table_rehash(&r->sensors);
        table_rehash(&r->metrics);
        memset(r->slots, 0, ((size_t)r->mask + 1) * sizeof(*r->slots));
        for (uint32_t id = 0; id < r->hw; id++) {
                uint32_t i;

                if (r->series[id].sensor == AGENT_SERIES_NONE)
                        continue;
                for (i = r->series[id].hash & r->mask; r->slots[i]; i = (i + 1) & r->mask)
                        ;
                r->slots[i] = id + 1;
        }
        r->evictions++;
        return 0;
}

void agent_series_clear_stamps(struct agent_series_reg *r)
{
        for (uint32_t id = 0; id < r->hw; id++)
                r->series[id].batch_gen = 0;
        for (uint32_t id = 0; id < r->sensors.hw; id++)
                r->sensors.e[id].batch_gen = 0;
        for (uint32_t id = 0; id < r->metrics.hw; id++)
                r->metrics.e[id].batch_gen = 0;
}
