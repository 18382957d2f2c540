/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Between s3.c (the backend's operations) and s3-http.c (one signed request, with retries). */

#include <curl/curl.h>

#include "s3-util.h"
#include "store-internal.h"

#define S3_KEY_ENC_MAX  (3 * 2048 + 1) /* a full key (prefix/key), UriEncoded */
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
        CURL *curl;
        char bucket[64];
        char prefix[1024]; /* "" or "a/b": keys live under "a/b/" */
        char scheme[8];    /* "http" or "https" */
        char host[256];    /* host[:port] of the endpoint */
        bool path_style;
        char sigv4[96]; /* "aws:amz:REGION:s3" */
        char key_id[256];
        char *secret;
        char *token; /* session token or NULL */
        char storage_class[65];
        char *ca_file;
        uint64_t threshold, part_size, timeout_ms;
        unsigned retries, page_size;
        uint64_t backoff_base_ms, backoff_cap_ms;
        /* test hooks (tests/unit/test-store-s3.c): a fixed X-Amz-Date, a CURLOPT_CONNECT_TO
         * entry, extra signed headers */
        const char *fixed_date;
        const char *connect_to;
        const char *const *test_headers;
};

/* A growable response buffer bounded by max bytes (then *too_big). */
struct s3_buf {
        uint8_t *data;
        size_t len, cap, max;
        bool too_big;
};

struct s3_request {
        const char *op; /* for messages: "PUT", "GET", "UploadPart", ... */
        const char *method;
        const char *key;   /* the full key (prefix included), or NULL for the bucket */
        const char *query; /* canonical query string (s3_query_format) or NULL */
        const void *body;  /* PUT/POST body */
        size_t body_len;
        const char *headers[6]; /* extra "Name: value" lines, NULL-terminated */
        bool range;             /* Range: bytes=off-(off+len-1) */
        uint64_t off, len;
        /* where a 2xx body goes: a fixed buffer (out, out_cap), else a growable one */
        uint8_t *out;
        size_t out_cap;
        struct s3_buf *buf;
        /* filled in */
        long status;
        char code[64]; /* the S3 error code of the answer, "" if none */
        char etag[128];
        char storage_class[65];
        uint64_t length; /* Content-Length of the answer */
        size_t out_len;  /* bytes put into out */
        bool ambiguous;  /* an earlier attempt may have taken effect (timeout, reset, 5xx) */
        unsigned attempts;
        /* internal */
        size_t read_pos;
        uint64_t seen;     /* body bytes received */
        struct s3_buf err; /* body of an error answer (bounded) */
};

static inline struct s3 *S3(const struct lake_store *s)
{
        return s->impl;
}

/*
 * Performs q with retries (full jitter) on 5xx, 429, SlowDown and the like, timeouts and
 * broken connections. 0 for a 2xx answer; otherwise a negative errno with lake_store_error()
 * set ("OP bucket/key: STATUS CODE"): -EACCES 401/403, -ENOENT 404, -EEXIST 412, -ERANGE
 * 416, -EINVAL other 4xx, -EFBIG when the answer exceeds its buffer, -ETIMEDOUT, -EIO.
 */
int s3_perform(struct lake_store *s, struct s3_request *q);

/* Appends (keeping a NUL after the data): -EFBIG past max, -ENOMEM. */
int s3_buf_append(struct s3_buf *b, const void *p, size_t n);
int s3_buf_append_str(struct s3_buf *b, const char *str);
void s3_buf_free(struct s3_buf *b);

/* s3-open.c */
void s3_close(struct lake_store *s);
int s3_location(const struct lake_store *s, const char *key, char *buf, size_t size);
int s3_key(const struct lake_store *s, const char *location, char *buf, size_t size);

/* Test hooks: a fixed X-Amz-Date, a CURLOPT_CONNECT_TO entry, extra headers (all borrowed). */
void s3_test_hooks(struct lake_store *s, const char *date, const char *connect_to,
                   const char *const *headers);

/* SHA-256 of data as 64 hex digits (out: 65 bytes). */
int s3_sha256_hex(const void *data, size_t len, char *out);
