/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the JSON reader (parse-json.c) and its numbers (parse-json-number.c). */

#include <stdbool.h>
#include <stdint.h>

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
 * time (words, with 18 bytes to read): false, the cursor untouched, for
 * anything else. */
bool agent_json_number_plain(struct jr *j, double *ret, uint8_t *ret_decimals);
bool agent_json_number_words(struct jr *j, double *ret, uint8_t *ret_decimals);

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
