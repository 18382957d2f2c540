/* SPDX-License-Identifier: Apache-2.0 */
/* Avro object container files: header (magic, metadata map, sync marker) and data blocks,
 * codecs null and deflate (raw RFC 1951) both ways, zstandard for reading. */
#include <errno.h>
#include <openssl/rand.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "avro.h"
#include "floe-alloc.h"

static const uint8_t MAGIC[4] = {'O', 'b', 'j', 1};

struct meta_pair {
        char *key, *value;
};

struct avro_writer {
        char *schema;
        enum avro_codec codec;
        struct meta_pair *meta;
        size_t n_meta;
        uint8_t sync[AVRO_SYNC_SIZE];
        struct avro_buf block, out;
        size_t block_count, max_count, max_bytes;
        bool header_done, done;
};

static const char *codec_name(enum avro_codec c)
{
        switch (c) {
        case AVRO_CODEC_DEFLATE:
                return "deflate";
        case AVRO_CODEC_ZSTANDARD:
                return "zstandard";
        default:
                return "null";
        }
}

int avro_writer_new(const char *schema_json, enum avro_codec codec, struct avro_writer **ret)
{
        struct avro_writer *w;

        if (codec != AVRO_CODEC_NULL && codec != AVRO_CODEC_DEFLATE)
                return -EOPNOTSUPP;
        w = floe_calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->schema = floe_strdup(schema_json);
        if (!w->schema) {
                floe_free(w);
                return -ENOMEM;
        }
        w->codec = codec;
        w->max_count = 1000;
        w->max_bytes = 1u << 20;
        if (RAND_bytes(w->sync, sizeof(w->sync)) != 1) {
                avro_writer_free(w);
                return -EIO;
        }
        *ret = w;
        return 0;
}

struct avro_writer *avro_writer_free(struct avro_writer *w)
{
        if (!w)
                return NULL;
        for (size_t i = 0; i < w->n_meta; i++) {
                floe_free(w->meta[i].key);
                floe_free(w->meta[i].value);
        }
        floe_free(w->meta);
        floe_free(w->schema);
        avro_buf_release(&w->block);
        avro_buf_release(&w->out);
        floe_free(w);
        return NULL;
}

int avro_writer_set_meta(struct avro_writer *w, const char *key, const char *value)
{
        struct meta_pair *m;

        if (w->header_done || w->done || w->block_count > 0 || strcmp(key, "avro.schema") == 0 ||
            strcmp(key, "avro.codec") == 0)
                return -EINVAL;
        m = floe_reallocarray(w->meta, w->n_meta + 1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        w->meta = m;
        m[w->n_meta].key = floe_strdup(key);
        m[w->n_meta].value = floe_strdup(value);
        if (!m[w->n_meta].key || !m[w->n_meta].value) {
                floe_free(m[w->n_meta].key);
                floe_free(m[w->n_meta].value);
                return -ENOMEM;
        }
        w->n_meta++;
        return 0;
}

void avro_writer_set_sync(struct avro_writer *w, const uint8_t sync[AVRO_SYNC_SIZE])
{
        memcpy(w->sync, sync, AVRO_SYNC_SIZE);
}

void avro_writer_set_block(struct avro_writer *w, size_t max_count, size_t max_bytes)
{
        w->max_count = max_count ? max_count : 1;
        w->max_bytes = max_bytes;
}

static void write_header(struct avro_writer *w)
{
        const char *codec = codec_name(w->codec);

        avro_put_raw(&w->out, MAGIC, sizeof(MAGIC));
        avro_put_long(&w->out, (int64_t)w->n_meta + 2);
        avro_put_string(&w->out, "avro.schema");
        avro_put_bytes(&w->out, w->schema, strlen(w->schema));
        avro_put_string(&w->out, "avro.codec");
        avro_put_bytes(&w->out, codec, strlen(codec));
        for (size_t i = 0; i < w->n_meta; i++) {
                avro_put_string(&w->out, w->meta[i].key);
                avro_put_bytes(&w->out, w->meta[i].value, strlen(w->meta[i].value));
        }
        avro_put_long(&w->out, 0);
        avro_put_raw(&w->out, w->sync, sizeof(w->sync));
        w->header_done = true;
}

static int deflate_raw(const uint8_t *in, size_t len, uint8_t **ret, size_t *ret_len)
{
        z_stream z = {0};
        uint8_t *out;
        uLong bound;
        int r;

        if (len > UINT32_MAX / 2)
                return -E2BIG;
        if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
                return -ENOMEM;
        bound = deflateBound(&z, (uLong)len);
        out = floe_malloc(bound);
        if (!out) {
                deflateEnd(&z);
                return -ENOMEM;
        }
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)bound;
        r = deflate(&z, Z_FINISH);
        *ret_len = z.total_out;
        deflateEnd(&z);
        if (r != Z_STREAM_END) {
                floe_free(out);
                return -EIO;
        }
        *ret = out;
        return 0;
}

static int flush_block(struct avro_writer *w)
{
        _cleanup_free_ uint8_t *z = NULL;
        const uint8_t *data = w->block.data;
        size_t len = w->block.len;
        int r;

        if (w->block.err)
                return w->block.err;
        if (!w->header_done)
                write_header(w);
        if (w->block_count == 0)
                return w->out.err;
        if (w->codec == AVRO_CODEC_DEFLATE) {
                r = deflate_raw(w->block.data, w->block.len, &z, &len);
                if (r < 0)
                        return r;
                data = z;
        }
        avro_put_long(&w->out, (int64_t)w->block_count);
        avro_put_long(&w->out, (int64_t)len);
        avro_put_raw(&w->out, data, len);
        avro_put_raw(&w->out, w->sync, sizeof(w->sync));
        w->block.len = 0;
        w->block_count = 0;
        return w->out.err;
}

struct avro_buf *avro_writer_datum(struct avro_writer *w)
{
        return &w->block;
}

int avro_writer_end_datum(struct avro_writer *w)
{
        if (w->done)
                return -EINVAL;
        if (w->block.err)
                return w->block.err;
        w->block_count++;
        if (w->block_count >= w->max_count || w->block.len >= w->max_bytes)
                return flush_block(w);
        return 0;
}

int avro_writer_finish(struct avro_writer *w, uint8_t **ret, size_t *ret_len)
{
        int r;

        if (w->done)
                return -EINVAL;
        r = flush_block(w);
        if (r < 0)
                return r;
        w->done = true;
        *ret = w->out.data;
        *ret_len = w->out.len;
        w->out = (struct avro_buf){0};
        return 0;
}

/* Reading. */

struct meta_ref {
        const uint8_t *key, *value;
        size_t key_len, value_len;
};

struct avro_reader {
        const uint8_t *data;
        size_t len, pos;
        struct avro_limits lim;
        struct meta_ref *meta;
        size_t n_meta;
        struct avro_schema_tree *tree;
        enum avro_codec codec;
        uint8_t sync[AVRO_SYNC_SIZE];
        struct avro_decoder *dec;
        uint8_t *inflated; /* the current block, decompressed */
        const uint8_t *block;
        size_t block_len, block_pos;
        int64_t block_left; /* datums still to read in the block */
        bool decoder_failed;
        char error[200];
};

static int rfail(struct avro_reader *r, int err, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->error, sizeof(r->error), fmt, ap);
        va_end(ap);
        r->decoder_failed = false;
        return err;
}

struct avro_reader *avro_reader_free(struct avro_reader *r)
{
        if (!r)
                return NULL;
        floe_free(r->meta);
        avro_schema_tree_free(r->tree);
        avro_decoder_free(r->dec);
        floe_free(r->inflated);
        floe_free(r);
        return NULL;
}

const char *avro_reader_error(const struct avro_reader *r)
{
        return r->decoder_failed ? avro_decoder_error(r->dec) : r->error;
}

static int read_meta(struct avro_reader *r)
{
        for (;;) {
                int64_t count, size;

                if (avro_get_long(r->data, r->len, &r->pos, &count) < 0)
                        return rfail(r, -EBADMSG, "truncated metadata map");
                if (count == 0)
                        return 0;
                if (count < 0) {
                        if (count == INT64_MIN ||
                            avro_get_long(r->data, r->len, &r->pos, &size) < 0 || size < 0)
                                return rfail(r, -EBADMSG, "bad metadata block");
                        count = -count;
                }
                if ((uint64_t)count > r->lim.max_meta_entries - r->n_meta)
                        return rfail(r, -E2BIG, "more than %zu metadata entries",
                                     r->lim.max_meta_entries);
                for (int64_t i = 0; i < count; i++) {
                        struct meta_ref *m, e;

                        if (avro_get_bytes(r->data, r->len, &r->pos, &e.key, &e.key_len) < 0 ||
                            avro_get_bytes(r->data, r->len, &r->pos, &e.value, &e.value_len) < 0)
                                return rfail(r, -EBADMSG, "truncated metadata entry");
                        for (size_t k = 0; k < r->n_meta; k++)
                                if (r->meta[k].key_len == e.key_len &&
                                    memcmp(r->meta[k].key, e.key, e.key_len) == 0)
                                        return rfail(r, -EBADMSG, "duplicate metadata key");
                        m = floe_reallocarray(r->meta, r->n_meta + 1, sizeof(*m));
                        if (!m)
                                return -ENOMEM;
                        r->meta = m;
                        m[r->n_meta++] = e;
                }
        }
}

static bool meta_is(const uint8_t *v, size_t len, const char *s)
{
        return len == strlen(s) && memcmp(v, s, len) == 0;
}

int avro_reader_open(const uint8_t *data, size_t len, const struct avro_limits *lim,
                     struct avro_reader **ret, char *err, size_t errsize)
{
        struct avro_reader *r;
        const uint8_t *v;
        size_t vlen;
        int e;

        r = floe_calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        r->data = data;
        r->len = len;
        if (lim)
                r->lim = *lim;
        else
                avro_limits_default(&r->lim);
        e = avro_decoder_new(&r->lim, &r->dec);
        if (e < 0)
                goto fail;
        if (len < sizeof(MAGIC) || memcmp(data, MAGIC, sizeof(MAGIC)) != 0) {
                e = rfail(r, -EBADMSG, "not an Avro object container file");
                goto fail;
        }
        r->pos = sizeof(MAGIC);
        e = read_meta(r);
        if (e < 0)
                goto fail;
        if (len - r->pos < AVRO_SYNC_SIZE) {
                e = rfail(r, -EBADMSG, "truncated header");
                goto fail;
        }
        memcpy(r->sync, data + r->pos, AVRO_SYNC_SIZE);
        r->pos += AVRO_SYNC_SIZE;
        v = avro_reader_meta(r, "avro.codec", &vlen);
        if (!v || meta_is(v, vlen, "null")) {
                r->codec = AVRO_CODEC_NULL;
        } else if (meta_is(v, vlen, "deflate")) {
                r->codec = AVRO_CODEC_DEFLATE;
        } else if (meta_is(v, vlen, "zstandard")) {
                r->codec = AVRO_CODEC_ZSTANDARD;
        } else {
                e = rfail(r, -EOPNOTSUPP,
                          "unsupported Avro codec \"%.*s\" (null, deflate and "
                          "zstandard are)",
                          (int)(vlen > 32 ? 32 : vlen), (const char *)v);
                goto fail;
        }
        v = avro_reader_meta(r, "avro.schema", &vlen);
        if (!v) {
                e = rfail(r, -EBADMSG, "no avro.schema");
                goto fail;
        }
        e = avro_schema_parse((const char *)v, vlen, &r->tree);
        if (e < 0) {
                e = rfail(r, e, "bad avro.schema");
                goto fail;
        }
        *ret = r;
        return 0;
fail:
        if (err && errsize)
                snprintf(err, errsize, "%s", e == -ENOMEM ? "out of memory" : r->error);
        avro_reader_free(r);
        return e;
}

const uint8_t *avro_reader_meta(const struct avro_reader *r, const char *key, size_t *ret_len)
{
        for (size_t i = 0; i < r->n_meta; i++)
                if (meta_is(r->meta[i].key, r->meta[i].key_len, key)) {
                        *ret_len = r->meta[i].value_len;
                        return r->meta[i].value;
                }
        return NULL;
}

int avro_reader_meta_dup(const struct avro_reader *r, const char *key, char **ret)
{
        const uint8_t *v;
        size_t len;
        char *s;

        v = avro_reader_meta(r, key, &len);
        if (!v)
                return -ENOENT;
        if (memchr(v, 0, len))
                return -EBADMSG;
        s = floe_strndup((const char *)v, len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

const struct avro_schema *avro_reader_schema(const struct avro_reader *r)
{
        return avro_schema_root(r->tree);
}

enum avro_codec avro_reader_codec(const struct avro_reader *r)
{
        return r->codec;
}

static int grow(uint8_t **buf, size_t *cap, size_t max)
{
        size_t n = *cap ? 2 * *cap : 64 * 1024;
        uint8_t *p;

        if (*cap >= max)
                return -E2BIG;
        if (n > max)
                n = max;
        p = floe_realloc(*buf, n);
        if (!p)
                return -ENOMEM;
        *buf = p;
        *cap = n;
        return 0;
}

static int inflate_block(struct avro_reader *r, const uint8_t *in, size_t len)
{
        size_t cap = 0, out = 0, max = r->lim.max_block_bytes;
        z_stream z = {0};
        int e = 0, zr = Z_OK;

        if (len > UINT32_MAX)
                return rfail(r, -E2BIG, "compressed block too large");
        if (inflateInit2(&z, -15) != Z_OK)
                return -ENOMEM;
        z.next_in = (Bytef *)in;
        z.avail_in = (uInt)len;
        while (zr != Z_STREAM_END) {
                if (out == cap) {
                        e = grow(&r->inflated, &cap, max);
                        if (e < 0) {
                                if (e == -E2BIG)
                                        rfail(r, e, "block inflates beyond %zu bytes", max);
                                break;
                        }
                }
                z.next_out = r->inflated + out;
                z.avail_out = (uInt)(cap - out);
                zr = inflate(&z, Z_NO_FLUSH);
                out = cap - z.avail_out;
                if (zr != Z_OK && zr != Z_STREAM_END) {
                        e = rfail(r, -EBADMSG, "bad deflate data");
                        break;
                }
                if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
                        e = rfail(r, -EBADMSG, "truncated deflate data");
                        break;
                }
        }
        if (e == 0 && z.avail_in != 0)
                e = rfail(r, -EBADMSG, "bytes after the deflate stream");
        inflateEnd(&z);
        r->block = r->inflated;
        r->block_len = out;
        return e;
}

static int unzstd_block(struct avro_reader *r, const uint8_t *in, size_t len)
{
        ZSTD_inBuffer zin = {in, len, 0};
        size_t cap = 0, max = r->lim.max_block_bytes, zr = 1;
        ZSTD_DStream *z;
        ZSTD_outBuffer zout = {0};
        int e = 0;

        z = ZSTD_createDStream();
        if (!z)
                return -ENOMEM;
        while (zin.pos < zin.size || zr != 0) {
                if (zout.pos == cap) {
                        e = grow(&r->inflated, &cap, max);
                        if (e < 0) {
                                if (e == -E2BIG)
                                        rfail(r, e, "block decompresses beyond %zu bytes", max);
                                break;
                        }
                }
                zout.dst = r->inflated;
                zout.size = cap;
                zr = ZSTD_decompressStream(z, &zout, &zin);
                if (ZSTD_isError(zr)) {
                        e = rfail(r, -EBADMSG, "bad zstandard data");
                        break;
                }
                if (zin.pos == zin.size && zr != 0 && zout.pos < zout.size) {
                        e = rfail(r, -EBADMSG, "truncated zstandard data");
                        break;
                }
        }
        ZSTD_freeDStream(z);
        r->block = r->inflated;
        r->block_len = zout.pos;
        return e;
}

static int next_block(struct avro_reader *r)
{
        int64_t count, size;
        const uint8_t *data;
        int e;

        if (avro_get_long(r->data, r->len, &r->pos, &count) < 0 ||
            avro_get_long(r->data, r->len, &r->pos, &size) < 0)
                return rfail(r, -EBADMSG, "truncated block header");
        if (count < 0 || size < 0)
                return rfail(r, -EBADMSG, "negative block count or size");
        if ((uint64_t)size > r->len - r->pos || r->len - r->pos - (size_t)size < AVRO_SYNC_SIZE)
                return rfail(r, -EBADMSG, "block of %lld bytes runs past the end of the file",
                             (long long)size);
        data = r->data + r->pos;
        r->pos += (size_t)size;
        if (memcmp(r->data + r->pos, r->sync, AVRO_SYNC_SIZE) != 0)
                return rfail(r, -EBADMSG, "bad sync marker after block");
        r->pos += AVRO_SYNC_SIZE;
        switch (r->codec) {
        case AVRO_CODEC_DEFLATE:
                e = inflate_block(r, data, (size_t)size);
                break;
        case AVRO_CODEC_ZSTANDARD:
                e = unzstd_block(r, data, (size_t)size);
                break;
        default:
                if ((size_t)size > r->lim.max_block_bytes)
                        return rfail(r, -E2BIG, "block larger than %zu bytes",
                                     r->lim.max_block_bytes);
                r->block = data;
                r->block_len = (size_t)size;
                e = 0;
        }
        if (e < 0)
                return e;
        /* a datum takes at least one byte unless the schema allows empty ones */
        if (!avro_reader_schema(r)->may_be_empty ? (uint64_t)count > r->block_len
                                                 : (uint64_t)count > r->lim.max_datum_values)
                return rfail(r, -EBADMSG, "%lld objects in a block of %zu bytes", (long long)count,
                             r->block_len);
        r->block_pos = 0;
        r->block_left = count;
        return 0;
}

int avro_reader_next(struct avro_reader *r, const struct avro_value **ret)
{
        int e;

        while (r->block_left == 0) {
                if (r->block && r->block_pos != r->block_len)
                        return rfail(r, -EBADMSG, "%zu bytes left over in a block",
                                     r->block_len - r->block_pos);
                r->block = NULL;
                if (r->pos == r->len)
                        return 0;
                e = next_block(r);
                if (e < 0)
                        return e;
        }
        e = avro_decode(r->dec, avro_reader_schema(r), r->block, r->block_len, &r->block_pos, ret);
        if (e < 0) {
                r->decoder_failed = true;
                return e;
        }
        r->block_left--;
        return 1;
}
