/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <string.h>

#include "floe-varint.h"
#include "parquet-rle.h"

size_t parquet_rle_max_size(size_t n, unsigned bw)
{
        /* per group of 8: bw packed bytes plus, at worst, an RLE run's header and value */
        return (n / 8 + 2) * (bw + 10);
}

/* The hybrid encoder (the algorithm of Impala's and Arrow's RleEncoder): values
 * are buffered 8 at a time; 8 equal values start an RLE run, anything else goes
 * into a bit-packed run whose 1-byte indicator is patched when the run ends. */
struct rle {
        uint8_t *out;
        unsigned bw, vbytes;
        uint32_t mask;
        uint32_t cur;
        uint64_t repeat;
        uint32_t buf[8];
        unsigned nbuf;
        uint8_t *indicator; /* of the open bit-packed run */
        unsigned groups;    /* in the open bit-packed run */
};

static void pack8(const uint32_t *v, unsigned bw, uint8_t *out)
{
        uint64_t acc = 0;
        unsigned nb = 0;

        for (unsigned i = 0; i < 8; i++) {
                acc |= (uint64_t)v[i] << nb;
                nb += bw;
                while (nb >= 8) {
                        *out++ = (uint8_t)acc;
                        acc >>= 8;
                        nb -= 8;
                }
        }
}

static void flush_repeat(struct rle *e)
{
        uint32_t v = e->cur;

        e->out += floe_varint_put(e->out, e->repeat << 1);
        for (unsigned i = 0; i < e->vbytes; i++, v >>= 8)
                *e->out++ = (uint8_t)v;
        e->repeat = 0;
}

static void flush_literal(struct rle *e, bool close)
{
        if (!e->indicator)
                e->indicator = e->out++;
        if (e->nbuf > 0) {
                pack8(e->buf, e->bw, e->out);
                e->out += e->bw;
                e->nbuf = 0;
        }
        if (close) {
                *e->indicator = (uint8_t)(e->groups << 1 | 1);
                e->indicator = NULL;
                e->groups = 0;
        }
}

static void flush_buffered(struct rle *e)
{
        if (e->repeat >= 8) {
                /* the buffered values belong to the RLE run */
                e->nbuf = 0;
                if (e->groups > 0)
                        flush_literal(e, true);
                return;
        }
        e->groups++;
        flush_literal(e, e->groups >= 63);
        e->repeat = 0;
}

static inline void rle_put(struct rle *e, uint32_t v)
{
        v &= e->mask;
        if (v == e->cur) {
                if (++e->repeat > 8)
                        return;
        } else {
                if (e->repeat >= 8)
                        flush_repeat(e);
                e->repeat = 1;
                e->cur = v;
        }
        e->buf[e->nbuf++] = v;
        if (e->nbuf == 8)
                flush_buffered(e);
}

static void rle_finish(struct rle *e)
{
        if (e->groups == 0 && e->repeat > 0 && e->repeat == e->nbuf) {
                flush_repeat(e);
                e->nbuf = 0;
        } else if (e->groups == 0 && e->nbuf == 0) {
                if (e->repeat > 0)
                        flush_repeat(e);
        } else {
                if (e->nbuf > 0) {
                        while (e->nbuf < 8)
                                e->buf[e->nbuf++] = 0;
                        e->groups++;
                }
                flush_literal(e, true);
        }
}

static int rle_begin(struct rle *e, struct parquet_buf *out, size_t n, unsigned bw)
{
        int r;

        if (bw > 32)
                return -EINVAL;
        r = parquet_buf_reserve(out, parquet_rle_max_size(n, bw));
        if (r < 0)
                return r;
        *e = (struct rle){
                .out = out->data + out->len,
                .bw = bw,
                .vbytes = (bw + 7) / 8,
                .mask = bw == 32 ? UINT32_MAX : (1u << bw) - 1,
        };
        return 0;
}

int parquet_rle_encode(struct parquet_buf *out, const uint32_t *values, size_t n, unsigned bw)
{
        struct rle e;
        int r = rle_begin(&e, out, n, bw);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                rle_put(&e, values[i]);
        rle_finish(&e);
        out->len = (size_t)(e.out - out->data);
        return 0;
}

int parquet_rle_encode_u8(struct parquet_buf *out, const uint8_t *values, size_t n, unsigned bw)
{
        struct rle e;
        int r = rle_begin(&e, out, n, bw);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                rle_put(&e, values[i]);
        rle_finish(&e);
        out->len = (size_t)(e.out - out->data);
        return 0;
}

/* w (0..64) bits at bit offset pos, LSB first. */
static uint64_t get_bits(const uint8_t *in, size_t pos, unsigned w)
{
        const uint8_t *p = in + (pos >> 3);
        unsigned shift = pos & 7, got = 0;
        uint64_t v = 0;

        while (got < w) {
                v |= (uint64_t)(*p++ >> shift) << got;
                got += 8 - shift;
                shift = 0;
        }
        return w == 64 ? v : v & ((UINT64_C(1) << w) - 1);
}

int parquet_rle_decode(const uint8_t *p, size_t len, unsigned bw, uint32_t *out, size_t n,
                       size_t *ret_used)
{
        size_t pos = 0, got = 0;
        unsigned vbytes = (bw + 7) / 8;

        if (bw > 32)
                return -EINVAL;
        while (got < n) {
                uint64_t header, count;

                if (floe_varint_get(p, len, &pos, &header) < 0 || header > UINT32_MAX)
                        return -EBADMSG;
                count = header >> 1;
                if (count == 0)
                        return -EBADMSG;
                if (header & 1) {
                        size_t take = count * 8 < n - got ? (size_t)count * 8 : n - got;
                        size_t need = (take * bw + 7) / 8;

                        if (len - pos < need)
                                return -EBADMSG;
                        for (size_t i = 0; i < take; i++)
                                out[got + i] = (uint32_t)get_bits(p + pos, i * bw, bw);
                        /* a complete run is consumed whole; a short last one as far as it goes */
                        pos += len - pos < count * bw ? need : (size_t)count * bw;
                        got += take;
                } else {
                        size_t take = count < n - got ? (size_t)count : n - got;
                        uint32_t v = 0;

                        if (len - pos < vbytes)
                                return -EBADMSG;
                        for (unsigned i = 0; i < vbytes; i++)
                                v |= (uint32_t)p[pos + i] << (8 * i);
                        pos += vbytes;
                        if (bw < 32 && v >> bw != 0)
                                return -EBADMSG;
                        for (size_t i = 0; i < take; i++)
                                out[got + i] = v;
                        got += take;
                }
        }
        if (ret_used)
                *ret_used = pos;
        return 0;
}

void parquet_bitpack64(const uint64_t *values, size_t n, unsigned bw, uint8_t *out)
{
        uint64_t mask = bw == 64 ? UINT64_MAX : (UINT64_C(1) << bw) - 1;
        uint64_t acc = 0;
        unsigned nb = 0;

        if (bw == 0)
                return;
        for (size_t i = 0; i < n; i++) {
                uint64_t v = values[i] & mask;

                acc |= v << nb;
                if (nb + bw >= 64) {
                        memcpy(out, &acc, 8);
                        out += 8;
                        acc = nb == 0 ? 0 : v >> (64 - nb);
                        nb = nb + bw - 64;
                } else {
                        nb += bw;
                }
        }
        for (; nb > 0; nb -= 8, acc >>= 8)
                *out++ = (uint8_t)acc;
}

void parquet_bitunpack64(const uint8_t *in, size_t n, unsigned bw, uint64_t *values)
{
        for (size_t i = 0; i < n; i++)
                values[i] = get_bits(in, i * bw, bw);
}

int parquet_split_encode(struct parquet_buf *out, const void *values, size_t n, unsigned width)
{
        const uint8_t *v = values;
        uint8_t *o;
        int r;

        if (width == 0 || n > SIZE_MAX / 2 / width)
                return -EINVAL;
        r = parquet_buf_reserve(out, n * width);
        if (r < 0)
                return r;
        o = out->data + out->len;
        for (unsigned k = 0; k < width; k++) {
                uint8_t *s = o + k * n;

                for (size_t i = 0; i < n; i++)
                        s[i] = v[i * width + k];
        }
        out->len += n * width;
        return 0;
}

void parquet_split_decode(const uint8_t *in, size_t n, unsigned width, void *values)
{
        uint8_t *v = values;

        for (unsigned k = 0; k < width; k++)
                for (size_t i = 0; i < n; i++)
                        v[i * width + k] = in[k * n + i];
}
