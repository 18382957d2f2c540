/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the JSON reader (parse-json.c) and its numbers (parse-json-number.c). */

#include <float.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "parse-internal.h"

struct jr {
        struct agent_parser *p;
        const char *s; /* the payload */
        const char *c; /* the cursor */
        const char *e; /* the end */
        unsigned depth;
        int deferred; /* the first semantic rejection, 0 if none */
};

__attribute__((format(printf, 3, 4))) int
agent_json_syntax(struct jr *j, enum agent_parse_reason reason, const char *fmt, ...);

/* A number at the cursor (RFC 8259 §6) to the nearest double; a syntax or
 * range error otherwise. */
int agent_json_number(struct jr *j, double *ret);

/* The usual sensor value, [-]digits[.digits] of up to 19 digits without a
 * leading zero or an exponent, taken byte by byte (plain) or 8 bytes at a
 * time (words, below): false, the cursor untouched, for anything else. */
bool agent_json_number_plain(struct jr *j, double *ret, uint8_t *ret_decimals);

/* agent_reading.decimals of w·10^-m read from n + m digits. */
static inline uint8_t agent_json_decimals(uint64_t w, bool neg, unsigned n, unsigned m)
{
        if (n + m > 15 || (w == 0 && neg))
                return 0; /* -0 fits no scale; beyond 15 digits decimals may collide */
        while (m > 0 && w % 10 == 0) {
                w /= 10;
                m--;
        }
        return (uint8_t)(m + 1);
}

/* The digits at c, 8 bytes of which are readable: how many (up to 8) and
 * their value, with whole-word arithmetic. */
static inline unsigned agent_json_digits8(const char *c, uint64_t *ret)
{
        uint64_t v, x, m;
        unsigned n;

        memcpy(&v, c, 8);
        /* a digit becomes 0..9; anything else gets bit 7 (borrows and carries
         * only reach bytes after the first non-digit) */
        x = v - 0x3030303030303030ULL;
        m = (x | (x + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
        n = m ? (unsigned)__builtin_ctzll(m) >> 3 : 8;
        if (n == 0)
                return 0;
        /* the n digits to the top bytes, zeros before them */
        x <<= 64 - 8 * n;
        x = (x & 0x0f0f0f0f0f0f0f0fULL) * 2561 >> 8;
        x = (x & 0x00ff00ff00ff00ffULL) * 6553601 >> 16;
        *ret = (x & 0x0000ffff0000ffffULL) * 42949672960001ULL >> 32;
        return n;
}

/* agent_json_number_plain() 8 digits at a time, with 18 bytes to read: the usual
 * sensor value, [-]digits[.digits] of up to 7 digits each side. */
static inline bool agent_json_number_words(struct jr *j, double *ret, uint8_t *ret_decimals)
{
        static const uint64_t pow10_u64[8] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000};
        const char *c = j->c;
        uint64_t w, f;
        unsigned n, m = 0;
        bool neg;
        double d;

        if (j->e - c < 18)
                return false;
        neg = *c == '-';
        c += neg;
        n = agent_json_digits8(c, &w);
        if (n == 0 || n == 8 || (n > 1 && *c == '0'))
                return false;
        c += n;
        if (*c == '.') {
                m = agent_json_digits8(c + 1, &f);
                if (m == 0 || m == 8)
                        return false;
                c += 1 + m;
                w = w * pow10_u64[m] + f;
        }
        if (*c == 'e' || *c == 'E' || FLT_EVAL_METHOD != 0)
                return false;
        /* at most 14 digits over 10^m, m <= 7: one exact IEEE operation (Clinger),
         * the double agent_parse_decimal_fast() gives */
        d = (double)w;
        if (m)
                d /= agent_parse_pow10[m];
        *ret = neg ? -d : d;
        *ret_decimals = agent_json_decimals(w, neg, n, m);
        j->c = c;
        return true;
}
