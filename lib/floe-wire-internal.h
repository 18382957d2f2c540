/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the wire encoder and decoder only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "floe-wire.h"

#define FLOE_WIRE_TAG_F64LE      86                 /* RFC 8746: float64, little endian */
#define FLOE_WIRE_MANTISSA_MAX   9007199254740992.0 /* 2^53 */
#define FLOE_WIRE_MANTISSA_MAX_I ((int64_t)1 << 53)

static const double floe_wire_pow10[] = {
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
};

static inline void floe_wire_put_f64le(uint8_t *p, double v)
{
        uint64_t u;

        memcpy(&u, &v, 8);
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t)(u >> (8 * i));
}

static inline double floe_wire_get_f64le(const uint8_t *p)
{
        uint64_t u = 0;
        double v;

        for (int i = 0; i < 8; i++)
                u |= (uint64_t)p[i] << (8 * i);
        memcpy(&v, &u, 8);
        return v;
}

/* ---- the strict CBOR pull reader (floe-wire-read.c) ---- */

enum itype {
        IT_UINT,
        IT_NEGINT,
        IT_BSTR,
        IT_TSTR,
        IT_ARRAY,
        IT_MAP,
        IT_TAG,
        IT_FLOAT,
        IT_SIMPLE,
        IT_INDEF,
};

struct item {
        enum itype t;
        uint64_t u;
        const uint8_t *p;
        size_t len;
};

struct rd {
        const uint8_t *buf;
        size_t len;
        size_t pos;
        struct floe_wire_error *err;
};

extern const char *const floe_wire_type_names[];

/* Fills the error and returns the errno that goes with its reason. */
__attribute__((format(printf, 3, 4))) int
floe_wire_fail(struct floe_wire_error *err, enum floe_wire_reason reason, const char *fmt, ...);
int floe_wire_rd_next(struct rd *r, struct item *it, const char *what);
int floe_wire_rd_expect(struct rd *r, struct item *it, enum itype t, const char *what);
/* Skips one item of any type, nested at most 16 deep. */
int floe_wire_rd_skip(struct rd *r, unsigned depth, const char *what);
