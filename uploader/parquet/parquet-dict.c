/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-dict.h"

#define MIN_SLOTS 1024u

/* 64-bit multiply-mix over 8-byte words: strings here are short names. */
static uint64_t hash(const char *p, uint32_t len)
{
        const uint64_t k = UINT64_C(0x9e3779b97f4a7c15);
        uint64_t h = len * k, w;
        uint32_t i = 0;

        for (; i + 8 <= len; i += 8) {
                memcpy(&w, p + i, 8);
                h = (h ^ w) * k;
                h ^= h >> 29;
        }
        if (i < len) {
                w = 0;
                memcpy(&w, p + i, len - i);
                h = (h ^ w) * k;
        }
        h ^= h >> 32;
        h *= UINT64_C(0xd6e8feb86659fd93);
        h ^= h >> 32;
        return h;
}

static int grow_slots(struct parquet_dict *d)
{
        uint32_t nslots = d->slots ? (d->mask + 1) * 2 : MIN_SLOTS;
        uint64_t *s;

        if (nslots == 0 || nslots > (1u << 31))
                return -E2BIG;
        s = floe_calloc(nslots, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (d->slots) {
                for (uint32_t i = 0; i <= d->mask; i++) {
                        uint64_t e = d->slots[i];
                        uint32_t j;

                        if (e == 0)
                                continue;
                        /* the stored high hash bits pick the new slot */
                        for (j = (uint32_t)(e >> 32) & (nslots - 1); s[j] != 0;
                             j = (j + 1) & (nslots - 1))
                                ;
                        s[j] = e;
                }
                floe_free(d->slots);
        }
        d->slots = s;
        d->mask = nslots - 1;
        return 0;
}

int parquet_dict_intern(struct parquet_dict *d, const char *p, uint32_t len, uint32_t *ret)
{
        uint64_t h;
        uint32_t hi, j;
        uint8_t *e;
        int r;

        if (!p)
                p = "";
        h = hash(p, len);
        hi = (uint32_t)(h >> 32);

        if (!d->slots && (r = grow_slots(d)) < 0)
                return r;
        for (j = hi & d->mask;; j = (j + 1) & d->mask) {
                uint64_t s = d->slots[j];
                uint32_t idx;

                if (s == 0)
                        break;
                if ((uint32_t)(s >> 32) != hi)
                        continue;
                idx = (uint32_t)s - 1;
                e = d->plain.data + d->offsets[idx];
                if (parquet_get_le32(e) == len && memcmp(e + 4, p, len) == 0) {
                        *ret = idx;
                        return 0;
                }
        }
        if (d->n >= INT32_MAX || d->plain.len + 4 + (uint64_t)len > INT32_MAX)
                return -E2BIG;
        if (d->n == d->cap) {
                uint32_t cap = d->cap ? d->cap * 2 : 256;
                uint32_t *o = floe_reallocarray(d->offsets, cap, sizeof(*o));

                if (!o)
                        return -ENOMEM;
                d->offsets = o;
                d->cap = cap;
        }
        r = parquet_buf_reserve(&d->plain, 4 + (size_t)len);
        if (r < 0)
                return r;
        /* keep the load factor at most 1/2 */
        if ((uint64_t)(d->n + 1) * 2 > (uint64_t)d->mask + 1) {
                r = grow_slots(d);
                if (r < 0)
                        return r;
                for (j = hi & d->mask; d->slots[j] != 0; j = (j + 1) & d->mask)
                        ;
        }
        e = d->plain.data + d->plain.len;
        parquet_put_le32(e, len);
        if (len > 0)
                memcpy(e + 4, p, len);
        d->offsets[d->n] = (uint32_t)d->plain.len;
        d->plain.len += 4 + (size_t)len;
        d->slots[j] = (uint64_t)hi << 32 | (d->n + 1);
        *ret = d->n++;
        return 0;
}

void parquet_dict_reset(struct parquet_dict *d)
{
        if (d->slots && d->n > 0)
                memset(d->slots, 0, ((size_t)d->mask + 1) * sizeof(*d->slots));
        d->n = 0;
        d->plain.len = 0;
}

void parquet_dict_done(struct parquet_dict *d)
{
        parquet_buf_done(&d->plain);
        floe_free(d->offsets);
        floe_free(d->slots);
        *d = (struct parquet_dict){0};
}

size_t parquet_dict_memory(const struct parquet_dict *d)
{
        return d->plain.cap + (size_t)d->cap * 4 + (d->slots ? ((size_t)d->mask + 1) * 8 : 0);
}
