/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Table maintenance beside ingest (docs/lake.md): registering existing Parquet files,
 * compaction of small files into a replace snapshot, and verification of everything a
 * table's metadata reaches.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ice-pq.h"
#include "ice-table.h"
#include "ice-writer.h"

struct lake_store;
struct lake_catalog;

/* ---- registering files (ice-register.c) ---- */

/*
 * The data_file entry of an existing Parquet file at location: record count, size, split
 * offsets, and metrics from its footer, columns matched to the current schema (ice_pq_match:
 * by field id, or by name when the file has none: *ret_by_name); bounds of promoted columns
 * (int as long, float as double) widened; partition values from the bounds (the file must hold
 * one partition); then the table's metrics modes. err says why a file is refused (-EINVAL).
 */
int ice_register_describe(const struct ice_metadata *md, const struct ice_pq_src *src,
                          const char *location, struct ice_data_file *ret, bool *ret_by_name,
                          char *err, size_t errsize);
/* Sets schema.name-mapping.default (every current column by its name) when the table has
 * none, in a commit of its own; 0 when it has one. */
int ice_table_ensure_name_mapping(struct ice_table *t);

/* ---- compaction (ice-compact.c) ---- */

struct ice_compact_opts {
        uint64_t target_bytes;         /* 0: write.target-file-size-bytes */
        uint64_t small_bytes;          /* files below are rewritten; 0: 3/4 of the target */
        size_t min_files;              /* small files a partition needs; 0: 2 */
        const char *const *partitions; /* partition paths ("tenant=a/ts_hour=..."); none: all */
        size_t n_partitions;
        const struct ice_kv *summary; /* extra snapshot summary pairs */
        size_t n_summary;
};

struct ice_compact_result {
        int64_t snapshot_id; /* 0: nothing to do */
        size_t partitions, files_in, files_out, skipped;
        uint64_t rows, bytes_in, bytes_out;
        int retries;
};

/*
 * Rewrites the small live data files of each chosen partition into files of the target size
 * and commits one replace snapshot (the old files stay until expiry removes them). Files that
 * cannot be read back (nested columns, unsupported codecs or encodings, columns the writer
 * cannot write) are skipped and counted. Rows keep their order within each file.
 */
int ice_compact(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                const char *table, const struct ice_compact_opts *o, struct ice_compact_result *ret,
                char *err, size_t errsize);

/* ---- verification (ice-verify.c) ---- */

/* A problem found: what (a location) and why. */
typedef void (*ice_verify_fn)(void *ud, const char *what, const char *problem);

struct ice_verify_result {
        size_t snapshots, manifest_lists, manifests, data_files, problems;
        int64_t records; /* of the current snapshot */
};

/*
 * Reads every snapshot's manifest list and every manifest they name, checks their sizes,
 * entry counts and the snapshot summaries' totals, and that every file a live entry names
 * exists with the recorded size, its footer parses (footers: with store) and its row count is
 * the recorded one. Each problem goes to fn. Returns 0 when the walk was complete (problems
 * or not), a negative errno when it could not go on.
 */
int ice_table_verify(struct ice_table *t, struct lake_store *store, ice_verify_fn fn, void *ud,
                     struct ice_verify_result *ret);
