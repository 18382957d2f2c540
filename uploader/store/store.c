/* SPDX-License-Identifier: Apache-2.0 */
/* The object store API (store.h): URL dispatch, key rules, and the checks every backend shares. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "store-internal.h"

#define KEY_MAX 1024 /* S3's limit, in bytes of UTF-8 */

void lake_store_opts_default(struct lake_store_opts *o)
{
        *o = (struct lake_store_opts){
                .multipart_threshold = 64ULL << 20,
                .part_size = 16ULL << 20,
                .retries = 4,
                .timeout_ms = 120000,
                .list_page_size = 1000,
                .fsync = true,
        };
}

int store_vfail(struct lake_store *s, int r, const char *fmt, va_list ap)
{
        vsnprintf(s->error, sizeof(s->error), fmt, ap);
        return r;
}

int store_fail(struct lake_store *s, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        store_vfail(s, r, fmt, ap);
        va_end(ap);
        return r;
}

/* Length of the UTF-8 sequence at p (at most n bytes), 0 if it is not valid UTF-8. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
        size_t len;
        uint32_t c;

        if (p[0] < 0x80)
                return 1;
        if (p[0] >= 0xc2 && p[0] <= 0xdf)
                len = 2, c = p[0] & 0x1f;
        else if (p[0] >= 0xe0 && p[0] <= 0xef)
                len = 3, c = p[0] & 0x0f;
        else if (p[0] >= 0xf0 && p[0] <= 0xf4)
                len = 4, c = p[0] & 0x07;
        else
                return 0;
        if (len > n)
                return 0;
        for (size_t i = 1; i < len; i++) {
                if ((p[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF */
        if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10ffff)) ||
            (c >= 0xd800 && c <= 0xdfff))
                return 0;
        return len;
}

/* Checks a key, or with is_prefix a list prefix: its last level may be incomplete. */
static int check_levels(const char *key, bool is_prefix)
{
        const unsigned char *p = (const unsigned char *)key;
        size_t n, level = 0; /* start of the current level */

        if (!key)
                return -EINVAL;
        n = strlen(key);
        if (n > KEY_MAX || key[0] == '/')
                return -EINVAL;
        if (!is_prefix && (n == 0 || key[n - 1] == '/'))
                return -EINVAL;
        for (size_t i = 0; i <= n;) {
                if (i == n && is_prefix)
                        break;
                if (i == n || p[i] == '/') {
                        size_t l = i - level;

                        if (l == 0 || (l == 1 && key[level] == '.') ||
                            (l == 2 && key[level] == '.' && key[level + 1] == '.') ||
                            strncmp(key + level, STORE_TMP_PREFIX, strlen(STORE_TMP_PREFIX)) == 0)
                                return -EINVAL;
                        level = ++i;
                        continue;
                }
                if (p[i] < 0x20 || p[i] == 0x7f)
                        return -EINVAL;
                size_t u = utf8_len(p + i, n - i);
                if (u == 0)
                        return -EINVAL;
                i += u;
        }
        return 0;
}

int lake_store_key_valid(const char *key)
{
        return check_levels(key, false);
}

int lake_store_open_explain(const char *url, const struct lake_store_opts *o, char *why,
                            size_t why_size, struct lake_store **ret)
{
        struct lake_store *s;
        int r;

        if (why && why_size > 0)
                why[0] = '\0';
        if (!url)
                return -EINVAL;
        s = floe_calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        if (o)
                s->opts = *o;
        else
                lake_store_opts_default(&s->opts);
        if (strncmp(url, "file://", 7) == 0 || url[0] == '/') {
                s->be = &store_file_backend;
                r = store_file_open(s, url[0] == '/' ? url : url + 7, why, why_size);
        } else if (strncmp(url, "s3://", 5) == 0) {
                s->be = &store_s3_backend;
                r = store_s3_open(s, url + 5, why, why_size);
        } else {
                if (why && why_size > 0)
                        snprintf(why, why_size, "not a file:// or s3:// URL");
                r = -EPROTONOSUPPORT;
        }
        /* strings of o are not kept */
        s->opts.endpoint = s->opts.region = s->opts.access_key = s->opts.secret_key = NULL;
        s->opts.session_token = s->opts.credentials_file = s->opts.profile = NULL;
        s->opts.storage_class = s->opts.ca_file = NULL;
        if (r < 0) {
                s->be = NULL;
                floe_free(s);
                return r;
        }
        *ret = s;
        return 0;
}

int lake_store_open(const char *url, const struct lake_store_opts *o, struct lake_store **ret)
{
        return lake_store_open_explain(url, o, NULL, 0, ret);
}

struct lake_store *lake_store_close(struct lake_store *s)
{
        if (!s)
                return NULL;
        if (s->be)
                s->be->close(s);
        floe_free(s);
        return NULL;
}

const char *lake_store_error(const struct lake_store *s)
{
        return s ? s->error : "";
}

static int check_key(struct lake_store *s, const char *op, const char *key)
{
        s->error[0] = '\0';
        if (lake_store_key_valid(key) < 0)
                return store_fail(s, -EINVAL, "%s: invalid key \"%.200s\"", op, key ? key : "");
        return 0;
}

int lake_store_location(const struct lake_store *s, const char *key, char *buf, size_t size)
{
        if (lake_store_key_valid(key) < 0)
                return -EINVAL;
        return s->be->location(s, key, buf, size);
}

int lake_store_key(const struct lake_store *s, const char *location, char *buf, size_t size)
{
        int r;

        if (!location)
                return -EINVAL;
        r = s->be->key(s, location, buf, size);
        if (r < 0)
                return r;
        return lake_store_key_valid(buf) < 0 ? -EXDEV : 0;
}

int lake_store_put(struct lake_store *s, const char *key, const void *data, size_t len,
                   enum lake_put_mode mode)
{
        int r = check_key(s, "PUT", key);

        if (r < 0)
                return r;
        if (mode != LAKE_PUT_REPLACE && mode != LAKE_PUT_IF_ABSENT)
                return -EINVAL;
        if (!data && len > 0)
                return -EINVAL;
        return s->be->put(s, key, data ? data : "", len, mode);
}

int lake_store_get(struct lake_store *s, const char *key, size_t max, uint8_t **ret,
                   size_t *ret_len)
{
        int r = check_key(s, "GET", key);

        if (r < 0)
                return r;
        return s->be->get(s, key, max, ret, ret_len);
}

int lake_store_get_range(struct lake_store *s, const char *key, uint64_t off, size_t len, void *buf,
                         size_t *ret_len)
{
        int r = check_key(s, "GET", key);

        if (r < 0)
                return r;
        if (!buf && len > 0)
                return -EINVAL;
        if (len == 0) {
                uint64_t size;

                /* nothing to read, but the object must exist */
                r = s->be->size(s, key, &size);
                if (r < 0)
                        return r;
                *ret_len = 0;
                return 0;
        }
        if (off > UINT64_MAX - len)
                return store_fail(s, -EINVAL, "GET %s: range beyond 2^64", key);
        return s->be->get_range(s, key, off, len, buf, ret_len);
}

int lake_store_size(struct lake_store *s, const char *key, uint64_t *ret_size)
{
        int r = check_key(s, "HEAD", key);

        if (r < 0)
                return r;
        return s->be->size(s, key, ret_size);
}

int lake_store_delete(struct lake_store *s, const char *key)
{
        int r = check_key(s, "DELETE", key);

        if (r < 0)
                return r;
        return s->be->del(s, key);
}

int lake_store_list(struct lake_store *s, const char *prefix, lake_store_list_fn fn, void *ud)
{
        s->error[0] = '\0';
        if (!prefix)
                prefix = "";
        if (!fn || check_levels(prefix, true) < 0)
                return store_fail(s, -EINVAL, "LIST: invalid prefix \"%.200s\"", prefix);
        return s->be->list(s, prefix, fn, ud);
}

int lake_store_set_class(struct lake_store *s, const char *key, const char *storage_class)
{
        int r = check_key(s, "COPY", key);

        if (r < 0)
                return r;
        if (!s->be->set_class)
                return store_fail(s, -EOPNOTSUPP, "COPY %s: storage classes are S3's", key);
        if (!storage_class || !*storage_class || strlen(storage_class) > 64 ||
            strspn(storage_class, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != strlen(storage_class))
                return store_fail(s, -EINVAL, "COPY %s: invalid storage class", key);
        return s->be->set_class(s, key, storage_class);
}

int lake_store_writer_open(struct lake_store *s, const char *key, struct lake_store_writer **ret)
{
        struct lake_store_writer *w;
        int r = check_key(s, "PUT", key);

        if (r < 0)
                return r;
        w = floe_calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->s = s;
        r = s->be->writer_open(w, key);
        if (r < 0) {
                floe_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

int lake_store_writer_write(struct lake_store_writer *w, const void *data, size_t len)
{
        int r;

        if (w->done)
                return -EALREADY;
        if (w->failed)
                return w->failed;
        if (len == 0)
                return 0;
        if (!data)
                return -EINVAL;
        r = w->s->be->writer_write(w, data, len);
        if (r < 0) {
                w->failed = r;
                return r;
        }
        w->size += len;
        return 0;
}

int lake_store_writer_commit(struct lake_store_writer *w, uint64_t *ret_size)
{
        int r;

        if (w->done)
                return -EALREADY;
        if (w->failed)
                return w->failed;
        r = w->s->be->writer_commit(w);
        if (r < 0) {
                w->failed = r;
                return r;
        }
        w->done = true;
        if (ret_size)
                *ret_size = w->size;
        return 0;
}

struct lake_store_writer *lake_store_writer_free(struct lake_store_writer *w)
{
        if (!w)
                return NULL;
        w->s->be->writer_free(w);
        floe_free(w);
        return NULL;
}
