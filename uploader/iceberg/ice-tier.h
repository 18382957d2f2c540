/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Tiers by partition age (docs/lake.md "Tiers", docs/storage.md "Tiers"): hot -> warm -> cold.
 *
 * Filesystem (or any store) roots: tier 0 is the warehouse, tier i > 0 a root of its own
 * (file:///mnt/cold/warehouse). ice_tier_move() copies the live data files of partitions older
 * than a tier's age to the same key under that tier's root and swaps the paths in ONE replace
 * snapshot (the same data_file entries with the new file_path); readers never meet a dangling
 * path. The old files stay until the snapshots before the move expire (ice_table_expire
 * deletes them). A crash between copy and commit leaves copies that the next run takes over;
 * conflicts with concurrent commits are retried on the refreshed table.
 *
 * S3 storage classes: ice_tier_s3() installs one bucket lifecycle rule per table (its data
 * prefix -> each tier's class after the tier's age in days: object age), or where the server has
 * no lifecycle (or ICE_TIER_S3_COPY) copies the objects of partitions older than each tier's age
 * onto themselves with the tier's class (partition age). Keys never change.
 *
 * Files of a table then live under several roots: give its other maintenance (expire, orphans,
 * verify) the ice_io of ice_tier_io(), which finds each location in whichever root holds it.
 *
 * Return values: 0 or a negative errno, with the reason in err.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "floe-config.h"
#include "ice-table.h"

#define ICE_TIER_MAX 4 /* tier 0 (the warehouse) and up to 3 colder ones */

struct lake_store;
struct lake_store_opts;
struct lake_catalog;

struct ice_tier {
        struct lake_store *store;  /* the tier's root (borrowed); tier 0: the warehouse */
        int64_t age_ms;            /* partitions ended at least this long ago belong here */
        const char *storage_class; /* S3 (ice_tier_s3): the class of this tier */
};

enum ice_tier_s3_mode {
        ICE_TIER_S3_AUTO,      /* lifecycle rules; CopyObject where the server has none */
        ICE_TIER_S3_LIFECYCLE, /* lifecycle rules only (-EOPNOTSUPP without) */
        ICE_TIER_S3_COPY,      /* CopyObject only */
};

struct ice_tier_opts {
        struct ice_tier tiers[ICE_TIER_MAX]; /* [0]: the warehouse; ages ascending */
        size_t n_tiers;
        int64_t now_ms;   /* 0: the clock */
        size_t max_files; /* move at most this many files per run; 0: all that are due */
        bool dry_run;     /* count what is due; copy and commit nothing */
        enum ice_tier_s3_mode s3_mode;
        const struct ice_kv *summary; /* extra snapshot summary pairs */
        size_t n_summary;
        /* before each retry of a conflicting commit; may be NULL */
        void (*on_retry)(void *ud, int attempt, const char *why);
        void *retry_ud;
};

struct ice_tier_result {
        int64_t snapshot_id; /* the replace snapshot; 0: nothing moved */
        size_t partitions;   /* partitions with files moved (or due, dry run) */
        size_t files;        /* data files moved (or due) */
        size_t copied;       /* of those, copied now; the rest were there (an earlier run) */
        size_t skipped;      /* live files left alone: no time partition, another spec, or in no
                                tier's root */
        uint64_t bytes;      /* of the files moved */
        int retries;         /* commit conflicts retried */
        size_t passes;       /* scans (another scan when a file moved away meanwhile) */
        /* ice_tier_s3 */
        bool lifecycle;         /* rules were used (else CopyObject) */
        bool lifecycle_changed; /* the bucket's configuration was written */
        size_t objects_changed; /* CopyObject: objects given a new class */
};

/*
 * Moves the live data files of ns.table (opened through tiers[0].store and catalog) whose
 * partition ended at least tiers[i].age_ms ago to tier i (the coldest that applies), from a
 * warmer tier only. The partition's time is its first time field (hour, day, month, year of a
 * timestamp or date, or an identity date). Only files of the default spec move, and only in
 * tables without delete files.
 */
int ice_tier_move(const struct ice_tier_opts *o, struct lake_catalog *catalog, const char *ns,
                  const char *table, struct ice_tier_result *ret, char *err, size_t errsize);

/* Storage classes on an s3:// warehouse (tiers[0].store), tiers[1..] by storage_class. */
int ice_tier_s3(const struct ice_tier_opts *o, struct lake_catalog *catalog, const char *ns,
                const char *table, struct ice_tier_result *ret, char *err, size_t errsize);

/* An ice_io over several roots: each location goes to the store whose root holds it (the most
 * specific one); list covers the same key prefix under every root. ti must outlive the io. */
struct ice_tier_io {
        struct lake_store *stores[ICE_TIER_MAX];
        size_t n;
};
void ice_tier_io(struct ice_tier_io *ti, const struct ice_tier_opts *o, struct ice_io *ret);

/* The end of a partition in Unix ms (its first time field), -ENOENT if it has none. */
int ice_tier_partition_end(const struct ice_partition_spec *spec, const struct ice_schema *schema,
                           const struct ice_datum *values, size_t n, int64_t *ret_ms);

/*
 * Configuration ([tier], docs/lake.md "Tiers"):
 *   root.N = URL        tier N's root (file tiers), N = 1..3
 *   age.N = DURATION    partitions older than this go to tier N (ascending)
 *   class.N = CLASS     tier N's S3 storage class
 *   s3 = auto|lifecycle|copy
 */
struct ice_tier_conf {
        const char *root[ICE_TIER_MAX]; /* [0] unused */
        int64_t age_ms[ICE_TIER_MAX];
        const char *storage_class[ICE_TIER_MAX];
        size_t n_tiers; /* 1 + the tiers configured */
        enum ice_tier_s3_mode s3_mode;
};

extern const struct floe_config_key ice_tier_conf_keys[];
/* Reads [tier] (strings borrowed from cfg). Tiers must be numbered 1.. without gaps, ages
 * ascending; a tier needs an age and a root or a class. */
int ice_tier_conf_from(struct ice_tier_conf *c, const struct floe_config *cfg,
                       struct floe_config_error *err);

/* Options from c over the warehouse store: opens each root with so (NULL: defaults); tiers
 * without a root share the warehouse's store. ice_tier_opts_close() closes what was opened. */
int ice_tier_opts_open(struct ice_tier_opts *o, const struct ice_tier_conf *c,
                       struct lake_store *warehouse, const struct lake_store_opts *so, char *err,
                       size_t errsize);
void ice_tier_opts_close(struct ice_tier_opts *o);
