/* SPDX-License-Identifier: Apache-2.0 */
/* s3:// stores: the operations of store.h as S3 requests (s3-http.c performs them). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "s3-internal.h"

#define MAX_PUT   (5ULL << 30) /* one PutObject or CopyObject */
#define MAX_PARTS 10000
#define LIST_MAX  (8u << 20) /* one ListObjectsV2 page */
#define XML_MAX   (1u << 20)

/* The full key of a store key: "prefix/key" (buf holds 2048 bytes). */
static const char *full_key(const struct s3 *c, const char *key, char *buf, size_t size)
{
        if (!c->prefix[0])
                return key;
        snprintf(buf, size, "%s/%s", c->prefix, key);
        return buf;
}

/* -- whole objects ------------------------------------------------------------------------- */

/* Checks a 200 answer that may still hold an <Error> (CopyObject, CompleteMultipartUpload). */
static int check_ok_body(struct lake_store *s, const char *op, const char *key,
                         const struct s3_buf *b)
{
        char root[64], code[64];

        if (s3_xml_root((const char *)b->data, b->len, root, sizeof(root)) == 0 &&
            strcmp(root, "Error") != 0)
                return 0;
        s3_error_code((const char *)b->data, b->len, code, sizeof(code));
        return store_fail(s, -EIO, "%s %s/%s: 200 %s", op, S3(s)->bucket, key,
                          code[0] ? code : "with an unreadable answer");
}

static int get_object(struct lake_store *s, const char *fkey, size_t max, struct s3_buf *b)
{
        struct s3_request q = {.op = "GET", .method = "GET", .key = fkey, .buf = b};

        *b = (struct s3_buf){.max = max};
        return s3_perform(s, &q);
}

static int put_single(struct lake_store *s, const char *fkey, const void *data, size_t len,
                      enum lake_put_mode mode)
{
        struct s3 *c = S3(s);
        struct s3_request q = {
                .op = "PUT", .method = "PUT", .key = fkey, .body = data, .body_len = len};
        char sc[96];
        size_t h = 0;
        int r;

        if (c->storage_class[0]) {
                snprintf(sc, sizeof(sc), "x-amz-storage-class: %s", c->storage_class);
                q.headers[h++] = sc;
        }
        if (mode == LAKE_PUT_IF_ABSENT)
                q.headers[h++] = "If-None-Match: *";
        r = s3_perform(s, &q);
        if (r == -EEXIST && q.ambiguous) {
                /* an earlier attempt timed out: it may be ours that is there */
                struct s3_buf b;
                char msg[STORE_ERROR_MAX];

                snprintf(msg, sizeof(msg), "%s", s->error);
                if (get_object(s, fkey, len, &b) == 0 && b.len == len &&
                    memcmp(b.data, data, len) == 0)
                        r = 0;
                else
                        snprintf(s->error, sizeof(s->error), "%s", msg);
                s3_buf_free(&b);
        }
        return r;
}

struct part {
        char etag[80];
};

struct mpu {
        char id[1024];
        struct part *parts;
        size_t n, cap;
        uint64_t size;
};

static int mpu_create(struct lake_store *s, const char *fkey, struct mpu *m)
{
        struct s3 *c = S3(s);
        struct s3_buf b = {.max = XML_MAX};
        struct s3_request q = {.op = "CreateMultipartUpload",
                               .method = "POST",
                               .key = fkey,
                               .query = "uploads=",
                               .buf = &b};
        char sc[96];
        int r;

        q.headers[0] = "Content-Type: application/octet-stream";
        if (c->storage_class[0]) {
                snprintf(sc, sizeof(sc), "x-amz-storage-class: %s", c->storage_class);
                q.headers[1] = sc;
        }
        r = s3_perform(s, &q);
        if (r >= 0 &&
            s3_xml_find((const char *)b.data, b.len, "InitiateMultipartUploadResult/UploadId",
                        m->id, sizeof(m->id)) < 0)
                r = store_fail(s, -EIO, "CreateMultipartUpload %s/%s: no UploadId in the answer",
                               c->bucket, fkey);
        if (r >= 0 && !m->id[0])
                r = store_fail(s, -EIO, "CreateMultipartUpload %s/%s: empty UploadId", c->bucket,
                               fkey);
        s3_buf_free(&b);
        return r;
}

static int mpu_part(struct lake_store *s, const char *fkey, struct mpu *m, const void *data,
                    size_t len)
{
        struct s3_request q = {
                .op = "UploadPart", .method = "PUT", .key = fkey, .body = data, .body_len = len};
        struct s3_param params[2] = {{"partNumber", NULL}, {"uploadId", m->id}};
        char num[16], query[4096];
        int r;

        if (m->n >= MAX_PARTS)
                return store_fail(s, -EFBIG, "UploadPart %s/%s: more than %d parts", S3(s)->bucket,
                                  fkey, MAX_PARTS);
        if (m->n == m->cap) {
                size_t cap = m->cap ? m->cap * 2 : 16;
                struct part *p = floe_reallocarray(m->parts, cap, sizeof(*p));

                if (!p)
                        return -ENOMEM;
                m->parts = p;
                m->cap = cap;
        }
        snprintf(num, sizeof(num), "%zu", m->n + 1);
        params[0].value = num;
        r = s3_query_format(params, 2, query, sizeof(query));
        if (r < 0)
                return store_fail(s, r, "UploadPart %s/%s: upload id too long", S3(s)->bucket,
                                  fkey);
        q.query = query;
        r = s3_perform(s, &q);
        if (r < 0)
                return r;
        if (!q.etag[0] || strlen(q.etag) >= sizeof(m->parts[0].etag))
                return store_fail(s, -EIO, "UploadPart %s/%s: no ETag in the answer", S3(s)->bucket,
                                  fkey);
        snprintf(m->parts[m->n].etag, sizeof(m->parts[0].etag), "%s", q.etag);
        m->n++;
        m->size += len;
        return 0;
}

static int mpu_complete(struct lake_store *s, const char *fkey, struct mpu *m)
{
        struct s3_buf body = {.max = (size_t)MAX_PARTS * 160 + 128}, b = {.max = XML_MAX};
        struct s3_request q = {
                .op = "CompleteMultipartUpload", .method = "POST", .key = fkey, .buf = &b};
        struct s3_param param = {"uploadId", m->id};
        char query[4096], line[160];
        int r;

        r = s3_query_format(&param, 1, query, sizeof(query));
        if (r < 0)
                return r;
        q.query = query;
        r = s3_buf_append_str(&body, "<CompleteMultipartUpload>");
        for (size_t i = 0; r >= 0 && i < m->n; i++) {
                snprintf(line, sizeof(line),
                         "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                         m->parts[i].etag);
                r = s3_buf_append_str(&body, line);
        }
        if (r >= 0)
                r = s3_buf_append_str(&body, "</CompleteMultipartUpload>");
        if (r < 0) {
                s3_buf_free(&body);
                return r;
        }
        q.body = body.data;
        q.body_len = body.len;
        q.headers[0] = "Content-Type: application/xml";
        r = s3_perform(s, &q);
        if (r >= 0)
                r = check_ok_body(s, "CompleteMultipartUpload", fkey, &b);
        if (r == -ENOENT && q.ambiguous) {
                /* an attempt that timed out completed it: the object is there, whole */
                struct s3_request h = {.op = "HEAD", .method = "HEAD", .key = fkey};
                char msg[STORE_ERROR_MAX];

                snprintf(msg, sizeof(msg), "%s", s->error);
                if (s3_perform(s, &h) == 0 && h.length == m->size)
                        r = 0;
                else
                        snprintf(s->error, sizeof(s->error), "%s", msg);
        }
        s3_buf_free(&body);
        s3_buf_free(&b);
        return r;
}

/* Best effort: the upload's parts would otherwise be kept (and billed) until a lifecycle rule
 * removes them. */
static void mpu_abort(struct lake_store *s, const char *fkey, struct mpu *m)
{
        struct s3_request q = {.op = "AbortMultipartUpload", .method = "DELETE", .key = fkey};
        struct s3_param param = {"uploadId", m->id};
        char query[4096], msg[STORE_ERROR_MAX];

        if (!m->id[0] || s3_query_format(&param, 1, query, sizeof(query)) < 0)
                return;
        snprintf(msg, sizeof(msg), "%s", s->error);
        q.query = query;
        (void)s3_perform(s, &q);
        snprintf(s->error, sizeof(s->error), "%s", msg); /* the first failure is the story */
        m->id[0] = '\0';
}

static int put_multipart(struct lake_store *s, const char *fkey, const uint8_t *data, size_t len)
{
        struct s3 *c = S3(s);
        struct mpu m = {.n = 0};
        int r;

        r = mpu_create(s, fkey, &m);
        for (size_t off = 0; r >= 0 && off < len; off += c->part_size) {
                size_t n = len - off < c->part_size ? len - off : (size_t)c->part_size;

                r = mpu_part(s, fkey, &m, data + off, n);
        }
        if (r >= 0)
                r = mpu_complete(s, fkey, &m);
        if (r < 0)
                mpu_abort(s, fkey, &m);
        floe_free(m.parts);
        return r;
}

static int s3_put(struct lake_store *s, const char *key, const void *data, size_t len,
                  enum lake_put_mode mode)
{
        struct s3 *c = S3(s);
        char buf[2048];
        const char *fkey = full_key(c, key, buf, sizeof(buf));

        if (len > c->threshold && mode == LAKE_PUT_REPLACE)
                return put_multipart(s, fkey, data, len);
        if (len > MAX_PUT)
                return store_fail(s, -EFBIG, "PUT %s/%s: more than 5 GiB in one PUT", c->bucket,
                                  fkey);
        return put_single(s, fkey, data, len, mode);
}

static int s3_get(struct lake_store *s, const char *key, size_t max, uint8_t **ret, size_t *ret_len)
{
        char buf[2048];
        const char *fkey = full_key(S3(s), key, buf, sizeof(buf));
        struct s3_buf b;
        int r;

        r = get_object(s, fkey, max < SIZE_MAX ? max : SIZE_MAX - 1, &b);
        if (r < 0) {
                s3_buf_free(&b);
                return r;
        }
        if (!b.data) {
                b.data = floe_malloc(1);
                if (!b.data)
                        return -ENOMEM;
                b.data[0] = 0;
        }
        *ret = b.data;
        *ret_len = b.len;
        return 0;
}

static int s3_get_range(struct lake_store *s, const char *key, uint64_t off, size_t len, void *out,
                        size_t *ret_len)
{
        char buf[2048];
        struct s3_request q = {.op = "GET",
                               .method = "GET",
                               .range = true,
                               .off = off,
                               .len = len,
                               .out = out,
                               .out_cap = len};
        int r;

        q.key = full_key(S3(s), key, buf, sizeof(buf));
        r = s3_perform(s, &q);
        if (r == -ERANGE) {
                /* off is at or past the end */
                s->error[0] = '\0';
                *ret_len = 0;
                return 0;
        }
        if (r < 0)
                return r;
        *ret_len = q.out_len;
        return 0;
}

static int head(struct lake_store *s, const char *fkey, struct s3_request *q)
{
        *q = (struct s3_request){.op = "HEAD", .method = "HEAD", .key = fkey};
        return s3_perform(s, q);
}

static int s3_size(struct lake_store *s, const char *key, uint64_t *ret_size)
{
        char buf[2048];
        struct s3_request q;
        int r;

        r = head(s, full_key(S3(s), key, buf, sizeof(buf)), &q);
        if (r < 0)
                return r;
        *ret_size = q.length;
        return 0;
}

static int s3_del(struct lake_store *s, const char *key)
{
        char buf[2048];
        struct s3_request q = {.op = "DELETE", .method = "DELETE"};
        int r;

        q.key = full_key(S3(s), key, buf, sizeof(buf));
        r = s3_perform(s, &q);
        if (r == -ENOENT) {
                s->error[0] = '\0';
                return 0;
        }
        return r;
}

/* -- listing ------------------------------------------------------------------------------- */

struct list_ctx {
        struct lake_store *s;
        lake_store_list_fn fn;
        void *ud;
        size_t skip; /* length of "prefix/" */
        bool deliver;
        size_t count;
};

static int list_entry(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        struct list_ctx *l = ud;
        const struct s3 *c = S3(l->s);

        if (l->skip && (strncmp(key, c->prefix, l->skip - 1) != 0 || key[l->skip - 1] != '/'))
                return l->deliver ? 0 : -EBADMSG; /* not under our prefix: the server erred */
        key += l->skip;
        if (lake_store_key_valid(key) < 0)
                return 0; /* "dir/" markers, names we would never write */
        l->count++;
        return l->deliver ? l->fn(l->ud, key, size, mtime_ms) : 0;
}

static int s3_list(struct lake_store *s, const char *prefix, lake_store_list_fn fn, void *ud)
{
        struct s3 *c = S3(s);
        struct list_ctx l = {.s = s, .fn = fn, .ud = ud};
        char fprefix[2048], token[2048] = "", next[2048], query[8192], page[16];
        struct s3_buf b = {.max = LIST_MAX};
        bool truncated = true;
        int r = 0;

        if (c->prefix[0]) {
                snprintf(fprefix, sizeof(fprefix), "%s/%s", c->prefix, prefix);
                l.skip = strlen(c->prefix) + 1;
        } else {
                snprintf(fprefix, sizeof(fprefix), "%s", prefix);
        }
        snprintf(page, sizeof(page), "%u", c->page_size);
        while (truncated && r == 0) {
                struct s3_param params[4] = {{"list-type", "2"},
                                             {"max-keys", page},
                                             {"prefix", fprefix},
                                             {"continuation-token", token}};
                struct s3_request q = {.op = "LIST", .method = "GET", .buf = &b};

                r = s3_query_format(params, token[0] ? 4 : 3, query, sizeof(query));
                if (r < 0)
                        break;
                q.query = query;
                r = s3_perform(s, &q);
                if (r < 0)
                        break;
                /* check the whole page first: a page is delivered entirely or not at all */
                l.deliver = false;
                r = s3_list_parse((const char *)b.data, b.len, list_entry, &l, &truncated, next,
                                  sizeof(next));
                if (r < 0) {
                        r = store_fail(s, -EBADMSG, "LIST %s/%s: malformed answer", c->bucket,
                                       fprefix);
                        break;
                }
                l.deliver = true;
                r = s3_list_parse((const char *)b.data, b.len, list_entry, &l, &truncated, next,
                                  sizeof(next));
                if (truncated && strcmp(next, token) == 0)
                        r = store_fail(s, -EBADMSG, "LIST %s/%s: the same continuation token again",
                                       c->bucket, fprefix);
                memcpy(token, next, sizeof(token));
        }
        s3_buf_free(&b);
        return r;
}

/* -- storage class ------------------------------------------------------------------------- */

static int s3_set_class(struct lake_store *s, const char *key, const char *storage_class)
{
        struct s3 *c = S3(s);
        char buf[2048], enc[S3_KEY_ENC_MAX], src[S3_KEY_ENC_MAX + 100], sc[96];
        const char *fkey = full_key(c, key, buf, sizeof(buf));
        struct s3_buf b = {.max = XML_MAX};
        struct s3_request q;
        int r;

        r = head(s, fkey, &q);
        if (r < 0)
                return r;
        /* HEAD names the class only when it is not STANDARD */
        if (strcmp(q.storage_class[0] ? q.storage_class : "STANDARD", storage_class) == 0)
                return 0;
        if (q.length > MAX_PUT)
                return store_fail(s, -EFBIG, "COPY %s/%s: more than 5 GiB (needs UploadPartCopy)",
                                  c->bucket, fkey);
        r = s3_uri_encode(fkey, strlen(fkey), true, enc, sizeof(enc));
        if (r < 0)
                return r;
        snprintf(src, sizeof(src), "x-amz-copy-source: /%s/%s", c->bucket, enc);
        snprintf(sc, sizeof(sc), "x-amz-storage-class: %s", storage_class);
        /* the metadata directive stays COPY: a new class alone makes a copy onto itself legal */
        q = (struct s3_request){.op = "COPY", .method = "PUT", .key = fkey, .buf = &b};
        q.headers[0] = src;
        q.headers[1] = sc;
        r = s3_perform(s, &q);
        if (r >= 0)
                r = check_ok_body(s, "COPY", fkey, &b);
        s3_buf_free(&b);
        return r;
}

/* -- writers: one part_size buffer; a single PUT unless more than that comes --------------- */

struct s3_writer {
        char key[2048];
        uint8_t *buf;
        size_t len;
        bool mpu_started;
        struct mpu m;
};

static int s3_writer_open(struct lake_store_writer *w, const char *key)
{
        struct s3 *c = S3(w->s);
        struct s3_writer *sw = floe_calloc(1, sizeof(*sw));

        if (!sw)
                return -ENOMEM;
        if (c->prefix[0])
                snprintf(sw->key, sizeof(sw->key), "%s/%s", c->prefix, key);
        else
                snprintf(sw->key, sizeof(sw->key), "%s", key);
        sw->buf = floe_malloc((size_t)c->part_size);
        if (!sw->buf) {
                floe_free(sw);
                return -ENOMEM;
        }
        w->impl = sw;
        return 0;
}

static int s3_writer_flush(struct lake_store_writer *w)
{
        struct s3_writer *sw = w->impl;
        int r;

        if (!sw->mpu_started) {
                r = mpu_create(w->s, sw->key, &sw->m);
                if (r < 0)
                        return r;
                sw->mpu_started = true;
        }
        r = mpu_part(w->s, sw->key, &sw->m, sw->buf, sw->len);
        if (r >= 0)
                sw->len = 0;
        return r;
}

static int s3_writer_write(struct lake_store_writer *w, const void *data, size_t len)
{
        struct s3_writer *sw = w->impl;
        size_t cap = (size_t)S3(w->s)->part_size;
        const uint8_t *p = data;
        int r;

        while (len > 0) {
                if (sw->len == cap) {
                        r = s3_writer_flush(w);
                        if (r < 0)
                                return r;
                }
                size_t n = cap - sw->len < len ? cap - sw->len : len;
                memcpy(sw->buf + sw->len, p, n);
                sw->len += n;
                p += n;
                len -= n;
        }
        return 0;
}

static int s3_writer_commit(struct lake_store_writer *w)
{
        struct s3_writer *sw = w->impl;
        int r;

        if (!sw->mpu_started)
                return put_single(w->s, sw->key, sw->buf, sw->len, LAKE_PUT_REPLACE);
        r = s3_writer_flush(w);
        if (r >= 0)
                r = mpu_complete(w->s, sw->key, &sw->m);
        return r;
}

static void s3_writer_free(struct lake_store_writer *w)
{
        struct s3_writer *sw = w->impl;

        if (!sw)
                return;
        if (sw->mpu_started && !w->done)
                mpu_abort(w->s, sw->key, &sw->m);
        floe_free(sw->m.parts);
        floe_free(sw->buf);
        floe_free(sw);
        w->impl = NULL;
}

const struct store_backend store_s3_backend = {
        .scheme = "s3",
        .close = s3_close,
        .location = s3_location,
        .key = s3_key,
        .put = s3_put,
        .get = s3_get,
        .get_range = s3_get_range,
        .size = s3_size,
        .del = s3_del,
        .list = s3_list,
        .set_class = s3_set_class,
        .writer_open = s3_writer_open,
        .writer_write = s3_writer_write,
        .writer_commit = s3_writer_commit,
        .writer_free = s3_writer_free,
};
