/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-varint.h"
#include "parquet-thrift.h"

static const char *const type_names[] = {
        [TT_STOP] = "stop",     [TT_TRUE] = "bool", [TT_FALSE] = "bool", [TT_I8] = "i8",
        [TT_I16] = "i16",       [TT_I32] = "i32",   [TT_I64] = "i64",    [TT_DOUBLE] = "double",
        [TT_BINARY] = "binary", [TT_LIST] = "list", [TT_SET] = "set",    [TT_MAP] = "map",
        [TT_STRUCT] = "struct",
};

const char *parquet_thrift_type_name(unsigned type)
{
        return type < ELEMENTSOF(type_names) ? type_names[type] : "invalid";
}

/* ---- encoder ---- */

void parquet_tenc_init(struct parquet_tenc *e, struct parquet_buf *out)
{
        *e = (struct parquet_tenc){.out = out};
}

int parquet_tenc_done(struct parquet_tenc *e)
{
        if (e->err == 0 && e->depth != 0)
                e->err = -EINVAL;
        return e->err;
}

static void put(struct parquet_tenc *e, const void *p, size_t n)
{
        if (e->err == 0)
                e->err = parquet_buf_append(e->out, p, n);
}

static void put_byte(struct parquet_tenc *e, uint8_t b)
{
        put(e, &b, 1);
}

static void put_varint(struct parquet_tenc *e, uint64_t v)
{
        uint8_t tmp[FLOE_VARINT_MAX];

        put(e, tmp, floe_varint_put(tmp, v));
}

void parquet_tenc_field(struct parquet_tenc *e, unsigned type, int16_t id)
{
        int delta = id - e->last[e->depth];

        if (delta > 0 && delta <= 15) {
                put_byte(e, (uint8_t)(delta << 4 | type));
        } else {
                put_byte(e, (uint8_t)type);
                put_varint(e, floe_zigzag(id));
        }
        e->last[e->depth] = id;
}

void parquet_tenc_i8(struct parquet_tenc *e, int16_t id, int8_t v)
{
        parquet_tenc_field(e, TT_I8, id);
        put_byte(e, (uint8_t)v);
}

void parquet_tenc_i16(struct parquet_tenc *e, int16_t id, int16_t v)
{
        parquet_tenc_field(e, TT_I16, id);
        put_varint(e, floe_zigzag(v));
}

void parquet_tenc_i32(struct parquet_tenc *e, int16_t id, int32_t v)
{
        parquet_tenc_field(e, TT_I32, id);
        put_varint(e, floe_zigzag(v));
}

void parquet_tenc_i64(struct parquet_tenc *e, int16_t id, int64_t v)
{
        parquet_tenc_field(e, TT_I64, id);
        put_varint(e, floe_zigzag(v));
}

void parquet_tenc_double(struct parquet_tenc *e, int16_t id, double v)
{
        parquet_tenc_field(e, TT_DOUBLE, id);
        put(e, &v, 8);
}

void parquet_tenc_bool(struct parquet_tenc *e, int16_t id, bool v)
{
        parquet_tenc_field(e, v ? TT_TRUE : TT_FALSE, id);
}

void parquet_tenc_binary(struct parquet_tenc *e, int16_t id, const void *p, size_t n)
{
        parquet_tenc_field(e, TT_BINARY, id);
        parquet_tenc_elem_binary(e, p, n);
}

void parquet_tenc_string(struct parquet_tenc *e, int16_t id, const char *s)
{
        parquet_tenc_binary(e, id, s, strlen(s));
}

void parquet_tenc_struct_begin(struct parquet_tenc *e, int16_t id)
{
        if (id > 0)
                parquet_tenc_field(e, TT_STRUCT, id);
        if (e->depth + 1 >= PARQUET_THRIFT_MAX_DEPTH) {
                if (e->err == 0)
                        e->err = -EINVAL;
                return;
        }
        e->last[++e->depth] = 0;
}

void parquet_tenc_struct_end(struct parquet_tenc *e)
{
        put_byte(e, TT_STOP);
        if (e->depth == 0) {
                if (e->err == 0)
                        e->err = -EINVAL;
                return;
        }
        e->depth--;
}

void parquet_tenc_list(struct parquet_tenc *e, int16_t id, unsigned elem_type, uint32_t n)
{
        parquet_tenc_field(e, TT_LIST, id);
        if (n <= 14) {
                put_byte(e, (uint8_t)(n << 4 | elem_type));
        } else {
                put_byte(e, (uint8_t)(0xf0 | elem_type));
                put_varint(e, n);
        }
}

void parquet_tenc_elem_i32(struct parquet_tenc *e, int32_t v)
{
        put_varint(e, floe_zigzag(v));
}

void parquet_tenc_elem_i64(struct parquet_tenc *e, int64_t v)
{
        put_varint(e, floe_zigzag(v));
}

void parquet_tenc_elem_bool(struct parquet_tenc *e, bool v)
{
        put_byte(e, v ? 1 : 2);
}

void parquet_tenc_elem_binary(struct parquet_tenc *e, const void *p, size_t n)
{
        if (n > INT32_MAX) {
                if (e->err == 0)
                        e->err = -EINVAL;
                return;
        }
        put_varint(e, n);
        put(e, p, n);
}

/* ---- decoder ---- */

void parquet_tdec_init(struct parquet_tdec *d, const uint8_t *p, size_t len,
                       const struct parquet_limits *lim, struct parquet_error *error)
{
        *d = (struct parquet_tdec){
                .p = p,
                .len = len,
                .max_depth = lim->max_depth,
                .max_list = lim->max_list,
                .max_string = lim->max_string,
                .error = error,
        };
        if (d->max_depth > PARQUET_THRIFT_MAX_DEPTH - 1)
                d->max_depth = PARQUET_THRIFT_MAX_DEPTH - 1;
        if (error)
                *error = (struct parquet_error){0};
}

int parquet_tdec_fail(struct parquet_tdec *d, int err, const char *fmt, ...)
{
        struct parquet_error *e = d->error;
        size_t n = 0;
        unsigned first;
        va_list ap;
        int k;

        if (d->err != 0)
                return d->err;
        d->err = err;
        if (!e)
                return err;
        e->offset = d->pos;
        e->field_id = d->field;
        /* what, then where: the innermost four structs, the field id, the offset */
        va_start(ap, fmt);
        k = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        n = k > 0 ? (size_t)k : 0;
        first = d->depth > 4 ? d->depth - 3 : 1;
        if (n < sizeof(e->msg) && d->depth > 0) {
                k = snprintf(e->msg + n, sizeof(e->msg) - n, " in %s", first > 1 ? "..." : "");
                n += k > 0 ? (size_t)k : 0;
        }
        for (unsigned i = first; i <= d->depth && n < sizeof(e->msg); i++) {
                k = snprintf(e->msg + n, sizeof(e->msg) - n, "%s%s", i > first ? "." : "",
                             d->name[i]);
                n += k > 0 ? (size_t)k : 0;
        }
        if (n < sizeof(e->msg) && d->field != 0) {
                k = snprintf(e->msg + n, sizeof(e->msg) - n, " field %d", d->field);
                n += k > 0 ? (size_t)k : 0;
        }
        if (n < sizeof(e->msg))
                snprintf(e->msg + n, sizeof(e->msg) - n, " at offset %zu", d->pos);
        return err;
}

static int truncated(struct parquet_tdec *d, const char *what)
{
        return parquet_tdec_fail(d, -EBADMSG, "input ends inside %s", what);
}

/* ULEB128 of at most max_bytes bytes (5 for 32-bit values, 10 for 64-bit). */
static int get_varint(struct parquet_tdec *d, unsigned max_bytes, const char *what, uint64_t *ret)
{
        uint64_t v = 0;

        if (d->err)
                return d->err;
        for (unsigned i = 0, shift = 0; i < max_bytes; i++, shift += 7) {
                uint8_t c;

                if (d->pos >= d->len)
                        return truncated(d, what);
                c = d->p[d->pos++];
                if (shift == 63 && c > 1)
                        return parquet_tdec_fail(d, -EBADMSG, "%s varint overflows", what);
                v |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return parquet_tdec_fail(d, -EBADMSG, "%s varint longer than %u bytes", what, max_bytes);
}

int parquet_tdec_expect(struct parquet_tdec *d, unsigned type, unsigned want)
{
        if (d->err)
                return d->err;
        if (type == want || (want == TT_TRUE && type == TT_FALSE))
                return 0;
        return parquet_tdec_fail(d, -EBADMSG, "expected %s, got %s", parquet_thrift_type_name(want),
                                 parquet_thrift_type_name(type));
}

int parquet_tdec_struct_begin(struct parquet_tdec *d, const char *name)
{
        if (d->err)
                return d->err;
        if (d->depth + 1 > d->max_depth)
                return parquet_tdec_fail(d, -E2BIG, "nesting deeper than %u", d->max_depth);
        d->depth++;
        d->last[d->depth] = 0;
        d->name[d->depth] = name;
        d->field = 0;
        return 0;
}

void parquet_tdec_struct_end(struct parquet_tdec *d)
{
        if (d->depth > 0)
                d->depth--;
        d->field = 0;
}

int parquet_tdec_field(struct parquet_tdec *d, unsigned *ret_type, int16_t *ret_id)
{
        unsigned type, delta;
        uint8_t b;

        if (d->err)
                return d->err;
        if (d->pos >= d->len)
                return truncated(d, "a struct");
        b = d->p[d->pos++];
        if (b == TT_STOP) {
                *ret_type = TT_STOP;
                *ret_id = 0;
                return 0;
        }
        type = b & 0x0f;
        delta = b >> 4;
        if (type == TT_STOP || type > TT_STRUCT) {
                d->pos--;
                return parquet_tdec_fail(d, -EBADMSG, "invalid field type %u", type);
        }
        if (delta != 0) {
                int id = d->last[d->depth] + (int)delta;

                if (id > INT16_MAX)
                        return parquet_tdec_fail(d, -EBADMSG, "field id overflows");
                d->field = (int16_t)id;
        } else {
                uint64_t u;
                int64_t id;

                if (get_varint(d, 3, "field id", &u) < 0)
                        return d->err;
                id = floe_unzigzag(u);
                if (id < INT16_MIN || id > INT16_MAX)
                        return parquet_tdec_fail(d, -EBADMSG, "field id %" PRId64 " not an i16",
                                                 id);
                d->field = (int16_t)id;
        }
        d->last[d->depth] = d->field;
        *ret_type = type;
        *ret_id = d->field;
        return 0;
}

int parquet_tdec_i8(struct parquet_tdec *d, unsigned type, int8_t *ret)
{
        if (parquet_tdec_expect(d, type, TT_I8) < 0)
                return d->err;
        if (d->pos >= d->len)
                return truncated(d, "an i8");
        *ret = (int8_t)d->p[d->pos++];
        return 0;
}

static int get_int(struct parquet_tdec *d, unsigned type, unsigned want, int64_t lo, int64_t hi,
                   int64_t *ret)
{
        uint64_t u;
        int64_t v = 0;

        if (parquet_tdec_expect(d, type, want) < 0)
                return d->err;
        if (get_varint(d,
                       want == TT_I64   ? 10
                       : want == TT_I32 ? 5
                                        : 3,
                       parquet_thrift_type_name(want), &u) < 0)
                return d->err;
        v = floe_unzigzag(u);
        if (v < lo || v > hi)
                return parquet_tdec_fail(d, -EBADMSG, "%s out of range",
                                         parquet_thrift_type_name(want));
        *ret = v;
        return 0;
}

int parquet_tdec_i16(struct parquet_tdec *d, unsigned type, int16_t *ret)
{
        int64_t v = 0;

        if (get_int(d, type, TT_I16, INT16_MIN, INT16_MAX, &v) < 0)
                return d->err;
        *ret = (int16_t)v;
        return 0;
}

int parquet_tdec_i32(struct parquet_tdec *d, unsigned type, int32_t *ret)
{
        int64_t v = 0;

        if (get_int(d, type, TT_I32, INT32_MIN, INT32_MAX, &v) < 0)
                return d->err;
        *ret = (int32_t)v;
        return 0;
}

int parquet_tdec_i64(struct parquet_tdec *d, unsigned type, int64_t *ret)
{
        return get_int(d, type, TT_I64, INT64_MIN, INT64_MAX, ret);
}

int parquet_tdec_double(struct parquet_tdec *d, unsigned type, double *ret)
{
        if (parquet_tdec_expect(d, type, TT_DOUBLE) < 0)
                return d->err;
        if (d->len - d->pos < 8)
                return truncated(d, "a double");
        memcpy(ret, d->p + d->pos, 8);
        d->pos += 8;
        return 0;
}

int parquet_tdec_bool(struct parquet_tdec *d, unsigned type, bool *ret)
{
        if (parquet_tdec_expect(d, type, TT_TRUE) < 0)
                return d->err;
        *ret = type == TT_TRUE;
        return 0;
}

int parquet_tdec_elem_bool(struct parquet_tdec *d, bool *ret)
{
        uint8_t b;

        if (d->err)
                return d->err;
        if (d->pos >= d->len)
                return truncated(d, "a bool");
        b = d->p[d->pos];
        if (b > 2)
                return parquet_tdec_fail(d, -EBADMSG, "bool element 0x%02x", b);
        d->pos++;
        *ret = b == 1;
        return 0;
}

int parquet_tdec_binary(struct parquet_tdec *d, unsigned type, const uint8_t **ret, size_t *ret_len)
{
        uint64_t n;

        if (parquet_tdec_expect(d, type, TT_BINARY) < 0)
                return d->err;
        if (get_varint(d, 5, "binary length", &n) < 0)
                return d->err;
        if (n > d->max_string)
                return parquet_tdec_fail(d, -E2BIG, "binary of %" PRIu64 " bytes over limit %u", n,
                                         d->max_string);
        if (n > d->len - d->pos)
                return parquet_tdec_fail(d, -EBADMSG, "binary of %" PRIu64 " bytes, %zu bytes left",
                                         n, d->len - d->pos);
        *ret = d->p + d->pos;
        *ret_len = (size_t)n;
        d->pos += (size_t)n;
        return 0;
}

static int check_elem_type(struct parquet_tdec *d, unsigned t)
{
        if (t == TT_STOP || t > TT_STRUCT)
                return parquet_tdec_fail(d, -EBADMSG, "invalid element type %u", t);
        return 0;
}

int parquet_tdec_list(struct parquet_tdec *d, unsigned type, unsigned *ret_elem_type,
                      uint32_t *ret_n)
{
        uint64_t n;
        uint8_t b;

        if (d->err)
                return d->err;
        if (type != TT_SET && parquet_tdec_expect(d, type, TT_LIST) < 0)
                return d->err;
        if (d->pos >= d->len)
                return truncated(d, "a list header");
        b = d->p[d->pos++];
        if (check_elem_type(d, b & 0x0f) < 0)
                return d->err;
        n = b >> 4;
        if (n == 15 && get_varint(d, 5, "list size", &n) < 0)
                return d->err;
        if (n > d->max_list)
                return parquet_tdec_fail(d, -E2BIG, "list of %" PRIu64 " elements over limit %u", n,
                                         d->max_list);
        /* every element takes at least one byte */
        if (n > d->len - d->pos)
                return parquet_tdec_fail(d, -EBADMSG,
                                         "list of %" PRIu64 " elements, %zu bytes left", n,
                                         d->len - d->pos);
        *ret_elem_type = b & 0x0f;
        *ret_n = (uint32_t)n;
        return 0;
}

static int skip_map(struct parquet_tdec *d)
{
        unsigned kt, vt;
        uint64_t n;

        if (get_varint(d, 5, "map size", &n) < 0)
                return d->err;
        if (n == 0)
                return 0;
        if (n > d->max_list)
                return parquet_tdec_fail(d, -E2BIG, "map of %" PRIu64 " entries over limit %u", n,
                                         d->max_list);
        if (d->pos >= d->len)
                return truncated(d, "a map header");
        kt = d->p[d->pos] >> 4;
        vt = d->p[d->pos] & 0x0f;
        d->pos++;
        if (check_elem_type(d, kt) < 0 || check_elem_type(d, vt) < 0)
                return d->err;
        if (n > (d->len - d->pos) / 2)
                return parquet_tdec_fail(d, -EBADMSG, "map of %" PRIu64 " entries, %zu bytes left",
                                         n, d->len - d->pos);
        for (uint64_t i = 0; i < n; i++)
                if (parquet_tdec_skip(d, kt == TT_FALSE ? TT_TRUE : kt) < 0 ||
                    parquet_tdec_skip(d, vt == TT_FALSE ? TT_TRUE : vt) < 0)
                        return d->err;
        return 0;
}

/* A container value (list element, map entry) whose type is a bool has a payload byte. */
static int skip_elem(struct parquet_tdec *d, unsigned type)
{
        bool b;

        if (type == TT_TRUE || type == TT_FALSE)
                return parquet_tdec_elem_bool(d, &b);
        return parquet_tdec_skip(d, type);
}

int parquet_tdec_skip(struct parquet_tdec *d, unsigned type)
{
        const uint8_t *p;
        unsigned et, ft;
        uint32_t n;
        int16_t id, saved;
        int64_t i64;
        double dbl;
        size_t len;
        int r = 0;

        if (d->err)
                return d->err;
        switch (type) {
        case TT_TRUE:
        case TT_FALSE:
                return 0;
        case TT_I8:
                if (d->pos >= d->len)
                        return truncated(d, "an i8");
                d->pos++;
                return 0;
        case TT_I16:
        case TT_I32:
        case TT_I64:
                return get_int(d, type, type, INT64_MIN, INT64_MAX, &i64);
        case TT_DOUBLE:
                return parquet_tdec_double(d, type, &dbl);
        case TT_BINARY:
                return parquet_tdec_binary(d, type, &p, &len);
        case TT_LIST:
        case TT_SET:
        case TT_MAP:
                if (d->depth + 1 > d->max_depth)
                        return parquet_tdec_fail(d, -E2BIG, "nesting deeper than %u", d->max_depth);
                saved = d->field;
                d->depth++;
                d->last[d->depth] = 0;
                d->name[d->depth] = type == TT_MAP ? "(map)" : "(list)";
                if (type == TT_MAP) {
                        r = skip_map(d);
                } else if (parquet_tdec_list(d, type, &et, &n) == 0) {
                        for (uint32_t i = 0; i < n && r == 0; i++)
                                r = skip_elem(d, et);
                }
                d->depth--;
                d->field = saved;
                return r < 0 ? r : d->err;
        case TT_STRUCT:
                saved = d->field;
                if (parquet_tdec_struct_begin(d, "(skipped)") < 0)
                        return d->err;
                for (;;) {
                        if (parquet_tdec_field(d, &ft, &id) < 0)
                                return d->err;
                        if (ft == TT_STOP)
                                break;
                        if (parquet_tdec_skip(d, ft) < 0)
                                return d->err;
                }
                parquet_tdec_struct_end(d);
                d->field = saved;
                return 0;
        default:
                return parquet_tdec_fail(d, -EBADMSG, "cannot skip type %u", type);
        }
}
