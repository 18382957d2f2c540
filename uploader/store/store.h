/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Object storage for the lake: data files, manifests and table metadata.
 * One API over two backends, chosen by the URL a store is opened with:
 *
 *   file:///var/lib/floe/warehouse     a directory tree; writes go to a temp
 *                                      file, fsync, rename, directory fsync
 *   s3://bucket/prefix                 S3 through libcurl with SigV4
 *                                      (path-style or virtual-hosted)
 *
 * Keys are relative to the store's root ("floe/events/data/..."), '/'
 * separated, never starting or ending with '/', never containing empty, "."
 * or ".." levels; at most 1024 bytes of UTF-8 without control characters; no
 * level may start with ".floe-tmp-" (lake_store_key_valid()).
 * lake_store_location() turns a key into the absolute URI Iceberg metadata
 * records ("file:///...", "s3://bucket/prefix/key").
 *
 * All calls are blocking and return 0 or a negative errno: -ENOENT (no such
 * key), -EEXIST (create-if-absent lost), -EACCES (credentials refused),
 * -EIO (the server or disk failed after retries), -ETIMEDOUT, -EINVAL (bad
 * key or URL), -EFBIG (object larger than asked for, or than S3 allows),
 * -ENOKEY (open: no S3 credentials found).
 * lake_store_error() has the last failure's text for logs, naming the
 * operation, the key, and on S3 the HTTP status and S3 error code
 * ("PUT bucket/floe/x.parquet: 403 SignatureDoesNotMatch"); never
 * credentials. Library code: logs at debug only. Not thread-safe: one store
 * per thread. docs/storage.md has URLs, options, retries and consistency.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lake_store;

enum lake_put_mode {
        LAKE_PUT_REPLACE,   /* overwrite whatever is there */
        LAKE_PUT_IF_ABSENT, /* fail with -EEXIST if the key exists (link/O_EXCL, If-None-Match: *)
                             */
};

struct lake_store_opts {
        /* S3 */
        const char *endpoint;      /* "https://s3.eu-west-1.amazonaws.com", "http://127.0.0.1:7480";
                                      NULL: AWS from region */
        const char *region;        /* "us-east-1" if NULL */
        const char *access_key;    /* NULL: AWS_ACCESS_KEY_ID, then credentials_file */
        const char *secret_key;    /* NULL: AWS_SECRET_ACCESS_KEY, then credentials_file */
        const char *session_token; /* optional; AWS_SESSION_TOKEN */
        const char *credentials_file; /* ~/.aws/credentials format; profile below */
        const char *profile;          /* "default" if NULL */
        bool path_style;              /* true: endpoint/bucket/key; false: bucket.endpoint/key */
        const char *storage_class;    /* x-amz-storage-class of new objects; NULL: none */
        const char *ca_file; /* TLS trust; NULL: system default. Verification is always on. */
        uint64_t multipart_threshold; /* bytes; larger lake_store_put()s use multipart upload */
        uint64_t part_size;           /* bytes, 5 MiB..5 GiB; also a writer's buffer */
        unsigned retries;             /* attempts after the first on 5xx, 429, timeouts, resets */
        uint64_t timeout_ms;          /* per request (0: none; connecting: at most 10 s) */
        unsigned list_page_size;      /* ListObjectsV2 max-keys, 1..1000 */
        /* file */
        bool fsync; /* default true; tests may turn it off */
};

void lake_store_opts_default(struct lake_store_opts *o);

/* o NULL: the defaults. */
int lake_store_open(const char *url, const struct lake_store_opts *o, struct lake_store **ret);
/* The same; on failure why (why_size bytes, may be NULL) says why, never with credentials. */
int lake_store_open_explain(const char *url, const struct lake_store_opts *o, char *why,
                            size_t why_size, struct lake_store **ret);
struct lake_store *lake_store_close(struct lake_store *s);
const char *lake_store_error(const struct lake_store *s);

/* The absolute URI of key (written to *buf, NUL-terminated); -ENAMETOOLONG. */
int lake_store_location(const struct lake_store *s, const char *key, char *buf, size_t size);
/* The key of an absolute URI inside this store; -EXDEV if it lies elsewhere. */
int lake_store_key(const struct lake_store *s, const char *location, char *buf, size_t size);

/* Whole objects. */
int lake_store_put(struct lake_store *s, const char *key, const void *data, size_t len,
                   enum lake_put_mode mode);
/* *ret allocated with floe_malloc (NUL-terminated beyond len for convenience); at most max bytes,
 * else -EFBIG. */
int lake_store_get(struct lake_store *s, const char *key, size_t max, uint8_t **ret,
                   size_t *ret_len);
/* Bytes [off, off + len) into buf; short only at the end of the object (*ret_len). */
int lake_store_get_range(struct lake_store *s, const char *key, uint64_t off, size_t len, void *buf,
                         size_t *ret_len);
int lake_store_size(struct lake_store *s, const char *key, uint64_t *ret_size);
int lake_store_delete(struct lake_store *s,
                      const char *key); /* -ENOENT is not an error: returns 0 */

/* Every key starting with prefix ("" or NULL: all; not necessarily up to a '/'), in
 * lexicographic (byte) order, with size and mtime (Unix ms). fn returns 0 to go on; anything
 * else stops the listing and is returned. */
typedef int (*lake_store_list_fn)(void *ud, const char *key, uint64_t size, int64_t mtime_ms);
int lake_store_list(struct lake_store *s, const char *prefix, lake_store_list_fn fn, void *ud);

/*
 * Streaming writes (Parquet files of any size with bounded memory): bytes are
 * buffered up to part_size and sent as multipart parts on S3 (one PUT if no
 * more than part_size come), written to a temp file locally; nothing is
 * visible under key until commit succeeds (which replaces what is there).
 * Freeing without commit leaves nothing behind. A failed write or commit
 * leaves the writer failed: it returns that error again; free it.
 */
struct lake_store_writer;
int lake_store_writer_open(struct lake_store *s, const char *key, struct lake_store_writer **ret);
int lake_store_writer_write(struct lake_store_writer *w, const void *data, size_t len);
int lake_store_writer_commit(struct lake_store_writer *w, uint64_t *ret_size);
struct lake_store_writer *lake_store_writer_free(struct lake_store_writer *w); /* aborts if open */

/* S3 only (-EOPNOTSUPP on file://): the storage class of an existing object, by CopyObject
 * onto itself (metadata kept); 0 if it has that class already; -EFBIG above 5 GiB. */
int lake_store_set_class(struct lake_store *s, const char *key, const char *storage_class);

/* Whether key is a valid key: 0 or -EINVAL. */
int lake_store_key_valid(const char *key);
