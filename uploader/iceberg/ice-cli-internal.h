/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by ice-cli.c (options, reading commands), ice-cli-write.c (create, add-files) and
 * ice-cli-maint.c (append, compact, verify, tier). */

#include <stdbool.h>
#include <stdint.h>

#include "ice-table.h"
#include "ice-tier.h"
#include "lake-conf.h"

#define ICE_CLI_MAX_LIST 32

struct lake_store;
struct lake_catalog;

struct ice_cli {
        const char *metadata, *warehouse, *table, *catalog, *catalog_name;
        struct ice_kv maps[8]; /* --map FROM=TO */
        size_t n_maps;
        const char *schema, *partition;
        const char *sort[ICE_CLI_MAX_LIST];
        size_t n_sort;
        struct ice_kv props[ICE_CLI_MAX_LIST], summary[ICE_CLI_MAX_LIST];
        size_t n_props, n_summary;
        int64_t snapshot_id;
        int64_t older_than_us; /* -1: not given */
        int32_t retain_last;
        bool json, all, dry_run, delete;
        char **args; /* operands after the options */
        int n_args;
        /* import, append, compact, verify; --config */
        const char *config, *format, *ns_opt, *floe_kind;
        const char *parts[ICE_CLI_MAX_LIST]; /* compact --partition */
        size_t n_parts;
        uint64_t target_size, small_size, row_group_size;
        int64_t min_files;
        bool in_place, verbose;
        struct lake_conf conf;
        char table_buf[512]; /* --table TABLE completed with [lake] namespace */
        struct lake_store *store;
        struct lake_catalog *cat;
        struct ice_catalog_sql sql;
        struct ice_io io;
        char ns[256], name[256];
        char location[4096]; /* the table's, with --warehouse */
        /* tiers: [tier] of --config, or --tier-root/--storage-class with --age */
        const char *tier_roots[ICE_TIER_MAX], *tier_classes[ICE_TIER_MAX];
        int64_t tier_ages[ICE_TIER_MAX];
        size_t n_tier_roots, n_tier_classes, n_tier_ages;
        bool s3_lifecycle, s3_copy, use_tiers;
        int64_t max_files;
        struct ice_tier_conf tier_conf;
        struct ice_tier_opts tier; /* open when tier.n_tiers > 1; c->io then covers every root */
        struct ice_tier_io tier_io;
};

/* --warehouse: opens the store (and catalog), sets io, ns, name and location. */
int ice_cli_open_warehouse(struct ice_cli *c);
/* The store and catalog only (no table named). */
int ice_cli_open_store(struct ice_cli *c);
/* Logs a commit retry to stderr: "floe-lake: TABLE: retry N after a conflict: WHY". */
void ice_cli_log_retry(void *ud, int attempt, const char *why);
int ice_cli_import(struct ice_cli *c);
int ice_cli_append(struct ice_cli *c);
int ice_cli_compact(struct ice_cli *c);
int ice_cli_verify(struct ice_cli *c, struct ice_table *t);
int ice_cli_create(struct ice_cli *c);
int ice_cli_add_files(struct ice_cli *c);
int ice_cli_expire(struct ice_cli *c, struct ice_table *t);
int ice_cli_orphans(struct ice_cli *c, struct ice_table *t);
int ice_cli_tier(struct ice_cli *c);
/* --config: [lake] and [s3] (lake_conf_load), then [tier]; c->conf owns the config. */
int ice_cli_load_config(struct ice_cli *c, struct floe_config_error *err);
/* --tier-root (which 0), --storage-class (1), --age (2): the next tier's. */
int ice_cli_tier_arg(struct ice_cli *c, int which, const char *arg);
/* Tiers from those flags replace [tier] of the config. */
int ice_cli_tier_flags(struct ice_cli *c);
