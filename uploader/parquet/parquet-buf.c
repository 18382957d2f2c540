/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "floe-alloc.h"
#include "parquet-buf.h"

int parquet_buf_grow(struct parquet_buf *b, size_t extra)
{
        size_t need, cap;
        uint8_t *p;

        if (extra > SIZE_MAX / 2 - b->len)
                return -EOVERFLOW;
        need = b->len + extra;
        if (need <= b->cap)
                return 0;
        cap = b->cap < 256 ? 256 : b->cap;
        while (cap < need)
                cap *= 2;
        p = floe_realloc(b->data, cap);
        if (!p)
                return -ENOMEM;
        b->data = p;
        b->cap = cap;
        return 0;
}

void parquet_buf_done(struct parquet_buf *b)
{
        floe_free(b->data);
        *b = (struct parquet_buf){0};
}

#define ARENA_BLOCK 16384

struct arena_block {
        struct arena_block *next;
        size_t used, size;
        /* 8-byte aligned payload follows */
        uint64_t data[];
};

struct parquet_arena {
        struct arena_block *head;
};

struct parquet_arena *parquet_arena_new(void)
{
        return floe_calloc(1, sizeof(struct parquet_arena));
}

void *parquet_arena_alloc(struct parquet_arena *a, size_t size)
{
        struct arena_block *b = a->head;
        size_t n = (size + 7) & ~(size_t)7;
        void *p;

        if (size > SIZE_MAX / 2)
                return NULL;
        if (n == 0)
                n = 8;
        if (!b || b->size - b->used < n) {
                size_t bsize = n > ARENA_BLOCK / 4 ? n : ARENA_BLOCK;

                b = floe_malloc(sizeof(*b) + bsize);
                if (!b)
                        return NULL;
                b->used = 0;
                b->size = bsize;
                /* a big allocation gets its own block behind the current one */
                if (bsize != ARENA_BLOCK && a->head) {
                        b->next = a->head->next;
                        a->head->next = b;
                } else {
                        b->next = a->head;
                        a->head = b;
                }
        }
        p = (uint8_t *)b->data + b->used;
        b->used += n;
        return p;
}

void *parquet_arena_calloc(struct parquet_arena *a, size_t n, size_t size)
{
        void *p;

        if (size != 0 && n > SIZE_MAX / 2 / size)
                return NULL;
        p = parquet_arena_alloc(a, n * size);
        if (p)
                memset(p, 0, n * size);
        return p;
}

char *parquet_arena_strndup(struct parquet_arena *a, const void *p, size_t n)
{
        char *s;

        if (n >= SIZE_MAX / 2)
                return NULL;
        s = parquet_arena_alloc(a, n + 1);
        if (!s)
                return NULL;
        if (n > 0)
                memcpy(s, p, n);
        s[n] = '\0';
        return s;
}

struct parquet_arena *parquet_arena_free(struct parquet_arena *a)
{
        if (!a)
                return NULL;
        while (a->head) {
                struct arena_block *b = a->head;

                a->head = b->next;
                floe_free(b);
        }
        floe_free(a);
        return NULL;
}
