/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by ice-cli.c (options, reading commands) and ice-cli-write.c (create, add-files). */

#include <stdbool.h>
#include <stdint.h>

#include "ice-table.h"
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
