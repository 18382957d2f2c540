/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The lake's table writer (docs/lake.md): rows in, Parquet files out, one snapshot per commit.
 *
 *   ice_writer_open(store, catalog, "floe", "events", &opts, &w, err, sizeof(err));
 *   cols = ice_writer_columns(w, &n);              the columns rows are given in
 *   ice_writer_write(w, values, n_rows);           routed by the partition spec
 *   ice_writer_commit(w, &commit, &result);        all files in one append snapshot
 *
 * Rows are routed by the table's default partition spec (ice_transform_apply over the source
 * columns) to one open Parquet file per partition, streamed to the store through a
 * lake_store_writer and rolled at the target file size. A commit finishes the open files and
 * commits all files written since the last commit in ONE snapshot (append, or replace when
 * files are removed), running the caller's statements inside the catalog's transaction (the
 * uploader's ledger). Conflicts are retried on the refreshed table (commit.retry.*, with
 * backoff; the writer's retry callback hears of each), never listing a file twice. When a
 * commit fails for good, the files it would have added are deleted (best effort) and those
 * that could not be are kept in ice_writer_orphans() for the caller to report; a commit whose
 * outcome is unknown (the catalog's COMMIT broke) deletes nothing.
 *
 * Memory: per open file the Parquet writer's row group (row_group_bytes at most, plus one
 * page and one dictionary per column) and the store writer's buffer (S3: part_size); at most
 * max_open_files files are open at once: the least recently used one is finished when another
 * partition needs a file. One thread per writer (the store and catalog are not thread-safe).
 *
 * Return values: 0 or a negative errno; ice_writer_error() says why, for logs.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ice-table.h"
#include "parquet.h"

struct lake_store;
struct lake_catalog;
struct lake_catalog_txn;

/* Zero fields take the table's properties (Iceberg's names), else the defaults given. */
struct ice_writer_opts {
        uint64_t target_file_bytes; /* write.target-file-size-bytes: 512 MiB */
        uint64_t row_group_bytes;   /* write.parquet.row-group-size-bytes: 128 MiB */
        uint32_t page_bytes;        /* write.parquet.page-size-bytes: 1 MiB */
        uint32_t dict_bytes;        /* write.parquet.dict-size-bytes: 2 MiB */
        int zstd_level;             /* write.parquet.compression-level: 3 */
        unsigned max_open_files;    /* 16 */
};

struct ice_writer;

/* Opens ns.table: through the catalog when one is given (NULL: the file-system table under
 * <store>/<ns as directories>/<table>). err (may be NULL) gets the reason of a failure. */
int ice_writer_open(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                    const char *table, const struct ice_writer_opts *opts, struct ice_writer **ret,
                    char *err, size_t errsize);
/* Aborts what is not committed. */
struct ice_writer *ice_writer_free(struct ice_writer *w);

/*
 * The columns rows are given in: the primitive columns of the table's current schema (at
 * open) that Parquet stores (boolean, int, long, float, double, date, timestamp, timestamptz,
 * string), in schema order. Columns of other types must be optional; they stay null.
 */
const struct parquet_column *ice_writer_columns(const struct ice_writer *w, size_t *ret_n);
/* Index of a column by name, -ENOENT if the writer has none. */
int ice_writer_column_index(const struct ice_writer *w, const char *name);
/* The table (borrowed): metadata, location, properties. */
struct ice_table *ice_writer_table(struct ice_writer *w);

/*
 * Takes n_rows rows: one struct parquet_values per column of ice_writer_columns(). The batch
 * is checked first: a null in a required column or a string over 1 GiB is -EINVAL and nothing
 * is taken. Later errors (memory, storage) leave the writer failed: every call returns the
 * error until ice_writer_abort().
 */
int ice_writer_write(struct ice_writer *w, const struct parquet_values *columns, size_t n_rows);

/* Finishes the open files (they are committed with the next commit). */
int ice_writer_finish_files(struct ice_writer *w);

/* What is written and not yet committed. */
struct ice_writer_pending {
        size_t files;      /* finished and open */
        size_t open_files; /* open */
        uint64_t rows;
        uint64_t bytes; /* of the finished files, plus what the open ones hold */
};
void ice_writer_pending(const struct ice_writer *w, struct ice_writer_pending *ret);

typedef int (*ice_writer_txn_fn)(void *ud, struct lake_catalog_txn *txn);

struct ice_writer_commit {
        const struct ice_kv *summary; /* extra snapshot summary pairs */
        size_t n_summary;
        /* run in the catalog's transaction, at every attempt (the last one's counts); with a
         * catalog only. An error from it rolls the commit back and is returned. */
        ice_writer_txn_fn txn_fn;
        void *txn_ud;
        /* replace: these live files become DELETED in the same snapshot (compaction) */
        const struct ice_data_file *removed;
        size_t n_removed;
        /* a conflict is not waited for and retried here: -EAGAIN returns with the files kept,
         * to be committed again (after ice_table_retry_delay_ms, on the caller's timer) or
         * aborted */
        bool conflict_returns;
};

struct ice_writer_result {
        int64_t snapshot_id; /* 0: nothing was committed (no rows, nothing removed) */
        size_t files;
        uint64_t records, bytes;
        int retries; /* conflicts retried */
};

/* Commits every file written since the last commit in one snapshot. No files and nothing
 * removed: no snapshot; txn_fn still runs in a transaction of its own. -EAGAIN: lost to
 * another commit with c->conflict_returns (the files are kept). */
int ice_writer_commit(struct ice_writer *w, const struct ice_writer_commit *c,
                      struct ice_writer_result *ret);
/* Drops what is not committed: open files are discarded, finished ones deleted (best effort;
 * those left are added to the orphans). The writer is usable again. */
void ice_writer_abort(struct ice_writer *w);

/* Called before each retry of a conflicting commit, with the conflict. */
void ice_writer_set_retry_fn(struct ice_writer *w,
                             void (*fn)(void *ud, int attempt, const char *why), void *ud);
/* Files written but neither committed nor deleted (for logs; `floe-lake orphans` finds them). */
const struct ice_strv *ice_writer_orphans(const struct ice_writer *w);
const char *ice_writer_error(const struct ice_writer *w);

/* A data file's metrics from a Parquet report, in full: per column with an Iceberg id
 * (field_ids[i] when given, else the report's own; columns without are skipped), the
 * compressed size, value, null and NaN counts and the bounds. */
int ice_metrics_from_report(const struct parquet_report *report, const int32_t *field_ids,
                            struct ice_data_file *f);
/*
 * The table's metrics modes applied to f's metrics (after partition values were taken from
 * the full bounds): write.metadata.metrics.column.<name>, else write.metadata.metrics.default,
 * else truncate(16) for the first write.metadata.metrics.max-inferred-column-defaults (100)
 * columns and none beyond. none drops the column, counts its bounds, truncate(N) cuts string
 * bounds to N code points (binary to N bytes), full keeps them.
 */
int ice_metrics_apply_modes(const struct ice_metadata *md, struct ice_data_file *f);
/* Bytes per value of a kind in struct parquet_values (bool, int32_t, ..., parquet_str). */
size_t ice_writer_width(enum parquet_kind kind);
/* The parquet_kind storing an Iceberg type: -EOPNOTSUPP for others. */
int ice_parquet_kind(const struct ice_type *t, enum parquet_kind *ret);
