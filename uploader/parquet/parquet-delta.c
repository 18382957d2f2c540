/* SPDX-License-Identifier: Apache-2.0 */
/* DELTA_BINARY_PACKED (Encodings.md): arithmetic wraps in the column's width,
 * done unsigned; INT32 deltas stay within 32 bits so no miniblock is wider. */
#include <errno.h>
#include <string.h>

#include "floe-varint.h"
#include "parquet-rle.h"

#define BLOCK      128
#define MINIBLOCKS 4
#define MINI       (BLOCK / MINIBLOCKS)

static uint64_t load(const uint8_t *v, size_t i, unsigned width)
{
        if (width == 4) {
                uint32_t x;

                memcpy(&x, v + i * 4, 4);
                return x;
        }
        uint64_t x;

        memcpy(&x, v + i * 8, 8);
        return x;
}

/* Sign-extends a width-byte value held in a uint64_t. */
static int64_t as_signed(uint64_t u, unsigned width)
{
        return width == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
}

int parquet_delta_encode(struct parquet_buf *out, const void *values, size_t n, unsigned width)
{
        const uint8_t *v = values;
        uint64_t mask = width == 4 ? UINT32_MAX : UINT64_MAX;
        uint64_t rel[BLOCK];
        size_t blocks;
        uint8_t *o;
        int r;

        if ((width != 4 && width != 8) || n > INT32_MAX)
                return -EINVAL;
        blocks = n > 1 ? (n - 1 + BLOCK - 1) / BLOCK : 0;
        /* header 4 varints; per block a varint, 4 widths and 4 x 32 values of <= 64 bits */
        r = parquet_buf_reserve(out, 40 + blocks * (10 + MINIBLOCKS + BLOCK * 8));
        if (r < 0)
                return r;
        o = out->data + out->len;
        o += floe_varint_put(o, BLOCK);
        o += floe_varint_put(o, MINIBLOCKS);
        o += floe_varint_put(o, n);
        o += floe_varint_put(o, floe_zigzag(n > 0 ? as_signed(load(v, 0, width), width) : 0));

        for (size_t b = 0; b < blocks; b++) {
                size_t first = 1 + b * BLOCK;
                size_t cnt = n - first < BLOCK ? n - first : BLOCK;
                int64_t min = INT64_MAX;
                uint8_t *widths;

                for (size_t i = 0; i < cnt; i++) {
                        uint64_t d =
                                (load(v, first + i, width) - load(v, first + i - 1, width)) & mask;
                        int64_t s = as_signed(d, width);

                        rel[i] = d;
                        if (s < min)
                                min = s;
                }
                for (size_t i = 0; i < cnt; i++)
                        rel[i] = (rel[i] - (uint64_t)min) & mask;
                for (size_t i = cnt; i < BLOCK; i++)
                        rel[i] = 0;
                o += floe_varint_put(o, floe_zigzag(min));
                widths = o;
                o += MINIBLOCKS;
                for (unsigned m = 0; m < MINIBLOCKS; m++) {
                        uint64_t all = 0;
                        unsigned bw;

                        if (m * MINI >= cnt) {
                                widths[m] = 0; /* unused: no data follows */
                                continue;
                        }
                        for (unsigned i = 0; i < MINI; i++)
                                all |= rel[m * MINI + i];
                        bw = parquet_bit_width(all);
                        widths[m] = (uint8_t)bw;
                        parquet_bitpack64(rel + m * MINI, MINI, bw, o);
                        o += MINI * bw / 8;
                }
        }
        out->len = (size_t)(o - out->data);
        return 0;
}

static int get_uleb(const uint8_t *p, size_t len, size_t *pos, uint64_t *ret)
{
        return floe_varint_get(p, len, pos, ret) < 0 ? -EBADMSG : 0;
}

int parquet_delta_decode(const uint8_t *p, size_t len, unsigned width, void *values, size_t n,
                         size_t *ret_used)
{
        uint64_t block, minis, total, u, mask = width == 4 ? UINT32_MAX : UINT64_MAX;
        uint8_t *v = values;
        uint64_t prev, buf[64];
        size_t pos = 0, got = 0;

        if (width != 4 && width != 8)
                return -EINVAL;
        if (get_uleb(p, len, &pos, &block) < 0 || get_uleb(p, len, &pos, &minis) < 0 ||
            get_uleb(p, len, &pos, &total) < 0 || get_uleb(p, len, &pos, &u) < 0)
                return -EBADMSG;
        if (block == 0 || block % 128 != 0 || block > 65536 || minis == 0 || block % minis != 0 ||
            (block / minis) % 32 != 0 || total != n)
                return -EBADMSG;
        prev = (uint64_t)floe_unzigzag(u) & mask;
        if (n > 0) {
                memcpy(v, &prev, width);
                got = 1;
        }
        while (got < n) {
                uint64_t mini = block / minis, zmin;
                const uint8_t *widths;

                if (get_uleb(p, len, &pos, &zmin) < 0 || len - pos < minis)
                        return -EBADMSG;
                widths = p + pos;
                pos += minis;
                for (uint64_t m = 0; m < minis && got < n; m++) {
                        unsigned bw = widths[m];

                        if (bw > width * 8 || len - pos < mini * bw / 8)
                                return -EBADMSG;
                        for (uint64_t i = 0; i < mini; i += 64) {
                                uint64_t k = mini - i < 64 ? mini - i : 64;

                                parquet_bitunpack64(p + pos + i * bw / 8, k, bw, buf);
                                for (uint64_t j = 0; j < k && got < n; j++) {
                                        prev = (prev + (uint64_t)floe_unzigzag(zmin) + buf[j]) &
                                               mask;
                                        memcpy(v + got * width, &prev, width);
                                        got++;
                                }
                        }
                        pos += mini * bw / 8;
                }
        }
        if (ret_used)
                *ret_used = pos;
        return 0;
}
