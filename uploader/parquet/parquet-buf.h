/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Growable byte buffers and a bump arena, for the Parquet module. */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the Parquet writer stores PLAIN values in host order: little-endian hosts only"
#endif

struct parquet_buf {
        uint8_t *data;
        size_t len, cap;
};

/* Makes room for extra more bytes: 0 or -ENOMEM (-EOVERFLOW past SIZE_MAX/2). */
int parquet_buf_grow(struct parquet_buf *b, size_t extra);
void parquet_buf_done(struct parquet_buf *b);

static inline int parquet_buf_reserve(struct parquet_buf *b, size_t extra)
{
        if (b->cap - b->len >= extra)
                return 0;
        return parquet_buf_grow(b, extra);
}

static inline int parquet_buf_append(struct parquet_buf *b, const void *p, size_t n)
{
        int r = parquet_buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n > 0)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        return 0;
}

static inline void parquet_put_le32(uint8_t *p, uint32_t v)
{
        memcpy(p, &v, 4);
}

static inline uint32_t parquet_get_le32(const uint8_t *p)
{
        uint32_t v;

        memcpy(&v, p, 4);
        return v;
}

/* Allocations freed all at once; every pointer is 8-byte aligned. */
struct parquet_arena;

struct parquet_arena *parquet_arena_new(void);
void *parquet_arena_alloc(struct parquet_arena *a, size_t size);
/* Zeroed n * size bytes; NULL on overflow or -ENOMEM. */
void *parquet_arena_calloc(struct parquet_arena *a, size_t n, size_t size);
/* A NUL-terminated copy of n bytes. */
char *parquet_arena_strndup(struct parquet_arena *a, const void *p, size_t n);
struct parquet_arena *parquet_arena_free(struct parquet_arena *a);
