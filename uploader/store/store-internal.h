/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Between store.c and its backends (store-file.c, s3.c): not for callers of store.h. */

#include <stdarg.h>

#include "store.h"

#define STORE_ERROR_MAX 512
/* Temp files of file:// writes start with this; list() skips them, keys may not use it. */
#define STORE_TMP_PREFIX ".floe-tmp-"

struct store_backend {
        const char *scheme;
        void (*close)(struct lake_store *s);
        int (*location)(const struct lake_store *s, const char *key, char *buf, size_t size);
        /* location is known to be inside this store's URL space; *buf gets the key. */
        int (*key)(const struct lake_store *s, const char *location, char *buf, size_t size);
        int (*put)(struct lake_store *s, const char *key, const void *data, size_t len,
                   enum lake_put_mode mode);
        int (*get)(struct lake_store *s, const char *key, size_t max, uint8_t **ret,
                   size_t *ret_len);
        int (*get_range)(struct lake_store *s, const char *key, uint64_t off, size_t len, void *buf,
                         size_t *ret_len);
        int (*size)(struct lake_store *s, const char *key, uint64_t *ret_size);
        int (*del)(struct lake_store *s, const char *key);
        int (*list)(struct lake_store *s, const char *prefix, lake_store_list_fn fn, void *ud);
        int (*set_class)(struct lake_store *s, const char *key, const char *storage_class);
        /* Writers: w->s is set; the backend keeps its state in w->impl. */
        int (*writer_open)(struct lake_store_writer *w, const char *key);
        int (*writer_write)(struct lake_store_writer *w, const void *data, size_t len);
        int (*writer_commit)(struct lake_store_writer *w);
        /* Frees w->impl; unless w->done, first removes what the writer left (temp file,
         * multipart upload). */
        void (*writer_free)(struct lake_store_writer *w);
};

struct lake_store {
        const struct store_backend *be;
        struct lake_store_opts opts; /* strings borrowed only during open */
        void *impl;
        char error[STORE_ERROR_MAX];
};

struct lake_store_writer {
        struct lake_store *s;
        void *impl;
        uint64_t size; /* bytes written so far */
        int failed;    /* the error that broke the writer, or 0 */
        bool done;     /* committed */
};

extern const struct store_backend store_file_backend;
extern const struct store_backend store_s3_backend;

/* Backend open: the part of the URL after the scheme's "://" (file: the path). */
int store_file_open(struct lake_store *s, const char *path, char *why, size_t why_size);
int store_s3_open(struct lake_store *s, const char *rest, char *why, size_t why_size);

/* lake_store_error()'s text; returns r (a negative errno) for "return store_fail(...)". */
int store_fail(struct lake_store *s, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int store_vfail(struct lake_store *s, int r, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));
