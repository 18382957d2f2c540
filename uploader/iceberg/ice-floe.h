/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * floe's lake tables, defined once (DESIGN.md "Rows and tables", docs/lake.md):
 *
 *   events      tenant, device, sensor, metric, ts, value, text, received_at, batch_epoch,
 *               batch_seq; partitioned by identity(tenant), hour(ts)
 *   aggregates  tenant, device, sensor, metric, window_start, window_s, count, sum, min, max,
 *               first, last, received_at, batch_epoch, batch_seq; partitioned by
 *               identity(tenant), day(window_start)
 *
 * and the rows of a decoded batch (lib/floe-batch.h) as the columns of a table writer.
 * batch_epoch holds the unsigned 64-bit epoch's bits as a signed long (two's complement),
 * batch_seq the sequence number (below 2^63).
 */

#include <stddef.h>
#include <stdint.h>

#include "floe-batch.h"
#include "iceberg.h"
#include "parquet.h"

/* "events", "aggregates". */
const char *ice_floe_table_name(enum floe_batch_kind kind);
/* The table's definition at location (fields, partition spec, properties); static data. */
int ice_floe_table_def(enum floe_batch_kind kind, const char *location, struct ice_table_def *ret);

/* Creates ns.name as floe's table of that kind in the store's warehouse
 * (<store>/<ns as directories>/<name>), registered in the catalog when one is given:
 * -EEXIST when it exists. err (may be NULL) gets the reason of a failure. */
struct lake_store;
struct lake_catalog;
int ice_floe_table_create(struct lake_store *store, struct lake_catalog *catalog, const char *ns,
                          const char *name, enum floe_batch_kind kind, int64_t now_ms, char *err,
                          size_t errsize);

/* A batch's rows as writer columns; the buffers are reused by the next call. */
struct ice_floe_rows {
        struct parquet_values *values; /* one per writer column */
        size_t n_values;
        size_t n_rows;
        void **buf; /* per column */
        uint8_t **valid;
        size_t cap_rows, cap_cols;
};

/*
 * Fills rows with the batch's rows for the writer's columns (ice_writer_columns()), matched
 * by name. Table columns floe does not know (added later) are null, and must be optional;
 * a floe column the table lacks is refused when the batch has values for it. err (may be
 * NULL) says why: -EINVAL.
 */
int ice_floe_rows_from_batch(struct ice_floe_rows *rows, const struct floe_batch *b,
                             int64_t received_at_us, const struct parquet_column *cols,
                             size_t n_cols, char *err, size_t errsize);
void ice_floe_rows_clear(struct ice_floe_rows *rows);
