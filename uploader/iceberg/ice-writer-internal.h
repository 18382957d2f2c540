/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by ice-writer.c (open, commit) and ice-writer-route.c (rows, partitions, files). */

#include "ice-writer.h"

struct wpart;

/* One open Parquet file of a partition. */
struct wfile {
        struct ice_writer *w;
        struct wpart *part;
        char *location;
        struct lake_store_writer *sw;
        struct parquet_writer *pw;
        uint64_t sink_bytes;
        uint64_t rows;
};

/* A partition tuple met since the last commit. */
struct wpart {
        uint8_t *key; /* the tuple's encoding (routing) */
        size_t key_len;
        uint64_t hash;
        struct ice_datum *values; /* one per spec field, owned */
        char *path;               /* "tenant=acme/ts_hour=2026-11-21-13", "" unpartitioned */
        struct wfile *file;       /* open file or NULL */
        uint64_t last_use;
};

struct ice_writer {
        struct lake_store *store;
        struct lake_catalog *catalog;
        struct ice_catalog_sql sql;
        char *ns, *name;
        struct ice_table *t;

        /* the schema and spec at open (the table's may move on: files keep these) */
        struct parquet_column *cols;
        size_t n_cols;
        struct ice_type *col_types;
        int32_t spec_id;
        struct ice_partition_spec spec; /* a copy */
        int *pf_col;                    /* per spec field: the source's column index */
        char *schema_json;              /* iceberg.schema of every file */
        char *data_key;                 /* store key the data files go under */
        struct parquet_options popts;
        uint64_t target;
        unsigned max_open;

        /* partitions since the last commit, with a hash index */
        struct wpart **parts;
        size_t n_parts, cap_parts;
        uint32_t *slots; /* part index + 1, 0 empty */
        size_t n_slots;
        size_t n_open;
        uint64_t clock;

        /* files finished since the last commit */
        struct ice_data_file *done;
        size_t n_done, cap_done;
        uint64_t pending_rows, done_bytes;

        /* per write call */
        uint8_t *kbuf, *prev_key;
        size_t kcap, prev_len, prev_cap;
        uint32_t *row_part, *order;
        size_t row_cap;
        void **gather;
        uint8_t **gvalid;
        size_t gcap;
        struct parquet_values *slice;

        struct ice_strv orphans;
        void (*retry_fn)(void *ud, int attempt, const char *why);
        void *retry_ud;
        int retries;
        bool stale; /* the last commit lost a race (-EAGAIN): refresh before the next */
        int failed;
        char error[512];
};

int ice_writer_fail(struct ice_writer *w, int r, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
/* Finishes one open file into w->done. */
int ice_writer_finish_file(struct ice_writer *w, struct wpart *p);
/* Discards the open files and forgets the partitions. */
void ice_writer_drop_parts(struct ice_writer *w);
