/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by ice-cli.c (options, reading commands) and ice-cli-write.c (create, add-files). */

#include <stdbool.h>
#include <stdint.h>

#include "ice-table.h"

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
        struct lake_store *store;
        struct lake_catalog *cat;
        struct ice_catalog_sql sql;
        struct ice_io io;
        char ns[256], name[256];
        char location[4096]; /* the table's, with --warehouse */
};

/* --warehouse: opens the store (and catalog), sets io, ns, name and location. */
int ice_cli_open_warehouse(struct ice_cli *c);
int ice_cli_create(struct ice_cli *c);
int ice_cli_add_files(struct ice_cli *c);
int ice_cli_expire(struct ice_cli *c, struct ice_table *t);
int ice_cli_orphans(struct ice_cli *c, struct ice_table *t);
