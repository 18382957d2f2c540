/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Comparing and copying short byte strings (names: mostly under 16 bytes)
 * without a library call, with whole-word accesses that never touch a byte
 * outside either string. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline bool agent_bytes_eq(const void *a, const void *b, size_t n)
{
        const char *x = a, *y = b;
        uint64_t u, v, u2, v2;
        uint32_t s, t, s2, t2;

        if (n >= 8 && n <= 16) {
                memcpy(&u, x, 8);
                memcpy(&v, y, 8);
                memcpy(&u2, x + n - 8, 8);
                memcpy(&v2, y + n - 8, 8);
                return ((u ^ v) | (u2 ^ v2)) == 0;
        }
        if (n >= 4 && n < 8) {
                memcpy(&s, x, 4);
                memcpy(&t, y, 4);
                memcpy(&s2, x + n - 4, 4);
                memcpy(&t2, y + n - 4, 4);
                return ((s ^ t) | (s2 ^ t2)) == 0;
        }
        if (n >= 2 && n < 4) {
                uint16_t h, k, h2, k2;

                memcpy(&h, x, 2);
                memcpy(&k, y, 2);
                memcpy(&h2, x + n - 2, 2);
                memcpy(&k2, y + n - 2, 2);
                return ((h ^ k) | (h2 ^ k2)) == 0;
        }
        if (n < 2)
                return n == 0 || x[0] == y[0];
        return memcmp(a, b, n) == 0;
}

static inline void agent_bytes_copy(void *dst, const void *src, size_t n)
{
        char *d = dst;
        const char *s = src;
        uint64_t u, u2;
        uint32_t w, w2;

        if (n >= 8 && n <= 16) {
                memcpy(&u, s, 8);
                memcpy(&u2, s + n - 8, 8);
                memcpy(d, &u, 8);
                memcpy(d + n - 8, &u2, 8);
        } else if (n >= 4 && n < 8) {
                memcpy(&w, s, 4);
                memcpy(&w2, s + n - 4, 4);
                memcpy(d, &w, 4);
                memcpy(d + n - 4, &w2, 4);
        } else if (n >= 2 && n < 4) {
                uint16_t h, h2;

                memcpy(&h, s, 2);
                memcpy(&h2, s + n - 2, 2);
                memcpy(d, &h, 2);
                memcpy(d + n - 2, &h2, 2);
        } else if (n == 1) {
                d[0] = s[0];
        } else if (n > 16) {
                memcpy(dst, src, n);
        }
}

/* A hash of a short byte string: a word at a time, the tail with overlapping
 * loads. */
static inline uint32_t agent_bytes_hash(const char *s, size_t n)
{
        uint64_t h = 0x9e3779b97f4a7c15ULL ^ n, w;
        uint32_t a, b;

        for (; n > 8; s += 8, n -= 8) {
                memcpy(&w, s, 8);
                h = (h ^ w) * 0xff51afd7ed558ccdULL;
                h ^= h >> 32;
        }
        if (n == 8) {
                memcpy(&w, s, 8);
        } else if (n >= 4) {
                memcpy(&a, s, 4);
                memcpy(&b, s + n - 4, 4);
                w = (uint64_t)a << 32 | b;
        } else {
                w = 0;
                for (size_t i = 0; i < n; i++)
                        w = w << 8 | (uint8_t)s[i];
        }
        h = (h ^ w) * 0xc4ceb9fe1a85ec53ULL;
        return (uint32_t)(h ^ (h >> 32));
}
