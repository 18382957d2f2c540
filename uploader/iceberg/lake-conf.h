/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Where the lake is, from configuration (lib/floe-config.h; docs/lake.md "Configuration"):
 *
 *   [lake]  warehouse, catalog, catalog_name, namespace, fsync,
 *           target_file_size, row_group_size, max_open_files
 *   [s3]    endpoint, region, path_style, storage_class, ca_file, credentials_file, profile,
 *           access_key, secret_key, session_token, multipart_threshold, part_size, retries,
 *           timeout, list_page_size
 *
 * floe-lake reads it with --config; floe-uploader's configuration has the same sections.
 */

#include "floe-config.h"
#include "ice-writer.h"
#include "store.h"

struct lake_conf {
        const char *warehouse; /* NULL: unset */
        const char *catalog;
        const char *catalog_name;
        const char *ns;
        struct lake_store_opts store;
        struct ice_writer_opts writer;
        struct floe_config *cfg; /* owns the strings; NULL when not loaded from a file */
};

/* The keys of [lake] and [s3] (section NULL ends the list). */
extern const struct floe_config_key lake_conf_keys[];

/* Defaults: nothing set, lake_store_opts_default(), a zero writer. */
void lake_conf_init(struct lake_conf *c);
/* Reads [lake] and [s3] of cfg (borrowed: it must outlive c). */
int lake_conf_from(struct lake_conf *c, const struct floe_config *cfg,
                   struct floe_config_error *err);
/* Loads a file and its "<path>.d/" drop-ins (floe-lake -c /etc/floe/uploader.conf): its [lake]
 * and [s3] sections (their unknown keys refused; other sections ignored); c owns the config. */
int lake_conf_load(struct lake_conf *c, const char *path, struct floe_config_error *err);
void lake_conf_clear(struct lake_conf *c);
