/* SPDX-License-Identifier: Apache-2.0 */
/* Rejection reasons and a strict pull reader over libcbor's streaming
 * decoder, for the wire decoder. */
#include <cbor.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floe-wire-internal.h"
#include "floe-wire.h"

#define SKIP_DEPTH_MAX 16

/* ---- errors ---- */

static const char *const reason_names[FLOE_WIRE_REASON_MAX] = {
        [FLOE_WIRE_OK] = "ok",
        [FLOE_WIRE_TOO_LARGE] = "too-large",
        [FLOE_WIRE_NOT_ZSTD] = "not-zstd",
        [FLOE_WIRE_NO_CONTENT_SIZE] = "no-content-size",
        [FLOE_WIRE_NO_CHECKSUM] = "no-checksum",
        [FLOE_WIRE_DICTIONARY] = "zstd-dictionary",
        [FLOE_WIRE_INFLATED_TOO_LARGE] = "inflated-too-large",
        [FLOE_WIRE_TRAILING_DATA] = "trailing-data",
        [FLOE_WIRE_ZSTD_CORRUPT] = "zstd-corrupt",
        [FLOE_WIRE_CBOR_MALFORMED] = "cbor-malformed",
        [FLOE_WIRE_CBOR_INDEFINITE] = "cbor-indefinite",
        [FLOE_WIRE_CBOR_TRAILING] = "cbor-trailing",
        [FLOE_WIRE_NOT_A_MAP] = "not-a-map",
        [FLOE_WIRE_DUPLICATE_KEY] = "duplicate-key",
        [FLOE_WIRE_UNKNOWN_KEY] = "unknown-key",
        [FLOE_WIRE_MISSING_KEY] = "missing-key",
        [FLOE_WIRE_BAD_TYPE] = "bad-type",
        [FLOE_WIRE_UNSUPPORTED_VERSION] = "unsupported-version",
        [FLOE_WIRE_BAD_IDENTITY] = "bad-identity",
        [FLOE_WIRE_BAD_KIND] = "bad-kind",
        [FLOE_WIRE_TOO_MANY_ROWS] = "too-many-rows",
        [FLOE_WIRE_DICT_TOO_LARGE] = "dict-too-large",
        [FLOE_WIRE_TOO_MANY_SERIES] = "too-many-series",
        [FLOE_WIRE_STRING_TOO_LONG] = "string-too-long",
        [FLOE_WIRE_BAD_STRING] = "bad-string",
        [FLOE_WIRE_DUPLICATE_ENTRY] = "duplicate-entry",
        [FLOE_WIRE_BAD_VARINT] = "bad-varint",
        [FLOE_WIRE_BAD_INDEX] = "bad-index",
        [FLOE_WIRE_COLUMN_LENGTH] = "column-length",
        [FLOE_WIRE_BAD_VALUE] = "bad-value",
        [FLOE_WIRE_NESTING] = "nesting",
        [FLOE_WIRE_NOMEM] = "no-memory",
};

const char *floe_wire_reason_name(enum floe_wire_reason r)
{
        return (unsigned)r < FLOE_WIRE_REASON_MAX ? reason_names[r] : "invalid";
}

void floe_wire_error_format(const struct floe_wire_error *e, char *buf, size_t size)
{
        if (e->detail[0])
                snprintf(buf, size, "%s: %s", floe_wire_reason_name(e->reason), e->detail);
        else
                snprintf(buf, size, "%s", floe_wire_reason_name(e->reason));
}

int floe_wire_fail(struct floe_wire_error *err, enum floe_wire_reason reason, const char *fmt, ...)
{
        va_list ap;

        err->reason = reason;
        va_start(ap, fmt);
        vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
        va_end(ap);
        switch (reason) {
        case FLOE_WIRE_TOO_LARGE:
        case FLOE_WIRE_INFLATED_TOO_LARGE:
        case FLOE_WIRE_TOO_MANY_ROWS:
        case FLOE_WIRE_DICT_TOO_LARGE:
        case FLOE_WIRE_TOO_MANY_SERIES:
        case FLOE_WIRE_STRING_TOO_LONG:
                return -EMSGSIZE;
        case FLOE_WIRE_UNSUPPORTED_VERSION:
                return -EPROTONOSUPPORT;
        case FLOE_WIRE_NOMEM:
                return -ENOMEM;
        default:
                return -EBADMSG;
        }
}

/* ---- a pull reader over libcbor's streaming decoder ---- */

#define CB(name, type, field_t)                     \
        static void cb_##name(void *ctx, field_t v) \
        {                                           \
                struct item *it = ctx;              \
                it->t = type;                       \
                it->u = v;                          \
        }
CB(u8, IT_UINT, uint8_t)
CB(u16, IT_UINT, uint16_t)
CB(u32, IT_UINT, uint32_t)
CB(u64, IT_UINT, uint64_t)
CB(n8, IT_NEGINT, uint8_t)
CB(n16, IT_NEGINT, uint16_t)
CB(n32, IT_NEGINT, uint32_t)
CB(n64, IT_NEGINT, uint64_t)
CB(tag, IT_TAG, uint64_t)
CB(array, IT_ARRAY, size_t)
CB(map, IT_MAP, size_t)

static void cb_bstr(void *ctx, cbor_data p, size_t len)
{
        *(struct item *)ctx = (struct item){.t = IT_BSTR, .p = p, .len = len};
}

static void cb_tstr(void *ctx, cbor_data p, size_t len)
{
        *(struct item *)ctx = (struct item){.t = IT_TSTR, .p = p, .len = len};
}

static void cb_indef(void *ctx)
{
        ((struct item *)ctx)->t = IT_INDEF;
}

static void cb_simple(void *ctx)
{
        ((struct item *)ctx)->t = IT_SIMPLE;
}

static void cb_bool(void *ctx, bool v)
{
        (void)v;
        ((struct item *)ctx)->t = IT_SIMPLE;
}

static void cb_float(void *ctx, float v)
{
        (void)v;
        ((struct item *)ctx)->t = IT_FLOAT;
}

static void cb_double(void *ctx, double v)
{
        (void)v;
        ((struct item *)ctx)->t = IT_FLOAT;
}

static const struct cbor_callbacks callbacks = {
        .uint8 = cb_u8,
        .uint16 = cb_u16,
        .uint32 = cb_u32,
        .uint64 = cb_u64,
        .negint8 = cb_n8,
        .negint16 = cb_n16,
        .negint32 = cb_n32,
        .negint64 = cb_n64,
        .byte_string_start = cb_indef,
        .byte_string = cb_bstr,
        .string = cb_tstr,
        .string_start = cb_indef,
        .indef_array_start = cb_indef,
        .array_start = cb_array,
        .indef_map_start = cb_indef,
        .map_start = cb_map,
        .tag = cb_tag,
        .float2 = cb_float,
        .float4 = cb_float,
        .float8 = cb_double,
        .undefined = cb_simple,
        .null = cb_simple,
        .boolean = cb_bool,
        .indef_break = cb_indef,
};

int floe_wire_rd_next(struct rd *r, struct item *it, const char *what)
{
        struct cbor_decoder_result res;

        if (r->pos >= r->len)
                return floe_wire_fail(r->err, FLOE_WIRE_CBOR_MALFORMED,
                                      "%s: input ends at byte %zu", what, r->pos);
        it->t = IT_SIMPLE;
        res = cbor_stream_decode(r->buf + r->pos, r->len - r->pos, &callbacks, it);
        if (res.status != CBOR_DECODER_FINISHED || res.read == 0)
                return floe_wire_fail(r->err, FLOE_WIRE_CBOR_MALFORMED, "%s: %s at byte %zu", what,
                                      res.status == CBOR_DECODER_NEDATA ? "truncated item"
                                                                        : "malformed item",
                                      r->pos);
        r->pos += res.read;
        if (it->t == IT_INDEF)
                return floe_wire_fail(r->err, FLOE_WIRE_CBOR_INDEFINITE,
                                      "%s: indefinite length at byte %zu", what, r->pos - res.read);
        return 0;
}

const char *const floe_wire_type_names[] = {
        [IT_UINT] = "unsigned integer",
        [IT_NEGINT] = "negative integer",
        [IT_BSTR] = "byte string",
        [IT_TSTR] = "text string",
        [IT_ARRAY] = "array",
        [IT_MAP] = "map",
        [IT_TAG] = "tag",
        [IT_FLOAT] = "float",
        [IT_SIMPLE] = "simple value",
        [IT_INDEF] = "indefinite item",
};

int floe_wire_rd_expect(struct rd *r, struct item *it, enum itype t, const char *what)
{
        int ret = floe_wire_rd_next(r, it, what);

        if (ret < 0)
                return ret;
        if (it->t != t)
                return floe_wire_fail(r->err, FLOE_WIRE_BAD_TYPE, "%s: expected %s, got %s", what,
                                      floe_wire_type_names[t], floe_wire_type_names[it->t]);
        return 0;
}

int floe_wire_rd_skip(struct rd *r, unsigned depth, const char *what)
{
        struct item it;
        int ret;

        if (depth > SKIP_DEPTH_MAX)
                return floe_wire_fail(r->err, FLOE_WIRE_NESTING, "%s: nested deeper than %d", what,
                                      SKIP_DEPTH_MAX);
        ret = floe_wire_rd_next(r, &it, what);
        if (ret < 0)
                return ret;
        if (it.t == IT_ARRAY || it.t == IT_MAP) {
                uint64_t n = it.t == IT_MAP ? it.u * 2 : it.u;

                if (it.u > r->len - r->pos)
                        return floe_wire_fail(r->err, FLOE_WIRE_CBOR_MALFORMED,
                                              "%s: %" PRIu64 " items claimed with %zu bytes left",
                                              what, it.u, r->len - r->pos);
                for (uint64_t i = 0; i < n; i++) {
                        ret = floe_wire_rd_skip(r, depth + 1, what);
                        if (ret < 0)
                                return ret;
                }
        } else if (it.t == IT_TAG) {
                return floe_wire_rd_skip(r, depth + 1, what);
        }
        return 0;
}
