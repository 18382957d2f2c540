/* SPDX-License-Identifier: Apache-2.0 */
/* A stream's committed seqs: high-water mark plus ranges above it. */
#include "seqset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"

void upl_seqset_clear(struct upl_seqset *s)
{
        floe_free(s->r);
        *s = (struct upl_seqset){0};
}

/* Index of the first range with hi >= seq (n if none). */
static uint32_t find(const struct upl_seqset *s, uint64_t seq)
{
        uint32_t lo = 0, hi = s->n;

        while (lo < hi) {
                uint32_t mid = lo + (hi - lo) / 2;

                if (s->r[mid].hi < seq)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

bool upl_seqset_has(const struct upl_seqset *s, uint64_t seq)
{
        uint32_t i;

        if (seq == 0)
                return false;
        if (seq <= s->hwm)
                return true;
        i = find(s, seq);
        return i < s->n && s->r[i].lo <= seq;
}

static int reserve(struct upl_seqset *s, uint32_t n)
{
        struct upl_range *r;
        uint32_t cap;

        if (n <= s->cap)
                return 0;
        cap = s->cap ? s->cap * 2 : 4;
        while (cap < n)
                cap *= 2;
        r = floe_reallocarray(s->r, cap, sizeof(*r));
        if (!r)
                return -ENOMEM;
        s->r = r;
        s->cap = cap;
        return 0;
}

static void remove_at(struct upl_seqset *s, uint32_t i)
{
        memmove(&s->r[i], &s->r[i + 1], (s->n - i - 1) * sizeof(*s->r));
        s->n--;
}

/* The first range touching hwm + 1 joins the high-water mark. */
static void absorb(struct upl_seqset *s)
{
        while (s->n > 0 && s->r[0].lo == s->hwm + 1) {
                s->hwm = s->r[0].hi;
                remove_at(s, 0);
        }
}

int upl_seqset_add(struct upl_seqset *s, uint64_t seq)
{
        uint32_t i;
        int r;

        if (seq == 0 || seq > UPL_SEQ_MAX)
                return -EINVAL;
        if (upl_seqset_has(s, seq))
                return 0;
        if (seq == s->hwm + 1) {
                s->hwm = seq;
                absorb(s);
                return 0;
        }
        i = find(s, seq); /* r[i] (if any) lies above seq */
        if (i > 0 && s->r[i - 1].hi + 1 == seq) {
                s->r[i - 1].hi = seq;
                if (i < s->n && s->r[i].lo == seq + 1) {
                        s->r[i - 1].hi = s->r[i].hi;
                        remove_at(s, i);
                }
                return 0;
        }
        if (i < s->n && s->r[i].lo == seq + 1) {
                s->r[i].lo = seq;
                return 0;
        }
        r = reserve(s, s->n + 1);
        if (r < 0)
                return r;
        memmove(&s->r[i + 1], &s->r[i], (s->n - i) * sizeof(*s->r));
        s->r[i] = (struct upl_range){seq, seq};
        s->n++;
        return 0;
}

uint64_t upl_seqset_trim(struct upl_seqset *s, uint32_t max)
{
        uint64_t lost = 0;

        while (s->n > max) {
                lost += s->r[0].lo - s->hwm - 1;
                s->hwm = s->r[0].hi;
                remove_at(s, 0);
        }
        return lost;
}

int upl_seqset_copy(struct upl_seqset *dst, const struct upl_seqset *src)
{
        int r;

        if (dst == src)
                return 0;
        r = reserve(dst, src->n);
        if (r < 0)
                return r;
        if (src->n)
                memcpy(dst->r, src->r, src->n * sizeof(*src->r));
        dst->n = src->n;
        dst->hwm = src->hwm;
        return 0;
}

/* A decimal u64 without sign, leading zeros or overflow; *p moves past it. */
static int number(const char **p, uint64_t *ret)
{
        const char *s = *p;
        uint64_t v = 0;

        if (*s < '0' || *s > '9' || (*s == '0' && s[1] >= '0' && s[1] <= '9'))
                return -EBADMSG;
        for (; *s >= '0' && *s <= '9'; s++) {
                unsigned d = (unsigned)(*s - '0');

                if (v > (UINT64_MAX - d) / 10)
                        return -EBADMSG;
                v = v * 10 + d;
        }
        *p = s;
        *ret = v;
        return 0;
}

int upl_seqset_parse(struct upl_seqset *s, uint64_t hwm, const char *text, uint32_t max_ranges)
{
        struct upl_seqset t = {.hwm = hwm};
        const char *p = text;
        uint64_t prev = hwm; /* the last seq known committed */
        int r = 0;

        if (hwm > UPL_SEQ_MAX)
                return -EBADMSG;
        while (*p) {
                struct upl_range x;

                if (t.n > 0 && *p++ != ',') {
                        r = -EBADMSG;
                        break;
                }
                r = number(&p, &x.lo);
                x.hi = x.lo;
                if (r == 0 && *p == '-') {
                        p++;
                        r = number(&p, &x.hi);
                        if (r == 0 && x.hi == x.lo)
                                r = -EBADMSG; /* one seq is written "n" */
                }
                /* a gap below every range: lo > prev + 1 */
                if (r == 0 && (x.lo > x.hi || x.hi > UPL_SEQ_MAX || x.lo <= prev + 1))
                        r = -EBADMSG;
                if (r == 0 && t.n >= max_ranges)
                        r = -EBADMSG;
                r = r ?: reserve(&t, t.n + 1);
                if (r < 0)
                        break;
                t.r[t.n++] = x;
                prev = x.hi;
        }
        if (r < 0) {
                upl_seqset_clear(&t);
                return r;
        }
        upl_seqset_clear(s);
        *s = t;
        return 0;
}

int upl_seqset_format(const struct upl_seqset *s, char **ret)
{
        size_t size = (size_t)s->n * 42 + 1, w = 0;
        char *out = floe_malloc(size);

        if (!out)
                return -ENOMEM;
        out[0] = '\0';
        for (uint32_t i = 0; i < s->n; i++) {
                const struct upl_range *x = &s->r[i];

                if (x->lo == x->hi)
                        w += (size_t)snprintf(out + w, size - w, "%s%" PRIu64, i ? "," : "", x->lo);
                else
                        w += (size_t)snprintf(out + w, size - w, "%s%" PRIu64 "-%" PRIu64,
                                              i ? "," : "", x->lo, x->hi);
        }
        *ret = out;
        return 0;
}
