/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-util.h"

/* FNV-1a */
static uint64_t hash(const char *s)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (; *s; s++)
                h = (h ^ (uint8_t)*s) * 0x100000001b3ULL;
        return h;
}

void ice_strset_clear(struct ice_strset *s)
{
        for (size_t i = 0; i < s->cap; i++)
                floe_free(s->slots[i]);
        floe_free(s->slots);
        *s = (struct ice_strset){0};
}

/* The slot holding str, or the empty slot where it would go. */
static size_t find(const struct ice_strset *s, const char *str)
{
        size_t i = hash(str) & (s->cap - 1);

        while (s->slots[i] && strcmp(s->slots[i], str) != 0)
                i = (i + 1) & (s->cap - 1);
        return i;
}

static int grow(struct ice_strset *s)
{
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct ice_strset n = {.cap = cap};

        n.slots = floe_calloc(cap, sizeof(*n.slots));
        if (!n.slots)
                return -ENOMEM;
        for (size_t i = 0; i < s->cap; i++)
                if (s->slots[i])
                        n.slots[find(&n, s->slots[i])] = s->slots[i];
        n.n = s->n;
        floe_free(s->slots);
        *s = n;
        return 0;
}

int ice_strset_add(struct ice_strset *s, const char *str)
{
        size_t i;
        int r;

        if (2 * (s->n + 1) > s->cap) {
                r = grow(s);
                if (r < 0)
                        return r;
        }
        i = find(s, str);
        if (s->slots[i])
                return 0;
        s->slots[i] = floe_strdup(str);
        if (!s->slots[i])
                return -ENOMEM;
        s->n++;
        return 1;
}

bool ice_strset_has(const struct ice_strset *s, const char *str)
{
        return s->cap && s->slots[find(s, str)];
}

bool ice_strset_remove(struct ice_strset *s, const char *str)
{
        size_t i, j;

        if (!s->cap || !s->slots[i = find(s, str)])
                return false;
        floe_free(s->slots[i]);
        s->slots[i] = NULL;
        s->n--;
        /* re-place the cluster after the hole (linear probing deletion) */
        for (j = (i + 1) & (s->cap - 1); s->slots[j]; j = (j + 1) & (s->cap - 1)) {
                char *e = s->slots[j];
                size_t k;

                s->slots[j] = NULL;
                k = find(s, e);
                s->slots[k] = e;
        }
        return true;
}

void ice_strv_clear(struct ice_strv *v)
{
        for (size_t i = 0; i < v->n; i++)
                floe_free(v->v[i]);
        floe_free(v->v);
        *v = (struct ice_strv){0};
}

int ice_strv_add(struct ice_strv *v, const char *s)
{
        char **n, *c = floe_strdup(s);

        if (!c)
                return -ENOMEM;
        n = floe_reallocarray(v->v, v->n + 1, sizeof(*n));
        if (!n) {
                floe_free(c);
                return -ENOMEM;
        }
        v->v = n;
        n[v->n++] = c;
        return 0;
}

static int cmp(const void *a, const void *b)
{
        return strcmp(*(char *const *)a, *(char *const *)b);
}

void ice_strv_sort_unique(struct ice_strv *v)
{
        size_t o = 0;

        if (v->n == 0)
                return;
        qsort(v->v, v->n, sizeof(*v->v), cmp);
        for (size_t i = 0; i < v->n; i++) {
                if (o > 0 && strcmp(v->v[o - 1], v->v[i]) == 0) {
                        floe_free(v->v[i]);
                        continue;
                }
                v->v[o++] = v->v[i];
        }
        v->n = o;
}
