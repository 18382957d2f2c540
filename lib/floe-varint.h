/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* LEB128 varints and zigzag, as docs/wire-format.md §4 defines them. */

#include <stddef.h>
#include <stdint.h>

#define FLOE_VARINT_MAX 10

static inline uint64_t floe_zigzag(int64_t v)
{
        return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

static inline int64_t floe_unzigzag(uint64_t u)
{
        return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Writes at most FLOE_VARINT_MAX bytes; returns the number written. */
static inline size_t floe_varint_put(uint8_t *p, uint64_t v)
{
        size_t n = 0;

        while (v >= 0x80) {
                p[n++] = (uint8_t)(v | 0x80);
                v >>= 7;
        }
        p[n++] = (uint8_t)v;
        return n;
}

/*
 * Reads one canonical varint from p[*pos..len). Returns 0, or -1 when the
 * input ends inside it, it is longer than 10 bytes, it overflows 64 bits or
 * it is not minimal (a trailing 0x00 group).
 */
static inline int floe_varint_get(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret)
{
        size_t i = *pos;
        uint64_t v;
        unsigned shift;

        if (i < len && p[i] < 0x80) {
                *ret = p[i];
                *pos = i + 1;
                return 0;
        }
        v = 0;
        shift = 0;
        for (;;) {
                uint8_t c;

                if (i >= len || shift > 63)
                        return -1;
                c = p[i++];
                if (shift == 63 && c > 1)
                        return -1;
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        if (c == 0 && shift > 0)
                                return -1;
                        break;
                }
                shift += 7;
        }
        *ret = v;
        *pos = i;
        return 0;
}
