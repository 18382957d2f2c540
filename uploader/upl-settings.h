/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* floe-uploader's configuration (docs/uploader.md, "Configuration"). */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

#include "floe-batch.h"
#include "floe-config.h"
#include "ice-tier.h"
#include "lake-conf.h"

#define UPL_CONFIG_DEFAULT    "/etc/floe/uploader.conf"
#define UPL_WAREHOUSE_DEFAULT "file:///var/lib/floe/warehouse"
#define UPL_CATALOG_DEFAULT   "/var/lib/floe/catalog.db"
#define UPL_METRICS_DEFAULT   "127.0.0.1:9477"
#define UPL_SIZE_MIN          (UINT64_C(1) << 20)
#define UPL_SIZE_MAX          (UINT64_C(128) << 20)
#define UPL_INTERVAL_MAX      (UINT64_C(900) * 1000000)
#define UPL_ADD_COLUMNS_MAX   16
/* A commit every few seconds adds ~1 KB per snapshot to every metadata.json: an hour of them
 * (360 at 10 s) keeps it near 400 KB; a week would pass the 64 MiB a reader takes. */
#define UPL_EXPIRE_MAX_AGE_DEFAULT (UINT64_C(3600) * 1000000)
#define UPL_TABLES                 2 /* events, aggregates: index kind - 1 */

/* An optional column the table must have ([table.*] add_columns = name:type, ...). */
struct upl_column {
        char name[64];
        char type[32]; /* an Iceberg primitive type name */
};

struct upl_table_settings {
        uint64_t size;        /* bytes buffered before a flush (1 MiB .. 128 MiB) */
        uint64_t interval_us; /* age of the oldest buffered batch before a flush (0 .. 900 s) */
        struct upl_column add[UPL_ADD_COLUMNS_MAX];
        unsigned n_add;
};

/* [maintenance]: what the maintenance thread does beside ingest (docs/uploader.md). */
struct upl_maint_settings {
        bool enabled;
        uint64_t interval_us; /* between the starts of two runs */
        bool compact;
        uint64_t compact_min_files;     /* small files a partition needs to be compacted */
        double compact_small_fraction;  /* a file below this fraction of the target is small */
        uint64_t compact_target_size;   /* 0: [lake] target_file_size, else the table's */
        uint64_t compact_min_snapshots; /* snapshots since the last compaction */
        uint64_t compact_step;          /* input bytes per replace commit; 0: a partition */
        bool expire;
        uint64_t expire_max_age_us;
        uint64_t expire_min_snapshots;
        bool orphans;
        uint64_t orphan_min_age_us;
        uint64_t orphan_interval_us;
        bool tier;               /* move partitions by [tier] (when it has tiers) */
        uint64_t tier_max_files; /* per table and run; 0: all that are due */
};

struct upl_settings {
        /* [broker] */
        const char *host;
        int64_t port;
        const char *ca_file, *cert_file, *key_file;
        const char *client_id;
        const char *share_group;
        uint64_t keepalive_us;
        uint64_t session_expiry_us; /* 0: a clean session */
        uint64_t backoff_min_us, backoff_max_us;
        uint64_t inflight;
        /* [limits] */
        struct floe_wire_limits limits;
        /* [buffer] */
        uint64_t max_memory;
        uint64_t retry_min_us, retry_max_us;
        uint64_t stop_timeout_us;
        uint64_t step_bytes; /* batch bytes written per event-loop turn of a flush */
        /* [table.events], [table.aggregates] */
        struct upl_table_settings table[UPL_TABLES];
        /* [ledger] */
        uint64_t max_ranges;
        uint64_t cache_idle_us;
        /* [metrics] */
        bool metrics_enabled;
        char metrics_host[64]; /* numeric loopback address */
        int metrics_port;
        /* [maintenance] */
        struct upl_maint_settings maint;
        /* [dead_letters] */
        const char *dead_letter_prefix;
        /* [lake], [s3] */
        struct lake_conf lake;
        /* [tier] (n_tiers 1: none) */
        struct ice_tier_conf tier;
};

/* Reads the settings from cfg (NULL: defaults). Strings borrow from cfg. Unknown keys and bad
 * values fail with err naming the file and line. */
int upl_settings_load(const struct floe_config *cfg, struct upl_settings *ret,
                      struct floe_config_error *err);

/* floe_config_load(path, "<path>.d") + upl_settings_load; *ret_cfg owns the strings. */
int upl_config_load(const char *path, struct floe_config **ret_cfg, struct upl_settings *ret,
                    struct floe_config_error *err);

/* The index of a kind's table in settings and daemon arrays. */
static inline unsigned upl_table_index(enum floe_batch_kind kind)
{
        return kind == FLOE_KIND_AGGREGATES ? 1 : 0;
}
