/* SPDX-License-Identifier: Apache-2.0 */
/* s3:// stores: the URL, the endpoint, credentials (options, environment, credentials file). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "s3-internal.h"

#define MIN_PART     (5ULL << 20)
#define MAX_PART     (5ULL << 30)
#define CREDS_MAX    (1u << 20)
#define BACKOFF_BASE 100
#define BACKOFF_CAP  5000

static void explain(char *why, size_t why_size, const char *msg)
{
        if (why && why_size > 0)
                snprintf(why, why_size, "%s", msg);
}

/* "http[s]://host[:port][/]" into scheme and host. */
static int parse_endpoint(struct s3 *c, const char *ep)
{
        const char *h;
        size_t n;

        if (strncmp(ep, "https://", 8) == 0) {
                snprintf(c->scheme, sizeof(c->scheme), "https");
                h = ep + 8;
        } else if (strncmp(ep, "http://", 7) == 0) {
                snprintf(c->scheme, sizeof(c->scheme), "http");
                h = ep + 7;
        } else {
                return -EINVAL;
        }
        n = strcspn(h, "/?#@");
        if (n == 0 || n >= sizeof(c->host) || h[n] == '?' || h[n] == '#' || h[n] == '@')
                return -EINVAL;
        if (h[n] == '/' && h[n + 1] != '\0')
                return -EINVAL; /* a path: S3 endpoints have none */
        memcpy(c->host, h, n);
        c->host[n] = '\0';
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)c->host[i] <= ' ' || c->host[i] == 0x7f)
                        return -EINVAL;
        return 0;
}

static int read_small_file(const char *path, char **ret, size_t *ret_len)
{
        _cleanup_free_ char *buf = NULL;
        size_t len = 0;
        int fd;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        buf = floe_malloc(CREDS_MAX + 1);
        if (!buf) {
                close(fd);
                return -ENOMEM;
        }
        for (;;) {
                ssize_t n = read(fd, buf + len, CREDS_MAX + 1 - len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int r = -errno;

                        close(fd);
                        return r;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > CREDS_MAX) {
                        close(fd);
                        return -EFBIG;
                }
        }
        close(fd);
        buf[len] = '\0';
        *ret = TAKE_PTR(buf);
        *ret_len = len;
        return 0;
}

static int set_creds(struct s3 *c, const char *id, const char *secret, const char *token)
{
        if (strlen(id) >= sizeof(c->key_id) || strchr(id, ':'))
                return -EINVAL;
        snprintf(c->key_id, sizeof(c->key_id), "%s", id);
        c->secret = floe_strdup(secret);
        if (!c->secret)
                return -ENOMEM;
        if (token && *token) {
                if (strpbrk(token, "\r\n"))
                        return -EINVAL;
                c->token = floe_strdup(token);
                if (!c->token)
                        return -ENOMEM;
        }
        return 0;
}

/* Options, then AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, then the credentials file. */
static int load_creds(struct s3 *c, const struct lake_store_opts *o, char *why, size_t why_size)
{
        const char *id = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
        const char *file = o->credentials_file, *profile = o->profile;
        _cleanup_free_ char *text = NULL, *home_file = NULL;
        struct s3_creds *cr;
        size_t len = 0;
        int r;

        if (o->access_key || o->secret_key) {
                if (!o->access_key || !o->secret_key || !*o->access_key || !*o->secret_key) {
                        explain(why, why_size, "access_key and secret_key go together");
                        return -EINVAL;
                }
                return set_creds(c, o->access_key, o->secret_key, o->session_token);
        }
        if (id && *id && secret && *secret)
                return set_creds(c, id, secret,
                                 o->session_token ? o->session_token : getenv("AWS_SESSION_TOKEN"));
        if (!file)
                file = getenv("AWS_SHARED_CREDENTIALS_FILE");
        if (!file && getenv("HOME")) {
                size_t n = strlen(getenv("HOME")) + sizeof("/.aws/credentials");

                home_file = floe_malloc(n);
                if (!home_file)
                        return -ENOMEM;
                snprintf(home_file, n, "%s/.aws/credentials", getenv("HOME"));
                file = home_file;
        }
        if (!profile)
                profile = getenv("AWS_PROFILE");
        if (!profile || !*profile)
                profile = "default";
        if (!file) {
                explain(why, why_size,
                        "no S3 credentials: no access key in the options or "
                        "AWS_ACCESS_KEY_ID, and no credentials file");
                return -ENOKEY;
        }
        r = read_small_file(file, &text, &len);
        if (r < 0) {
                if (why && why_size > 0)
                        snprintf(why, why_size,
                                 "no S3 credentials: none in the options or AWS_ACCESS_KEY_ID, "
                                 "and credentials file %s: %s",
                                 file, strerror(-r));
                return r == -ENOENT ? -ENOKEY : r;
        }
        cr = floe_malloc(sizeof(*cr));
        if (!cr)
                return -ENOMEM;
        r = s3_creds_parse(text, len, profile, cr);
        if (r >= 0)
                r = set_creds(c, cr->key_id, cr->secret,
                              o->session_token ? o->session_token : cr->token);
        else if (why && why_size > 0)
                snprintf(why, why_size, "credentials file %s: %s", file,
                         r == -ENOENT ? "no such profile, or it lacks aws_access_key_id or "
                                        "aws_secret_access_key"
                                      : "unreadable");
        explicit_bzero(cr, sizeof(*cr));
        explicit_bzero(text, len);
        floe_free(cr);
        return r == -ENOENT ? -ENOKEY : r;
}

void s3_close(struct lake_store *s)
{
        struct s3 *c = S3(s);

        if (!c)
                return;
        if (c->curl)
                curl_easy_cleanup(c->curl);
        if (c->secret) {
                explicit_bzero(c->secret, strlen(c->secret));
                floe_free(c->secret);
        }
        if (c->token) {
                explicit_bzero(c->token, strlen(c->token));
                floe_free(c->token);
        }
        floe_free(c->ca_file);
        floe_free(c);
        s->impl = NULL;
}

int store_s3_open(struct lake_store *s, const char *rest, char *why, size_t why_size)
{
        const struct lake_store_opts *o = &s->opts;
        const char *region = o->region && *o->region ? o->region : "us-east-1";
        struct s3 *c;
        int r;

        c = floe_calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        s->impl = c;
        r = s3_parse_url(rest, c->bucket, sizeof(c->bucket), c->prefix, sizeof(c->prefix));
        if (r < 0) {
                explain(why, why_size,
                        "s3:// URL: expected s3://BUCKET[/PREFIX] with a valid "
                        "bucket name");
                goto fail;
        }
        if (strlen(region) > 32 ||
            strspn(region, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(region)) {
                explain(why, why_size, "invalid region");
                r = -EINVAL;
                goto fail;
        }
        snprintf(c->sigv4, sizeof(c->sigv4), "aws:amz:%s:s3", region);
        if (o->endpoint && *o->endpoint) {
                r = parse_endpoint(c, o->endpoint);
        } else {
                char ep[128];

                snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com", region);
                r = parse_endpoint(c, ep);
        }
        if (r < 0) {
                explain(why, why_size, "endpoint: expected http[s]://HOST[:PORT]");
                goto fail;
        }
        c->path_style = o->path_style;
        if (o->storage_class && *o->storage_class) {
                if (strlen(o->storage_class) >= sizeof(c->storage_class) ||
                    strspn(o->storage_class, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") !=
                            strlen(o->storage_class)) {
                        explain(why, why_size, "invalid storage class");
                        r = -EINVAL;
                        goto fail;
                }
                snprintf(c->storage_class, sizeof(c->storage_class), "%s", o->storage_class);
        }
        if (o->part_size < MIN_PART || o->part_size > MAX_PART ||
            o->part_size > (uint64_t)SIZE_MAX / 2) {
                explain(why, why_size, "part size must be 5 MiB..5 GiB");
                r = -EINVAL;
                goto fail;
        }
        if (o->list_page_size > 1000) {
                explain(why, why_size, "list page size must be 1..1000");
                r = -EINVAL;
                goto fail;
        }
        c->part_size = o->part_size;
        c->threshold = o->multipart_threshold;
        c->retries = o->retries;
        c->timeout_ms = o->timeout_ms;
        c->page_size = o->list_page_size ? o->list_page_size : 1000;
        c->backoff_base_ms = BACKOFF_BASE;
        c->backoff_cap_ms = BACKOFF_CAP;
        if (o->ca_file) {
                c->ca_file = floe_strdup(o->ca_file);
                if (!c->ca_file) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        r = load_creds(c, o, why, why_size);
        if (r < 0) {
                if (r == -EINVAL)
                        explain(why, why_size, "invalid access key id or session token");
                goto fail;
        }
        c->curl = curl_easy_init();
        if (!c->curl) {
                explain(why, why_size, "libcurl could not be initialised");
                r = -ENOMEM;
                goto fail;
        }
        return 0;
fail:
        s3_close(s);
        return r;
}

int s3_location(const struct lake_store *s, const char *key, char *buf, size_t size)
{
        const struct s3 *c = S3(s);
        int n = snprintf(buf, size, "s3://%s/%s%s%s", c->bucket, c->prefix, c->prefix[0] ? "/" : "",
                         key);

        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* "s3://bucket/prefix/key"; Hadoop's s3a:// and s3n:// name the same objects. */
int s3_key(const struct lake_store *s, const char *location, char *buf, size_t size)
{
        const struct s3 *c = S3(s);
        const char *p;
        size_t blen = strlen(c->bucket), plen = strlen(c->prefix);
        int n;

        if (strncmp(location, "s3://", 5) == 0)
                p = location + 5;
        else if (strncmp(location, "s3a://", 6) == 0 || strncmp(location, "s3n://", 6) == 0)
                p = location + 6;
        else
                return -EXDEV;
        if (strncmp(p, c->bucket, blen) != 0 || p[blen] != '/')
                return -EXDEV;
        p += blen + 1;
        if (plen) {
                if (strncmp(p, c->prefix, plen) != 0 || p[plen] != '/')
                        return -EXDEV;
                p += plen + 1;
        }
        n = snprintf(buf, size, "%s", p);
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void s3_test_hooks(struct lake_store *s, const char *date, const char *connect_to,
                   const char *const *headers)
{
        struct s3 *c = S3(s);

        c->fixed_date = date;
        c->connect_to = connect_to;
        c->test_headers = headers;
}
