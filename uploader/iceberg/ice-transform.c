/* SPDX-License-Identifier: Apache-2.0 */
/* Partition transforms (spec "Partition Transforms", Appendix B), their human strings and the
 * partition path of a data file. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "iceberg.h"

#define US_PER_HOUR (INT64_C(3600) * 1000000)
#define US_PER_DAY  (INT64_C(86400) * 1000000)

static uint32_t rotl32(uint32_t x, unsigned r)
{
        return x << r | x >> (32 - r);
}

static uint32_t mix_k(uint32_t k)
{
        k *= 0xcc9e2d51;
        k = rotl32(k, 15);
        return k * 0x1b873593;
}

uint32_t ice_murmur3_32(const void *data, size_t len)
{
        const uint8_t *p = data;
        uint32_t h = 0, k;
        size_t i;

        for (i = 0; i + 4 <= len; i += 4) {
                k = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                    (uint32_t)p[i + 3] << 24;
                h ^= mix_k(k);
                h = rotl32(h, 13);
                h = h * 5 + 0xe6546b64;
        }
        k = 0;
        switch (len & 3) {
        case 3:
                k ^= (uint32_t)p[i + 2] << 16;
                /* fall through */
        case 2:
                k ^= (uint32_t)p[i + 1] << 8;
                /* fall through */
        case 1:
                k ^= p[i];
                h ^= mix_k(k);
        }
        h ^= (uint32_t)len;
        h ^= h >> 16;
        h *= 0x85ebca6b;
        h ^= h >> 13;
        h *= 0xc2b2ae35;
        h ^= h >> 16;
        return h;
}

static uint32_t hash_long(int64_t v)
{
        uint8_t b[8];

        for (int i = 0; i < 8; i++)
                b[i] = (uint8_t)((uint64_t)v >> (8 * i));
        return ice_murmur3_32(b, 8);
}

static int64_t floor_div(int64_t a, int64_t b)
{
        int64_t q = a / b;

        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int ice_bucket_hash(const struct ice_datum *v, int32_t *ret)
{
        uint32_t h;

        switch (v->type) {
        case ICE_TYPE_INT:
        case ICE_TYPE_DATE: /* the spec's test vector for dates is hashLong(days) */
                h = hash_long(v->v.i);
                break;
        case ICE_TYPE_LONG:
        case ICE_TYPE_TIME:
        case ICE_TYPE_TIMESTAMP:
        case ICE_TYPE_TIMESTAMPTZ:
                h = hash_long(v->v.l);
                break;
        case ICE_TYPE_TIMESTAMP_NS:
        case ICE_TYPE_TIMESTAMPTZ_NS:
                h = hash_long(floor_div(v->v.l, 1000));
                break;
        case ICE_TYPE_DECIMAL: {
                struct ice_datum d = *v;
                uint8_t *min;
                size_t n;
                int r;

                r = ice_value_serialize(&d, &min, &n);
                if (r < 0)
                        return r;
                h = ice_murmur3_32(min, n);
                floe_free(min);
                break;
        }
        case ICE_TYPE_STRING:
        case ICE_TYPE_UUID:
        case ICE_TYPE_FIXED:
        case ICE_TYPE_BINARY:
                h = ice_murmur3_32(v->bytes, v->len);
                break;
        default:
                return -EINVAL;
        }
        *ret = (int32_t)h;
        return 0;
}

static const char *const KINDS[] = {
        [ICE_TRANSFORM_IDENTITY] = "identity", [ICE_TRANSFORM_YEAR] = "year",
        [ICE_TRANSFORM_MONTH] = "month",       [ICE_TRANSFORM_DAY] = "day",
        [ICE_TRANSFORM_HOUR] = "hour",         [ICE_TRANSFORM_VOID] = "void",
};

int ice_transform_parse(const char *s, struct ice_transform *ret)
{
        const char *arg = NULL;
        enum ice_transform_kind k;
        char *end;
        long n;

        for (size_t i = 0; i < ELEMENTSOF(KINDS); i++)
                if (KINDS[i] && strcmp(s, KINDS[i]) == 0) {
                        *ret = (struct ice_transform){.kind = (enum ice_transform_kind)i};
                        return 0;
                }
        if (strncmp(s, "bucket[", 7) == 0) {
                k = ICE_TRANSFORM_BUCKET;
                arg = s + 7;
        } else if (strncmp(s, "truncate[", 9) == 0) {
                k = ICE_TRANSFORM_TRUNCATE;
                arg = s + 9;
        } else {
                *ret = (struct ice_transform){.kind = ICE_TRANSFORM_UNKNOWN};
                return 0;
        }
        if (*arg < '1' || *arg > '9')
                return -EINVAL;
        errno = 0;
        n = strtol(arg, &end, 10);
        if (errno || n <= 0 || n > INT32_MAX || strcmp(end, "]") != 0)
                return -EINVAL;
        *ret = (struct ice_transform){.kind = k, .param = (int32_t)n};
        return 0;
}

int ice_transform_format(const struct ice_transform *t, char *buf, size_t size)
{
        int n;

        if (t->kind == ICE_TRANSFORM_BUCKET)
                n = snprintf(buf, size, "bucket[%" PRId32 "]", t->param);
        else if (t->kind == ICE_TRANSFORM_TRUNCATE)
                n = snprintf(buf, size, "truncate[%" PRId32 "]", t->param);
        else if ((size_t)t->kind < ELEMENTSOF(KINDS) && KINDS[t->kind])
                n = snprintf(buf, size, "%s", KINDS[t->kind]);
        else
                return -EINVAL;
        return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

static bool is_time(enum ice_type_id t, bool dates)
{
        return (dates && t == ICE_TYPE_DATE) || t == ICE_TYPE_TIMESTAMP ||
               t == ICE_TYPE_TIMESTAMPTZ || t == ICE_TYPE_TIMESTAMP_NS ||
               t == ICE_TYPE_TIMESTAMPTZ_NS;
}

int ice_transform_result_type(const struct ice_transform *t, const struct ice_type *source,
                              struct ice_type *ret)
{
        enum ice_type_id s = source->id;

        if (!ice_type_is_primitive(source))
                return -EINVAL;
        switch (t->kind) {
        case ICE_TRANSFORM_IDENTITY:
        case ICE_TRANSFORM_VOID:
                *ret = *source;
                return 0;
        case ICE_TRANSFORM_BUCKET:
                if (s == ICE_TYPE_BOOLEAN || s == ICE_TYPE_FLOAT || s == ICE_TYPE_DOUBLE)
                        return -EINVAL;
                *ret = (struct ice_type){.id = ICE_TYPE_INT};
                return 0;
        case ICE_TRANSFORM_TRUNCATE:
                if (s != ICE_TYPE_INT && s != ICE_TYPE_LONG && s != ICE_TYPE_STRING &&
                    s != ICE_TYPE_BINARY && s != ICE_TYPE_DECIMAL)
                        return -EINVAL;
                *ret = *source;
                return 0;
        case ICE_TRANSFORM_YEAR:
        case ICE_TRANSFORM_MONTH:
        case ICE_TRANSFORM_DAY:
        case ICE_TRANSFORM_HOUR:
                if (!is_time(s, t->kind != ICE_TRANSFORM_HOUR))
                        return -EINVAL;
                *ret = (struct ice_type){.id = t->kind == ICE_TRANSFORM_DAY ? ICE_TYPE_DATE
                                                                            : ICE_TYPE_INT};
                return 0;
        default:
                return -EOPNOTSUPP;
        }
}

/* Civil date of a day number (proleptic Gregorian; H. Hinnant's algorithm). */
static void civil(int64_t days, int64_t *ret_y, unsigned *ret_m, unsigned *ret_d)
{
        int64_t z = days + 719468, era = floor_div(z, 146097);
        uint64_t doe = (uint64_t)(z - era * 146097);
        uint64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        uint64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        uint64_t mp = (5 * doy + 2) / 153;
        unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);

        *ret_y = (int64_t)yoe + era * 400 + (m <= 2);
        *ret_m = m;
        *ret_d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
}

/* Microseconds since the epoch of a date/timestamp value. */
static int64_t to_micros(const struct ice_datum *v)
{
        if (v->type == ICE_TYPE_DATE)
                return v->v.i * US_PER_DAY;
        if (v->type == ICE_TYPE_TIMESTAMP_NS || v->type == ICE_TYPE_TIMESTAMPTZ_NS)
                return floor_div(v->v.l, 1000);
        return v->v.l;
}

static int truncate_value(int32_t w, const struct ice_datum *in, struct ice_datum *out)
{
        size_t n;
        int r;

        switch (in->type) {
        case ICE_TYPE_INT:
                out->v.i = (int32_t)(in->v.i - (((int64_t)in->v.i % w) + w) % w);
                return 0;
        case ICE_TYPE_LONG:
                out->v.l = in->v.l - (((in->v.l % w) + w) % w);
                return 0;
        case ICE_TYPE_STRING:
                r = ice_bound_truncate_lower(in->bytes, in->len, (size_t)w, &n);
                break;
        case ICE_TYPE_BINARY:
                n = in->len < (size_t)w ? in->len : (size_t)w;
                r = 0;
                break;
        case ICE_TYPE_DECIMAL: {
                int64_t u = 0;
                uint8_t *b;

                if (in->len == 0 || in->len > 8)
                        return -EOPNOTSUPP; /* unscaled values beyond 64 bits */
                u = (in->bytes[0] & 0x80) ? -1 : 0;
                for (size_t i = 0; i < in->len; i++)
                        u = (int64_t)((uint64_t)u << 8 | in->bytes[i]);
                u -= ((u % w) + w) % w;
                b = floe_malloc(8);
                if (!b)
                        return -ENOMEM;
                for (int i = 0; i < 8; i++)
                        b[i] = (uint8_t)((uint64_t)u >> (56 - 8 * i));
                out->bytes = b;
                out->len = 8;
                return 0;
        }
        default:
                return -EINVAL;
        }
        if (r < 0)
                return r;
        out->bytes = floe_malloc(n ? n : 1);
        if (!out->bytes)
                return -ENOMEM;
        if (n)
                memcpy(out->bytes, in->bytes, n);
        out->len = n;
        return 0;
}

int ice_transform_apply(const struct ice_transform *t, const struct ice_type *source,
                        const struct ice_datum *in, struct ice_datum *ret)
{
        struct ice_type rt;
        struct ice_datum out = {0};
        int64_t y;
        unsigned m, d;
        int r;

        r = ice_transform_result_type(t, source, &rt);
        if (r < 0)
                return r;
        if (in->type != source->id)
                return -EINVAL;
        out.type = rt.id;
        if (in->null || t->kind == ICE_TRANSFORM_VOID) {
                out.null = true;
                *ret = out;
                return 0;
        }
        switch (t->kind) {
        case ICE_TRANSFORM_IDENTITY:
                return ice_datum_copy(in, ret);
        case ICE_TRANSFORM_BUCKET: {
                int32_t h;

                r = ice_bucket_hash(in, &h);
                if (r < 0)
                        return r;
                out.v.i = (int32_t)(((uint32_t)h & INT32_MAX) % (uint32_t)t->param);
                break;
        }
        case ICE_TRANSFORM_TRUNCATE:
                r = truncate_value(t->param, in, &out);
                if (r < 0)
                        return r;
                break;
        case ICE_TRANSFORM_HOUR:
                out.v.i = (int32_t)floor_div(to_micros(in), US_PER_HOUR);
                break;
        case ICE_TRANSFORM_DAY:
                out.v.i = (int32_t)floor_div(to_micros(in), US_PER_DAY);
                break;
        case ICE_TRANSFORM_MONTH:
        case ICE_TRANSFORM_YEAR:
                civil(floor_div(to_micros(in), US_PER_DAY), &y, &m, &d);
                out.v.i = (int32_t)(t->kind == ICE_TRANSFORM_YEAR ? y - 1970
                                                                  : (y - 1970) * 12 + m - 1);
                break;
        default:
                return -EOPNOTSUPP;
        }
        *ret = out;
        return 0;
}

static int put(size_t size, int n)
{
        return n < 0 || (size_t)n >= size ? -ENOSPC : 0;
}

static int human_date(int64_t days, char *buf, size_t size)
{
        int64_t y;
        unsigned m, d;

        civil(days, &y, &m, &d);
        return put(size, snprintf(buf, size, "%04" PRId64 "-%02u-%02u", y, m, d));
}

/* Appends to a NUL-terminated buffer; -ENOSPC sticks. */
static int append(char *buf, size_t size, int err, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static int append(char *buf, size_t size, int err, const char *fmt, ...)
{
        size_t o = strnlen(buf, size);
        va_list ap;
        int n;

        if (err < 0)
                return err;
        va_start(ap, fmt);
        n = vsnprintf(buf + o, size - o, fmt, ap);
        va_end(ap);
        return put(size - o, n);
}

/* As java.time prints it: "2017-11-16T22:31", "...T22:31:08", "...T22:31:08.000001", plus "Z"
 * with a zone. */
static int human_timestamp(const struct ice_datum *v, char *buf, size_t size)
{
        bool tz = v->type == ICE_TYPE_TIMESTAMPTZ || v->type == ICE_TYPE_TIMESTAMPTZ_NS;
        int64_t us = to_micros(v), days = floor_div(us, US_PER_DAY);
        int64_t rem = us - days * US_PER_DAY, sec = rem / 1000000 % 60, frac = rem % 1000000;
        int r;

        r = human_date(days, buf, size);
        r = append(buf, size, r, "T%02" PRId64 ":%02" PRId64, rem / US_PER_HOUR,
                   rem / 60000000 % 60);
        if (sec || frac)
                r = append(buf, size, r, ":%02" PRId64, sec);
        if (frac && frac % 1000 == 0)
                r = append(buf, size, r, ".%03" PRId64, frac / 1000);
        else if (frac)
                r = append(buf, size, r, ".%06" PRId64, frac);
        if (tz)
                r = append(buf, size, r, "Z");
        return r;
}

static int human_value(const struct ice_datum *v, char *buf, size_t size)
{

        switch (v->type) {
        case ICE_TYPE_BOOLEAN:
                return put(size, snprintf(buf, size, "%s", v->v.b ? "true" : "false"));
        case ICE_TYPE_INT:
                return put(size, snprintf(buf, size, "%" PRId32, v->v.i));
        case ICE_TYPE_LONG:
        case ICE_TYPE_TIME:
                return put(size, snprintf(buf, size, "%" PRId64, v->v.l));
        case ICE_TYPE_FLOAT:
                return put(size, snprintf(buf, size, "%.9g", (double)v->v.f));
        case ICE_TYPE_DOUBLE:
                return put(size, snprintf(buf, size, "%.17g", v->v.d));
        case ICE_TYPE_DATE:
                return human_date(v->v.i, buf, size);
        case ICE_TYPE_TIMESTAMP:
        case ICE_TYPE_TIMESTAMPTZ:
        case ICE_TYPE_TIMESTAMP_NS:
        case ICE_TYPE_TIMESTAMPTZ_NS:
                return human_timestamp(v, buf, size);
        case ICE_TYPE_STRING:
                return put(size, snprintf(buf, size, "%.*s", (int)v->len, v->bytes));
        default: {
                /* uuid, fixed, binary, decimal: hex digits */
                size_t o = 0;

                if (2 * v->len >= size)
                        return -ENOSPC;
                for (size_t i = 0; i < v->len; i++)
                        o += (size_t)snprintf(buf + o, size - o, "%02x", v->bytes[i]);
                buf[o] = '\0';
                return 0;
        }
        }
}

int ice_partition_human(const struct ice_transform *t, const struct ice_datum *v, char *buf,
                        size_t size)
{
        int64_t y;
        unsigned m, d;
        int32_t i;

        if (v->null)
                return put(size, snprintf(buf, size, "null"));
        i = v->v.i;
        switch (t->kind) {
        case ICE_TRANSFORM_YEAR:
                return put(size, snprintf(buf, size, "%04" PRId64, (int64_t)1970 + i));
        case ICE_TRANSFORM_MONTH:
                y = 1970 + floor_div(i, 12);
                return put(size, snprintf(buf, size, "%04" PRId64 "-%02" PRId64, y,
                                          i - floor_div(i, 12) * 12 + 1));
        case ICE_TRANSFORM_DAY:
                return human_date(i, buf, size);
        case ICE_TRANSFORM_HOUR:
                civil(floor_div(i, 24), &y, &m, &d);
                return put(size, snprintf(buf, size, "%04" PRId64 "-%02u-%02u-%02" PRId64, y, m, d,
                                          i - floor_div(i, 24) * 24));
        default:
                return human_value(v, buf, size);
        }
}

/* application/x-www-form-urlencoded, as java.net.URLEncoder (UTF-8) writes it. */
static int url_encode(const char *s, char *buf, size_t size, size_t *pos)
{
        static const char hex[] = "0123456789ABCDEF";

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '*' || c == '_';

                if (size - *pos < 4)
                        return -ENOSPC;
                if (plain) {
                        buf[(*pos)++] = (char)c;
                } else if (c == ' ') {
                        buf[(*pos)++] = '+';
                } else {
                        buf[(*pos)++] = '%';
                        buf[(*pos)++] = hex[c >> 4];
                        buf[(*pos)++] = hex[c & 15];
                }
        }
        buf[*pos] = '\0';
        return 0;
}

int ice_partition_path(const struct ice_partition_spec *spec, const struct ice_datum *values,
                       size_t n, char *buf, size_t size)
{
        char human[512];
        size_t pos = 0;
        int r;

        if (n != spec->n_fields || size == 0)
                return -EINVAL;
        buf[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                r = ice_partition_human(&spec->fields[i].transform, &values[i], human,
                                        sizeof(human));
                if (r < 0)
                        return r;
                if (i > 0) {
                        if (size - pos < 2)
                                return -ENOSPC;
                        buf[pos++] = '/';
                }
                r = url_encode(spec->fields[i].name, buf, size, &pos);
                if (r < 0)
                        return r;
                if (size - pos < 2)
                        return -ENOSPC;
                buf[pos++] = '=';
                r = url_encode(human, buf, size, &pos);
                if (r < 0)
                        return r;
        }
        buf[pos] = '\0';
        return 0;
}
