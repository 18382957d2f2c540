/* SPDX-License-Identifier: Apache-2.0 */
/* Avro binary encoding: zigzag varints, IEEE 754 little-endian floats, length-prefixed bytes. */
#include <errno.h>
#include <string.h>

#include "avro.h"
#include "floe-alloc.h"

void avro_buf_release(struct avro_buf *b)
{
        floe_free(b->data);
        *b = (struct avro_buf){0};
}

static bool reserve(struct avro_buf *b, size_t n)
{
        size_t cap;
        uint8_t *p;

        if (b->err)
                return false;
        if (n <= b->cap - b->len)
                return true;
        if (n > SIZE_MAX / 2 - b->len) {
                b->err = -ENOMEM;
                return false;
        }
        cap = b->cap ? b->cap : 256;
        while (cap - b->len < n)
                cap *= 2;
        p = floe_realloc(b->data, cap);
        if (!p) {
                b->err = -ENOMEM;
                return false;
        }
        b->data = p;
        b->cap = cap;
        return true;
}

void avro_put_raw(struct avro_buf *b, const void *p, size_t len)
{
        if (len == 0 || !reserve(b, len))
                return;
        memcpy(b->data + b->len, p, len);
        b->len += len;
}

void avro_put_long(struct avro_buf *b, int64_t v)
{
        uint64_t u = ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));

        if (!reserve(b, 10))
                return;
        while (u >= 0x80) {
                b->data[b->len++] = (uint8_t)(u | 0x80);
                u >>= 7;
        }
        b->data[b->len++] = (uint8_t)u;
}

void avro_put_bool(struct avro_buf *b, bool v)
{
        uint8_t c = v ? 1 : 0;

        avro_put_raw(b, &c, 1);
}

static void put_le(struct avro_buf *b, uint64_t u, size_t n)
{
        uint8_t tmp[8];

        for (size_t i = 0; i < n; i++)
                tmp[i] = (uint8_t)(u >> (8 * i));
        avro_put_raw(b, tmp, n);
}

void avro_put_float(struct avro_buf *b, float v)
{
        uint32_t u;

        memcpy(&u, &v, sizeof(u));
        put_le(b, u, 4);
}

void avro_put_double(struct avro_buf *b, double v)
{
        uint64_t u;

        memcpy(&u, &v, sizeof(u));
        put_le(b, u, 8);
}

void avro_put_bytes(struct avro_buf *b, const void *p, size_t len)
{
        avro_put_long(b, (int64_t)len);
        avro_put_raw(b, p, len);
}

void avro_put_string(struct avro_buf *b, const char *s)
{
        avro_put_bytes(b, s ? s : "", s ? strlen(s) : 0);
}

int avro_get_long(const uint8_t *p, size_t len, size_t *pos, int64_t *ret)
{
        uint64_t u = 0;
        size_t i = *pos;

        for (unsigned shift = 0;; shift += 7) {
                uint8_t c;

                if (i >= len || shift > 63)
                        return -EBADMSG;
                c = p[i++];
                /* the tenth byte may only carry bit 63 */
                if (shift == 63 && (c & 0x7e))
                        return -EBADMSG;
                u |= (uint64_t)(c & 0x7f) << shift;
                if (!(c & 0x80))
                        break;
        }
        *pos = i;
        *ret = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
        return 0;
}

int avro_get_int(const uint8_t *p, size_t len, size_t *pos, int32_t *ret)
{
        size_t i = *pos;
        int64_t v;
        int r;

        r = avro_get_long(p, len, &i, &v);
        if (r < 0)
                return r;
        if (v < INT32_MIN || v > INT32_MAX)
                return -EBADMSG;
        *pos = i;
        *ret = (int32_t)v;
        return 0;
}

int avro_get_bytes(const uint8_t *p, size_t len, size_t *pos, const uint8_t **ret, size_t *ret_len)
{
        size_t i = *pos;
        int64_t n;
        int r;

        r = avro_get_long(p, len, &i, &n);
        if (r < 0)
                return r;
        if (n < 0 || (uint64_t)n > len - i)
                return -EBADMSG;
        *pos = i + (size_t)n;
        *ret = p + i;
        *ret_len = (size_t)n;
        return 0;
}
