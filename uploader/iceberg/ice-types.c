/* SPDX-License-Identifier: Apache-2.0 */
/* Primitive types: their JSON names, values, ordering and single-value serialisation. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

static const char *const NAMES[] = {
        [ICE_TYPE_BOOLEAN] = "boolean",
        [ICE_TYPE_INT] = "int",
        [ICE_TYPE_LONG] = "long",
        [ICE_TYPE_FLOAT] = "float",
        [ICE_TYPE_DOUBLE] = "double",
        [ICE_TYPE_DATE] = "date",
        [ICE_TYPE_TIME] = "time",
        [ICE_TYPE_TIMESTAMP] = "timestamp",
        [ICE_TYPE_TIMESTAMPTZ] = "timestamptz",
        [ICE_TYPE_TIMESTAMP_NS] = "timestamp_ns",
        [ICE_TYPE_TIMESTAMPTZ_NS] = "timestamptz_ns",
        [ICE_TYPE_STRING] = "string",
        [ICE_TYPE_UUID] = "uuid",
        [ICE_TYPE_BINARY] = "binary",
};

static const char *skip_ws(const char *s)
{
        while (*s == ' ')
                s++;
        return s;
}

/* A decimal number in [min, max] at *s; advances *s. */
static int parse_uint(const char **s, unsigned long min, unsigned long max, unsigned long *ret)
{
        char *end;
        unsigned long v;

        *s = skip_ws(*s);
        if (**s < '0' || **s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoul(*s, &end, 10);
        if (errno || v < min || v > max)
                return -EINVAL;
        *s = skip_ws(end);
        *ret = v;
        return 0;
}

int ice_type_parse(const char *s, struct ice_type *ret)
{
        unsigned long a, b;

        for (size_t i = 0; i < ELEMENTSOF(NAMES); i++)
                if (NAMES[i] && strcmp(s, NAMES[i]) == 0) {
                        *ret = (struct ice_type){.id = (enum ice_type_id)i};
                        return 0;
                }
        if (strncmp(s, "fixed[", 6) == 0) {
                s += 6;
                if (parse_uint(&s, 1, INT32_MAX, &a) < 0 || strcmp(s, "]") != 0)
                        return -EINVAL;
                *ret = (struct ice_type){.id = ICE_TYPE_FIXED, .length = (uint32_t)a};
                return 0;
        }
        if (strncmp(s, "decimal(", 8) == 0) {
                s += 8;
                if (parse_uint(&s, 1, 38, &a) < 0 || *s++ != ',' || parse_uint(&s, 0, a, &b) < 0 ||
                    strcmp(s, ")") != 0)
                        return -EINVAL;
                *ret = (struct ice_type){
                        .id = ICE_TYPE_DECIMAL, .precision = (uint8_t)a, .scale = (uint8_t)b};
                return 0;
        }
        return -EINVAL;
}

int ice_type_format(const struct ice_type *t, char *buf, size_t size)
{
        int n;

        if (t->id == ICE_TYPE_FIXED)
                n = snprintf(buf, size, "fixed[%" PRIu32 "]", t->length);
        else if (t->id == ICE_TYPE_DECIMAL)
                n = snprintf(buf, size, "decimal(%u, %u)", t->precision, t->scale);
        else if ((size_t)t->id < ELEMENTSOF(NAMES) && NAMES[t->id])
                n = snprintf(buf, size, "%s", NAMES[t->id]);
        else
                return -EINVAL;
        return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

bool ice_type_is_primitive(const struct ice_type *t)
{
        return t->id < ICE_TYPE_STRUCT;
}

static bool has_bytes(enum ice_type_id t)
{
        return t == ICE_TYPE_STRING || t == ICE_TYPE_UUID || t == ICE_TYPE_FIXED ||
               t == ICE_TYPE_BINARY || t == ICE_TYPE_DECIMAL;
}

void ice_datum_clear(struct ice_datum *d)
{
        floe_free(d->bytes);
        d->bytes = NULL;
        d->len = 0;
}

int ice_datum_copy(const struct ice_datum *src, struct ice_datum *ret)
{
        struct ice_datum d = *src;

        d.bytes = NULL;
        if (src->bytes) {
                d.bytes = floe_malloc(src->len ? src->len : 1);
                if (!d.bytes)
                        return -ENOMEM;
                memcpy(d.bytes, src->bytes, src->len);
        }
        *ret = d;
        return 0;
}

static int cmp_u64(uint64_t a, uint64_t b)
{
        return a < b ? -1 : a > b;
}

static int cmp_i64(int64_t a, int64_t b)
{
        return a < b ? -1 : a > b;
}

/* IEEE 754 totalOrder as a signed integer order. */
static int64_t double_key(double d)
{
        int64_t k;

        memcpy(&k, &d, sizeof(k));
        return k < 0 ? k ^ INT64_MAX : k;
}

static int cmp_bytes(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
        int c = memcmp(a, b, al < bl ? al : bl);

        if (c)
                return c < 0 ? -1 : 1;
        return cmp_u64(al, bl);
}

/* Two's complement big-endian integers of any lengths. */
static int cmp_decimal(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
        bool an = al && (a[0] & 0x80), bn = bl && (b[0] & 0x80);
        size_t n = al > bl ? al : bl;

        if (an != bn)
                return an ? -1 : 1;
        for (size_t i = 0; i < n; i++) {
                uint8_t x = i + al < n ? (an ? 0xff : 0) : a[i + al - n];
                uint8_t y = i + bl < n ? (bn ? 0xff : 0) : b[i + bl - n];

                if (x != y)
                        return x < y ? -1 : 1;
        }
        return 0;
}

int ice_datum_compare(const struct ice_datum *a, const struct ice_datum *b)
{
        if (a->null || b->null)
                return a->null == b->null ? 0 : a->null ? -1 : 1;
        switch (a->type) {
        case ICE_TYPE_BOOLEAN:
                return (int)a->v.b - (int)b->v.b;
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE:
                return cmp_i64(a->v.i, b->v.i);
        case ICE_TYPE_FLOAT:
                return cmp_i64(double_key(a->v.f), double_key(b->v.f));
        case ICE_TYPE_DOUBLE:
                return cmp_i64(double_key(a->v.d), double_key(b->v.d));
        case ICE_TYPE_DECIMAL:
                return cmp_decimal(a->bytes, a->len, b->bytes, b->len);
        default:
                if (has_bytes(a->type))
                        return cmp_bytes(a->bytes, a->len, b->bytes, b->len);
                return cmp_i64(a->v.l, b->v.l);
        }
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, size_t n)
{
        uint64_t v = 0;

        for (size_t i = n; i > 0; i--)
                v = v << 8 | p[i - 1];
        return v;
}

int ice_value_serialize(const struct ice_datum *v, uint8_t **ret, size_t *ret_len)
{
        uint8_t tmp[8], *out;
        const uint8_t *src = tmp;
        size_t n;

        if (v->null)
                return -EINVAL;
        switch (v->type) {
        case ICE_TYPE_BOOLEAN:
                tmp[0] = v->v.b ? 1 : 0;
                n = 1;
                break;
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE:
                put_le(tmp, (uint32_t)v->v.i, n = 4);
                break;
        case ICE_TYPE_FLOAT: {
                uint32_t u;

                memcpy(&u, &v->v.f, 4);
                put_le(tmp, u, n = 4);
                break;
        }
        case ICE_TYPE_DOUBLE: {
                uint64_t u;

                memcpy(&u, &v->v.d, 8);
                put_le(tmp, u, n = 8);
                break;
        }
        case ICE_TYPE_LONG:
        case ICE_TYPE_TIME:
        case ICE_TYPE_TIMESTAMP:
        case ICE_TYPE_TIMESTAMPTZ:
        case ICE_TYPE_TIMESTAMP_NS:
        case ICE_TYPE_TIMESTAMPTZ_NS:
                put_le(tmp, (uint64_t)v->v.l, n = 8);
                break;
        case ICE_TYPE_DECIMAL:
                src = v->bytes;
                n = v->len;
                /* minimal: drop sign-extension bytes the next byte repeats */
                while (n > 1 &&
                       ((src[0] == 0 && !(src[1] & 0x80)) || (src[0] == 0xff && (src[1] & 0x80)))) {
                        src++;
                        n--;
                }
                break;
        case ICE_TYPE_UUID:
                if (v->len != 16)
                        return -EINVAL;
                src = v->bytes;
                n = 16;
                break;
        case ICE_TYPE_STRING:
        case ICE_TYPE_FIXED:
        case ICE_TYPE_BINARY:
                src = v->bytes;
                n = v->len;
                break;
        default:
                return -EOPNOTSUPP;
        }
        out = floe_malloc(n ? n : 1);
        if (!out)
                return -ENOMEM;
        if (n)
                memcpy(out, src, n);
        *ret = out;
        *ret_len = n;
        return 0;
}

int ice_value_deserialize(const struct ice_type *t, const uint8_t *p, size_t len,
                          struct ice_datum *ret)
{
        struct ice_datum d = {.type = t->id};

        switch (t->id) {
        case ICE_TYPE_BOOLEAN:
                if (len != 1)
                        return -EBADMSG;
                d.v.b = p[0] != 0;
                break;
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE:
                if (len != 4)
                        return -EBADMSG;
                d.v.i = (int32_t)(uint32_t)get_le(p, 4);
                break;
        case ICE_TYPE_FLOAT: {
                uint32_t u;

                if (len != 4)
                        return -EBADMSG;
                u = (uint32_t)get_le(p, 4);
                memcpy(&d.v.f, &u, 4);
                break;
        }
        case ICE_TYPE_DOUBLE: {
                uint64_t u;

                if (len != 8)
                        return -EBADMSG;
                u = get_le(p, 8);
                memcpy(&d.v.d, &u, 8);
                break;
        }
        case ICE_TYPE_LONG:
        case ICE_TYPE_TIME:
        case ICE_TYPE_TIMESTAMP:
        case ICE_TYPE_TIMESTAMPTZ:
        case ICE_TYPE_TIMESTAMP_NS:
        case ICE_TYPE_TIMESTAMPTZ_NS:
                if (len != 8)
                        return -EBADMSG;
                d.v.l = (int64_t)get_le(p, 8);
                break;
        case ICE_TYPE_UUID:
        case ICE_TYPE_FIXED:
        case ICE_TYPE_DECIMAL:
        case ICE_TYPE_STRING:
        case ICE_TYPE_BINARY:
                if ((t->id == ICE_TYPE_UUID && len != 16) ||
                    (t->id == ICE_TYPE_FIXED && len != t->length) ||
                    (t->id == ICE_TYPE_DECIMAL && (len == 0 || len > 16)))
                        return -EBADMSG;
                d.bytes = floe_malloc(len ? len : 1);
                if (!d.bytes)
                        return -ENOMEM;
                if (len)
                        memcpy(d.bytes, p, len);
                d.len = len;
                break;
        default:
                return -EOPNOTSUPP;
        }
        *ret = d;
        return 0;
}

/* Length of the UTF-8 sequence starting with c, 0 for a continuation or invalid byte. */
static size_t utf8_len(uint8_t c)
{
        if (c < 0x80)
                return 1;
        if ((c & 0xe0) == 0xc0)
                return 2;
        if ((c & 0xf0) == 0xe0)
                return 3;
        if ((c & 0xf8) == 0xf0)
                return 4;
        return 0;
}

/* Byte offsets of the first n code points; -EINVAL on malformed UTF-8. */
static int prefix(const uint8_t *s, size_t len, size_t n, size_t *ret_len)
{
        size_t i = 0;

        for (size_t k = 0; k < n && i < len; k++) {
                size_t l = utf8_len(s[i]);

                if (l == 0 || l > len - i)
                        return -EINVAL;
                for (size_t c = 1; c < l; c++)
                        if ((s[i + c] & 0xc0) != 0x80)
                                return -EINVAL;
                i += l;
        }
        *ret_len = i;
        return 0;
}

int ice_bound_truncate_lower(const uint8_t *s, size_t len, size_t n, size_t *ret_len)
{
        return prefix(s, len, n, ret_len);
}

static uint32_t decode_cp(const uint8_t *s, size_t l)
{
        static const uint8_t mask[] = {0, 0x7f, 0x1f, 0x0f, 0x07};
        uint32_t cp = s[0] & mask[l];

        for (size_t i = 1; i < l; i++)
                cp = cp << 6 | (s[i] & 0x3f);
        return cp;
}

static size_t encode_cp(uint32_t cp, uint8_t *o)
{
        if (cp < 0x80) {
                o[0] = (uint8_t)cp;
                return 1;
        }
        if (cp < 0x800) {
                o[0] = (uint8_t)(0xc0 | cp >> 6);
                o[1] = (uint8_t)(0x80 | (cp & 0x3f));
                return 2;
        }
        if (cp < 0x10000) {
                o[0] = (uint8_t)(0xe0 | cp >> 12);
                o[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
                o[2] = (uint8_t)(0x80 | (cp & 0x3f));
                return 3;
        }
        o[0] = (uint8_t)(0xf0 | cp >> 18);
        o[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3f));
        o[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3f));
        o[3] = (uint8_t)(0x80 | (cp & 0x3f));
        return 4;
}

int ice_bound_truncate_upper(const uint8_t *s, size_t len, size_t n, uint8_t **ret, size_t *ret_len)
{
        size_t plen;
        uint8_t *out;
        int r;

        r = prefix(s, len, n, &plen);
        if (r < 0)
                return r;
        out = floe_malloc(plen + 4);
        if (!out)
                return -ENOMEM;
        memcpy(out, s, plen);
        if (plen == len) {
                *ret = out; /* nothing cut: the value itself */
                *ret_len = len;
                return 0;
        }
        /* increment the last code point that can be, dropping the ones after it */
        while (plen > 0) {
                size_t start = plen - 1;
                uint32_t cp;

                while (start > 0 && (out[start] & 0xc0) == 0x80)
                        start--;
                cp = decode_cp(out + start, plen - start) + 1;
                if (cp == 0xd800)
                        cp = 0xe000; /* surrogates are no code points */
                if (cp <= 0x10ffff) {
                        *ret_len = start + encode_cp(cp, out + start);
                        *ret = out;
                        return 0;
                }
                plen = start;
        }
        floe_free(out);
        return -ERANGE;
}

void ice_data_file_clear(struct ice_data_file *f)
{
        floe_free(f->path);
        floe_free(f->format);
        for (size_t i = 0; i < f->n_partition; i++)
                ice_datum_clear(&f->partition[i]);
        floe_free(f->partition);
        for (size_t i = 0; i < f->n_columns; i++) {
                floe_free(f->columns[i].lower);
                floe_free(f->columns[i].upper);
        }
        floe_free(f->columns);
        floe_free(f->split_offsets);
        floe_free(f->equality_ids);
        floe_free(f->key_metadata);
        floe_free(f->referenced_data_file);
        *f = (struct ice_data_file){.sort_order_id = -1};
}

static int dup_mem(const void *p, size_t n, size_t size, void **ret)
{
        void *c;

        if (!p || n == 0) {
                *ret = NULL;
                return 0;
        }
        c = floe_reallocarray(NULL, n, size);
        if (!c)
                return -ENOMEM;
        memcpy(c, p, n * size);
        *ret = c;
        return 0;
}

static int dup_str(const char *s, char **ret)
{
        *ret = NULL;
        if (!s)
                return 0;
        *ret = floe_strdup(s);
        return *ret ? 0 : -ENOMEM;
}

int ice_data_file_add_column(struct ice_data_file *f, const struct ice_column_metrics *m)
{
        struct ice_column_metrics *c, n = *m;

        n.lower = n.upper = NULL;
        if (dup_mem(m->lower, m->lower_len, 1, (void **)&n.lower) < 0 ||
            dup_mem(m->upper, m->upper_len, 1, (void **)&n.upper) < 0)
                goto nomem;
        c = floe_reallocarray(f->columns, f->n_columns + 1, sizeof(*c));
        if (!c)
                goto nomem;
        f->columns = c;
        c[f->n_columns++] = n;
        return 0;
nomem:
        floe_free(n.lower);
        floe_free(n.upper);
        return -ENOMEM;
}

int ice_data_file_copy(const struct ice_data_file *src, struct ice_data_file *ret)
{
        struct ice_data_file f = *src;
        int r = 0;

        f.path = f.format = f.referenced_data_file = NULL;
        f.partition = NULL;
        f.columns = NULL;
        f.split_offsets = NULL;
        f.equality_ids = NULL;
        f.key_metadata = NULL;
        f.n_partition = f.n_columns = 0;
        if (dup_str(src->path, &f.path) < 0 || dup_str(src->format, &f.format) < 0 ||
            dup_str(src->referenced_data_file, &f.referenced_data_file) < 0 ||
            dup_mem(src->split_offsets, src->n_split_offsets, sizeof(int64_t),
                    (void **)&f.split_offsets) < 0 ||
            dup_mem(src->equality_ids, src->n_equality_ids, sizeof(int32_t),
                    (void **)&f.equality_ids) < 0 ||
            dup_mem(src->key_metadata, src->key_metadata_len, 1, (void **)&f.key_metadata) < 0)
                r = -ENOMEM;
        if (r == 0 && src->n_partition) {
                f.partition = floe_calloc(src->n_partition, sizeof(*f.partition));
                if (!f.partition)
                        r = -ENOMEM;
                for (size_t i = 0; r == 0 && i < src->n_partition; i++) {
                        r = ice_datum_copy(&src->partition[i], &f.partition[i]);
                        if (r == 0)
                                f.n_partition = i + 1;
                }
        }
        for (size_t i = 0; r == 0 && i < src->n_columns; i++)
                r = ice_data_file_add_column(&f, &src->columns[i]);
        if (r < 0) {
                ice_data_file_clear(&f);
                return r;
        }
        *ret = f;
        return 0;
}
