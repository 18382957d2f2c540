/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One S3 request through libcurl, signed by CURLOPT_AWS_SIGV4, with retries. libcurl 7.88
 * signs the path and query exactly as given and hashes only POST fields, so we pass an
 * encoded path, a sorted canonical query, and x-amz-content-sha256 ourselves.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include <openssl/evp.h>

#include "floe-alloc.h"
#include "s3-internal.h"

#define ERR_BODY_MAX       8192
#define CONNECT_TIMEOUT_MS 10000

int s3_sha256_hex(const void *data, size_t len, char *out)
{
        static const char hex[] = "0123456789abcdef";
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
                return -EIO;
        for (unsigned i = 0; i < 32; i++) {
                out[2 * i] = hex[md[i] >> 4];
                out[2 * i + 1] = hex[md[i] & 15];
        }
        out[64] = '\0';
        return 0;
}

int s3_buf_append_str(struct s3_buf *b, const char *str)
{
        return s3_buf_append(b, str, strlen(str));
}

void s3_buf_free(struct s3_buf *b)
{
        floe_free(b->data);
        b->data = NULL;
        b->len = b->cap = 0;
}

int s3_buf_append(struct s3_buf *b, const void *p, size_t n)
{
        if (n > b->max - b->len) {
                b->too_big = true;
                return -EFBIG;
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;

                while (cap < b->len + n + 1)
                        cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
                if (b->max < SIZE_MAX && cap > b->max + 1)
                        cap = b->max + 1;
                uint8_t *d = floe_realloc(b->data, cap);
                if (!d)
                        return -ENOMEM;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = 0;
        return 0;
}

struct ctx {
        struct s3_request *q;
        CURL *curl;
        int fail; /* a sink refused the data: -EFBIG or -ENOMEM */
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
        struct ctx *c = ud;
        struct s3_request *q = c->q;
        size_t n = size * nmemb;
        long status = 0;

        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
        if (status < 200 || status > 299) {
                /* an error document: keep its head for the code */
                size_t room = ERR_BODY_MAX - q->err.len;

                s3_buf_append(&q->err, ptr, n < room ? n : room);
                return n;
        }
        if (q->out) {
                /* a 200 to a range request is the whole object: skip to the range */
                const char *p = ptr;
                size_t m = n;
                uint64_t skip = status == 200 && q->range ? q->off : 0;

                if (skip > q->seen) {
                        uint64_t k = skip - q->seen;

                        if (k >= m) {
                                q->seen += m;
                                return n;
                        }
                        p += k, m -= (size_t)k, q->seen += k;
                }
                q->seen += m;
                if (m > q->out_cap - q->out_len)
                        m = q->out_cap - q->out_len;
                memcpy(q->out + q->out_len, p, m);
                q->out_len += m;
                return n;
        }
        if (q->buf) {
                int r = s3_buf_append(q->buf, ptr, n);

                if (r < 0) {
                        c->fail = r;
                        return 0; /* aborts the transfer */
                }
        }
        return n;
}

/* A header line's value if its name is name (case-insensitive), trimmed into out. */
static bool header_value(const char *line, size_t n, const char *name, char *out, size_t size)
{
        size_t nl = strlen(name), vl;
        const char *v;

        if (n <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
                return false;
        v = line + nl + 1;
        vl = n - nl - 1;
        while (vl > 0 && (*v == ' ' || *v == '\t'))
                v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
                vl--;
        if (vl >= size)
                vl = size - 1;
        memcpy(out, v, vl);
        out[vl] = '\0';
        return true;
}

static size_t on_header(char *line, size_t size, size_t nmemb, void *ud)
{
        struct ctx *c = ud;
        struct s3_request *q = c->q;
        size_t n = size * nmemb;
        char v[128];

        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                /* a new response (after 100 Continue): forget the last one's headers */
                q->etag[0] = q->storage_class[0] = '\0';
                return n;
        }
        if (header_value(line, n, "ETag", v, sizeof(v)))
                snprintf(q->etag, sizeof(q->etag), "%s", v);
        else if (header_value(line, n, "x-amz-storage-class", v, sizeof(q->storage_class)))
                memcpy(q->storage_class, v, strlen(v) + 1);
        else if (q->buf && header_value(line, n, "Content-Length", v, sizeof(v))) {
                /* a body larger than the caller's limit: give up before it comes */
                unsigned long long len = strtoull(v, NULL, 10);
                long status = 0;

                curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
                if (status >= 200 && status <= 299 && len > q->buf->max) {
                        q->buf->too_big = true;
                        c->fail = -EFBIG;
                        return 0;
                }
        }
        return n;
}

static size_t on_read(char *dst, size_t size, size_t nmemb, void *ud)
{
        struct s3_request *q = ((struct ctx *)ud)->q;
        size_t n = size * nmemb, left = q->body_len - q->read_pos;

        if (n > left)
                n = left;
        memcpy(dst, (const uint8_t *)q->body + q->read_pos, n);
        q->read_pos += n;
        return n;
}

static int on_seek(void *ud, curl_off_t off, int origin)
{
        struct s3_request *q = ((struct ctx *)ud)->q;

        if (origin != SEEK_SET || off < 0 || (uint64_t)off > q->body_len)
                return CURL_SEEKFUNC_CANTSEEK;
        q->read_pos = (size_t)off;
        return CURL_SEEKFUNC_OK;
}

static int build_url(const struct s3 *c, const struct s3_request *q, char *url, size_t size)
{
        char enc[S3_KEY_ENC_MAX];
        int n, r = 0;

        enc[0] = '\0';
        if (q->key)
                r = s3_uri_encode(q->key, strlen(q->key), true, enc, sizeof(enc));
        if (r < 0)
                return r;
        if (c->path_style)
                n = snprintf(url, size, "%s://%s/%s%s%s%s%s", c->scheme, c->host, c->bucket,
                             q->key ? "/" : "", enc, q->query ? "?" : "", q->query ? q->query : "");
        else
                n = snprintf(url, size, "%s://%s.%s/%s%s%s", c->scheme, c->bucket, c->host, enc,
                             q->query ? "?" : "", q->query ? q->query : "");
        return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int add_header(struct curl_slist **list, const char *line)
{
        struct curl_slist *l = curl_slist_append(*list, line);

        if (!l)
                return -ENOMEM;
        *list = l;
        return 0;
}

/* The request's headers: the payload hash, token, range and the caller's. */
static int build_headers(const struct s3 *c, const struct s3_request *q, struct curl_slist **ret)
{
        struct curl_slist *h = NULL;
        char line[2200], hash[65];
        int r;

        if (q->body_len > 0)
                r = s3_sha256_hex(q->body, q->body_len, hash);
        else
                r = (memcpy(hash, S3_EMPTY_SHA256, 65), 0);
        if (r < 0)
                return r;
        snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hash);
        r = add_header(&h, line);
        if (r >= 0 && c->token) {
                snprintf(line, sizeof(line), "x-amz-security-token: %s", c->token);
                r = add_header(&h, line);
        }
        if (r >= 0 && c->fixed_date) {
                snprintf(line, sizeof(line), "X-Amz-Date: %s", c->fixed_date);
                r = add_header(&h, line);
        }
        if (r >= 0 && q->range) {
                snprintf(line, sizeof(line), "Range: bytes=%" PRIu64 "-%" PRIu64, q->off,
                         q->off + q->len - 1);
                r = add_header(&h, line);
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(q->headers) && q->headers[i]; i++)
                r = add_header(&h, q->headers[i]);
        for (size_t i = 0; r >= 0 && c->test_headers && c->test_headers[i]; i++)
                r = add_header(&h, c->test_headers[i]);
        if (r < 0) {
                curl_slist_free_all(h);
                return r;
        }
        *ret = h;
        return 0;
}

static int setup(struct lake_store *s, struct s3_request *q, struct ctx *cx, const char *url,
                 struct curl_slist *headers, char *errbuf, struct curl_slist **ret_connect)
{
        struct s3 *c = S3(s);
        CURL *h = c->curl;
        CURLcode e = CURLE_OK;

        curl_easy_reset(h);
#define SET(opt, val)                                        \
        do {                                                 \
                if (e == CURLE_OK)                           \
                        e = curl_easy_setopt(h, opt, (val)); \
        } while (0)
        SET(CURLOPT_URL, url);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        SET(CURLOPT_PATH_AS_IS, 1L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        if (c->ca_file)
                SET(CURLOPT_CAINFO, c->ca_file);
        SET(CURLOPT_AWS_SIGV4, c->sigv4);
        SET(CURLOPT_USERNAME, c->key_id);
        SET(CURLOPT_PASSWORD, c->secret);
        SET(CURLOPT_HTTPHEADER, headers);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_WRITEFUNCTION, on_data);
        SET(CURLOPT_WRITEDATA, cx);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, cx);
        SET(CURLOPT_CONNECTTIMEOUT_MS,
            (long)(c->timeout_ms && c->timeout_ms < CONNECT_TIMEOUT_MS ? c->timeout_ms
                                                                       : CONNECT_TIMEOUT_MS));
        if (c->timeout_ms)
                SET(CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
        if (c->connect_to) {
                *ret_connect = curl_slist_append(NULL, c->connect_to);
                if (!*ret_connect)
                        return -ENOMEM;
                SET(CURLOPT_CONNECT_TO, *ret_connect);
        }
        if (strcmp(q->method, "HEAD") == 0) {
                SET(CURLOPT_NOBODY, 1L);
        } else if (strcmp(q->method, "PUT") == 0) {
                SET(CURLOPT_UPLOAD, 1L);
                SET(CURLOPT_READFUNCTION, on_read);
                SET(CURLOPT_READDATA, cx);
                SET(CURLOPT_SEEKFUNCTION, on_seek);
                SET(CURLOPT_SEEKDATA, cx);
                SET(CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
        } else if (strcmp(q->method, "POST") == 0) {
                SET(CURLOPT_POST, 1L);
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
                SET(CURLOPT_POSTFIELDS, q->body_len ? (const char *)q->body : "");
        } else if (strcmp(q->method, "GET") != 0) {
                SET(CURLOPT_CUSTOMREQUEST, q->method);
        }
#undef SET
        return e == CURLE_OK ? 0 : -EINVAL;
}

static bool curl_retryable(CURLcode e)
{
        switch (e) {
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_HTTP2:
        case CURLE_HTTP2_STREAM:
                return true;
        default:
                return false;
        }
}

static int status_errno(long status)
{
        switch (status) {
        case 401:
        case 403:
                return -EACCES;
        case 404:
                return -ENOENT;
        case 409:
                return -EBUSY;
        case 412:
                return -EEXIST;
        case 416:
                return -ERANGE;
        case 405:
        case 501:
                return -EOPNOTSUPP;
        default:
                return status >= 400 && status < 500 ? -EINVAL : -EIO;
        }
}

/* For answers without an error document (HEAD has no body). */
static const char *status_text(long status)
{
        switch (status) {
        case 403:
                return "(access denied)";
        case 404:
                return "(no such key)";
        case 412:
                return "(exists already)";
        default:
                return "(no S3 error code)";
        }
}

static void backoff(const struct s3 *c, unsigned attempt)
{
        uint64_t rnd = 0, ms;
        struct timespec ts;

        if (getrandom(&rnd, sizeof(rnd), 0) != sizeof(rnd))
                rnd = (uint64_t)time(NULL);
        ms = s3_backoff_ms(attempt, c->backoff_base_ms, c->backoff_cap_ms, rnd);
        ts.tv_sec = (time_t)(ms / 1000);
        ts.tv_nsec = (long)(ms % 1000) * 1000000L;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int s3_perform(struct lake_store *s, struct s3_request *q)
{
        struct s3 *c = S3(s);
        struct curl_slist *headers = NULL;
        struct ctx cx = {.q = q, .curl = c->curl};
        char url[S3_KEY_ENC_MAX + 2400], errbuf[CURL_ERROR_SIZE], what[1200];
        int r;

        snprintf(what, sizeof(what), "%s %s%s%.1024s", q->op, c->bucket, q->key ? "/" : "",
                 q->key ? q->key : "");
        q->err = (struct s3_buf){.max = ERR_BODY_MAX};
        r = build_url(c, q, url, sizeof(url));
        if (r >= 0)
                r = build_headers(c, q, &headers);
        if (r < 0)
                return store_fail(s, r, "%s: %s", what, strerror(-r));
        q->ambiguous = false;
        for (q->attempts = 1;; q->attempts++) {
                struct curl_slist *connect = NULL;
                CURLcode e;
                bool retry;

                q->status = 0;
                q->code[0] = q->etag[0] = q->storage_class[0] = '\0';
                q->read_pos = q->out_len = 0;
                q->seen = 0;
                q->err.len = 0;
                if (q->buf) {
                        q->buf->len = 0;
                        q->buf->too_big = false;
                }
                cx.fail = 0;
                errbuf[0] = '\0';
                r = setup(s, q, &cx, url, headers, errbuf, &connect);
                if (r < 0) {
                        curl_slist_free_all(connect);
                        store_fail(s, r, "%s: cannot set up the request", what);
                        break;
                }
                e = curl_easy_perform(c->curl);
                curl_slist_free_all(connect);
                if (e == CURLE_OK) {
                        curl_off_t len = -1;

                        curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &q->status);
                        curl_easy_getinfo(c->curl, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
                        q->length = len > 0 ? (uint64_t)len : 0;
                        s3_error_code((const char *)q->err.data, q->err.len, q->code,
                                      sizeof(q->code));
                        if (q->status >= 200 && q->status <= 299) {
                                r = 0;
                                break;
                        }
                        retry = s3_status_retryable(q->status, q->code);
                        r = status_errno(q->status);
                        store_fail(s, r, "%s: %ld %s%s", what, q->status,
                                   q->code[0] ? q->code : status_text(q->status),
                                   q->attempts > 1 ? " (after retries)" : "");
                } else if (cx.fail) {
                        r = cx.fail;
                        store_fail(s, r, "%s: %s", what,
                                   r == -EFBIG ? "larger than the caller's limit" : strerror(-r));
                        break;
                } else {
                        retry = curl_retryable(e);
                        r = e == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
                        store_fail(s, r, "%s: %s%s", what,
                                   errbuf[0] ? errbuf : curl_easy_strerror(e),
                                   q->attempts > 1 ? " (after retries)" : "");
                }
                if (!retry || q->attempts > c->retries)
                        break;
                /* the server may have done it: a create-if-absent must check for itself */
                q->ambiguous = true;
                backoff(c, q->attempts);
        }
        curl_slist_free_all(headers);
        s3_buf_free(&q->err);
        return r;
}
