/* SPDX-License-Identifier: Apache-2.0 */
/* (epoch, seq) of a batch that did not decode: a forgiving reader of a hostile payload. */
#include <errno.h>
#include <string.h>
#include <zstd.h>

#include "deadletter.h"
#include "floe-alloc.h"

struct head {
        unsigned major;
        uint64_t arg;
};

/* One item head: major type and argument. No indefinite lengths. */
static int read_head(const uint8_t **p, const uint8_t *end, struct head *h)
{
        unsigned ai, n;

        if (*p >= end)
                return -EBADMSG;
        h->major = **p >> 5;
        ai = **p & 0x1f;
        (*p)++;
        if (ai < 24) {
                h->arg = ai;
                return 0;
        }
        if (ai > 27)
                return -EBADMSG; /* reserved, or indefinite */
        n = 1u << (ai - 24);
        if ((size_t)(end - *p) < n)
                return -EBADMSG;
        h->arg = 0;
        for (unsigned i = 0; i < n; i++)
                h->arg = h->arg << 8 | (*p)[i];
        *p += n;
        return 0;
}

/* Skips one data item, nested items too, without recursion: each pending item takes at least
 * one byte, so more pending items than bytes left is malformed. */
static int skip(const uint8_t **p, const uint8_t *end)
{
        uint64_t pending = 1;

        while (pending > 0) {
                struct head h;
                size_t left;
                int r;

                pending--;
                r = read_head(p, end, &h);
                if (r < 0)
                        return r;
                left = (size_t)(end - *p);
                switch (h.major) {
                case 2: /* byte and text strings */
                case 3:
                        if (h.arg > left)
                                return -EBADMSG;
                        *p += h.arg;
                        break;
                case 4: /* arrays */
                        if (h.arg > left || pending + h.arg > left)
                                return -EBADMSG;
                        pending += h.arg;
                        break;
                case 5: /* maps */
                        if (h.arg > left / 2 || pending + 2 * h.arg > left)
                                return -EBADMSG;
                        pending += 2 * h.arg;
                        break;
                case 6: /* a tag: its content follows */
                        pending++;
                        break;
                default: /* integers, simple values, floats: the head was all */
                        break;
                }
        }
        return 0;
}

int upl_peek_seq_cbor(const uint8_t *p, size_t len, uint64_t *ret_epoch, uint64_t *ret_seq)
{
        const uint8_t *end = p + len;
        bool have_epoch = false, have_seq = false;
        uint64_t epoch = 0, seq = 0;
        struct head h;
        int r;

        r = read_head(&p, end, &h);
        if (r < 0 || h.major != 5 || h.arg > len / 2)
                return -EBADMSG;
        for (uint64_t i = 0; i < h.arg; i++) {
                struct head k, v;
                const uint8_t *key;

                r = read_head(&p, end, &k);
                if (r < 0 || k.major != 3 || k.arg > (size_t)(end - p))
                        return -EBADMSG;
                key = p;
                p += k.arg;
                if ((k.arg == 5 && memcmp(key, "epoch", 5) == 0) ||
                    (k.arg == 3 && memcmp(key, "seq", 3) == 0)) {
                        r = read_head(&p, end, &v);
                        if (r < 0 || v.major != 0)
                                return -EBADMSG;
                        if (k.arg == 5) {
                                epoch = v.arg;
                                have_epoch = true;
                        } else {
                                seq = v.arg;
                                have_seq = true;
                        }
                        continue;
                }
                r = skip(&p, end);
                if (r < 0)
                        return r;
        }
        if (!have_epoch || !have_seq)
                return -EBADMSG;
        *ret_epoch = epoch;
        *ret_seq = seq;
        return 0;
}

int upl_peek_seq(const void *data, size_t len, size_t max_decompressed, uint64_t *ret_epoch,
                 uint64_t *ret_seq)
{
        unsigned long long size = ZSTD_getFrameContentSize(data, len);
        _cleanup_free_ uint8_t *out = NULL;
        size_t n;

        if (size == ZSTD_CONTENTSIZE_UNKNOWN || size == ZSTD_CONTENTSIZE_ERROR ||
            size > max_decompressed)
                return -EBADMSG;
        out = floe_malloc(size ? (size_t)size : 1);
        if (!out)
                return -ENOMEM;
        n = ZSTD_decompress(out, (size_t)size, data, len);
        if (ZSTD_isError(n) || n != size)
                return -EBADMSG;
        return upl_peek_seq_cbor(out, n, ret_epoch, ret_seq);
}
