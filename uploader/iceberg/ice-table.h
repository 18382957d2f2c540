/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * An Iceberg table: its metadata files and their commits, and the operations floe runs on it
 * (append, replace, add column, snapshot expiry, orphan detection). docs/iceberg.md.
 *
 * I/O goes through struct ice_io (absolute locations, as metadata records them);
 * ice_io_store() adapts uploader/store. A table may also be registered in a catalog
 * (struct ice_catalog_ops; ice_catalog_sql() adapts uploader/catalog), which then decides
 * which metadata file is current.
 *
 * Layout: <location>/metadata/v<N>.metadata.json, created with create-if-absent, and
 * <location>/metadata/version-hint.text holding the bare N (no newline); manifests
 * metadata/<uuid>-m<K>.avro, manifest lists metadata/snap-<id>-<attempt>-<uuid>.avro.
 *
 * Without a catalog the creation of v<N+1> is the commit; with one, the catalog's
 * compare-and-swap is, and a v<N+1> that lost it is deleted again. Conflicts (-ESTALE,
 * -EEXIST) are retried commit.retry.num-retries times on the refreshed table for appends,
 * after re-checking for replaces; other errors are returned.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ice-util.h"
#include "iceberg.h"

typedef int (*ice_io_list_fn)(void *ud, const char *location, uint64_t size, int64_t mtime_ms);

struct ice_io {
        void *ud;
        /* -ENOENT if absent; *ret (floe_malloc) at most max bytes else -EFBIG */
        int (*get)(void *ud, const char *location, size_t max, uint8_t **ret, size_t *ret_len);
        /* if_absent: -EEXIST when the object exists */
        int (*put)(void *ud, const char *location, const void *data, size_t len, bool if_absent);
        int (*del)(void *ud, const char *location); /* absent is no error */
        /* every object under prefix (a location ending in '/') */
        int (*list)(void *ud, const char *prefix, ice_io_list_fn fn, void *fn_ud);
        /* -ENOENT if absent; may be NULL (get is used to probe then) */
        int (*size)(void *ud, const char *location, uint64_t *ret_size);
};

struct ice_catalog_ops {
        void *ud;
        int (*load)(void *ud, char **ret_location);    /* -ENOENT: not registered */
        int (*create)(void *ud, const char *location); /* -EEXIST */
        /* compare-and-swap: -ESTALE when the current location is not expected */
        int (*swap)(void *ud, const char *expected, const char *new_location);
};

struct ice_table {
        struct ice_io io;
        const struct ice_catalog_ops *catalog; /* NULL: file-system table */
        struct ice_metadata *md;
        char *metadata_location;
        int64_t version;           /* N of the current v<N>.metadata.json; 0 if its name has none */
        int64_t (*clock_ms)(void); /* wall clock; tests replace it */
        char error[256];           /* why the last call failed, for logs */
        /* called by ice_table_retry_wait() before each retry of a conflicting commit (attempt
         * 1, 2, ...) with the conflict's reason (t->error); may be NULL */
        void (*on_retry)(void *ud, int attempt, const char *why);
        void *on_retry_ud;
        /* the last commit failed where it may have landed (the catalog's COMMIT broke and the
         * catalog could not be read back): nothing of it was deleted; refresh to find out */
        bool commit_unknown;
        /* appends and replaces return their first conflict (-ESTALE) instead of waiting and
         * retrying: a caller on an event loop waits ice_table_retry_delay_ms() on a timer */
        bool no_retries;
};

#define ICE_METADATA_MAX_BYTES (64u << 20)
#define ICE_MANIFEST_MAX_BYTES (256u << 20)

struct ice_table *ice_table_free(struct ice_table *t);
/* Sleeps before retry number attempt (1, 2, ...): commit.retry.min-wait-ms doubling up to
 * commit.retry.max-wait-ms, with jitter; calls t->on_retry first. */
void ice_table_retry_wait(const struct ice_table *t, int attempt);
/* The wait before retry number attempt, as ice_table_retry_wait() sleeps it (jittered). */
int64_t ice_table_retry_delay_ms(const struct ice_table *t, int attempt);
/* commit.retry.num-retries (4 unless set). */
int ice_table_retry_limit(const struct ice_table *t);
/* Sets t->error; returns r. */
int ice_table_fail(struct ice_table *t, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Writes v1.metadata.json and version-hint.text for md (a new table), registers it in the
 * catalog when one is given. err (may be NULL) gets the reason of a failure. */
int ice_table_create(const struct ice_io *io, const struct ice_catalog_ops *catalog,
                     const struct ice_metadata *md, struct ice_table **ret, char *err,
                     size_t errsize);
/* With a catalog: its current metadata; else version-hint.text under location/metadata (and
 * any newer v<N> after it). */
int ice_table_open(const struct ice_io *io, const struct ice_catalog_ops *catalog,
                   const char *location, struct ice_table **ret, char *err, size_t errsize);
/* A given metadata file (read-only use: commits would not know the catalog). */
int ice_table_open_metadata(const struct ice_io *io, const char *metadata_location,
                            struct ice_table **ret, char *err, size_t errsize);
int ice_table_refresh(struct ice_table *t);
/* Commits md (taken, also on failure) as the successor of t->md. */
int ice_table_commit(struct ice_table *t, struct ice_metadata *md);

int ice_table_add_column(struct ice_table *t, const char *name, const struct ice_type *type,
                         const char *doc);

/* Fast append: one new manifest for files (partition values per the default spec), the
 * current manifests carried by reference and merged per commit.manifest.* properties. extra
 * pairs go into the summary. */
int ice_table_append(struct ice_table *t, const struct ice_data_file *files, size_t n,
                     const struct ice_kv *extra, size_t n_extra, int64_t *ret_snapshot_id);
/* A replace snapshot: removed files (matched by path; their partition values, when given,
 * skip manifests that cannot hold them) become DELETED, added files ADDED. -ENOENT when a
 * removed file is not live any more. */
int ice_table_replace(struct ice_table *t, const struct ice_data_file *removed, size_t n_removed,
                      const struct ice_data_file *added, size_t n_added, const struct ice_kv *extra,
                      size_t n_extra, int64_t *ret_snapshot_id);

/* Calls fn for every live data and delete file of a snapshot (-1: the current one). */
typedef int (*ice_entry_fn)(void *ud, const struct ice_manifest_file *mf,
                            const struct ice_manifest_entry *e);
int ice_table_scan(struct ice_table *t, int64_t snapshot_id, bool live_only, ice_entry_fn fn,
                   void *ud);
int ice_table_manifests(struct ice_table *t, const struct ice_snapshot *s,
                        struct ice_manifest_file **ret, size_t *ret_n);
int ice_table_manifest_entries(struct ice_table *t, const struct ice_manifest_file *mf,
                               bool live_only, ice_entry_fn fn, void *ud);

/* Expires snapshots (ice_metadata_expire), commits, and returns the manifest lists, manifests
 * and data files no snapshot reaches any more (deleted first when delete is set). */
int ice_table_expire(struct ice_table *t, const struct ice_expire_opts *o, bool delete,
                     struct ice_strv *ret_files);
/* Objects under the table location that no metadata reaches and older than older_than_ms
 * (absolute time). */
int ice_table_orphans(struct ice_table *t, int64_t older_than_ms, struct ice_strv *ret_files);

/* A new object's location: "<location>/metadata/<name>" / "<location>/data/<part>/<name>". */
int ice_table_metadata_path(const struct ice_table *t, const char *name, char **ret);

/* Adapters (ice-io-store.c). */
struct lake_store;
struct lake_catalog;
struct lake_catalog_txn;
void ice_io_store(struct lake_store *s, struct ice_io *ret);
/* A directory's location: prefix without its trailing '/' into loc (size bytes). */
int ice_io_dir_location(const char *prefix, char *loc, size_t size);
/* Lists the objects below the directory key ("" for all) of s, each by its location. */
int ice_io_store_list_dir(struct lake_store *s, const char *key, ice_io_list_fn fn, void *ud);

struct ice_catalog_sql {
        struct ice_catalog_ops ops;
        struct lake_catalog *catalog;
        const char *ns, *table;
        /* run inside each commit's transaction (the uploader's ledger); may be NULL */
        int (*txn_fn)(void *ud, struct lake_catalog_txn *txn);
        void *txn_ud;
};

void ice_catalog_sql(struct ice_catalog_sql *c, struct lake_catalog *catalog, const char *ns,
                     const char *table);
