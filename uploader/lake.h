/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The uploader's side of the lake: the warehouse's store and the catalog opened from
 * [lake]/[s3], floe.events and floe.aggregates created when missing (ice-floe.h's
 * definitions), optional columns added to them (schema evolution: new field ids, no data
 * rewritten), and table writers.
 */

#include <stdbool.h>
#include <stddef.h>

#include "floe-batch.h"
#include "lake-conf.h"
#include "upl-settings.h"

struct ice_writer;

struct upl_lake {
        const struct lake_conf *conf; /* borrowed */
        struct lake_store *store;
        struct lake_catalog *catalog;
        char why[512]; /* the last failure, for logs */
};

/* Opens what is not open yet (store, catalog). Fails with l->why. */
int upl_lake_open(struct upl_lake *l, const struct lake_conf *conf);
void upl_lake_close(struct upl_lake *l);

/* The table of kind exists (created if missing) and has the optional columns add[] (added if
 * missing). ret_added (may be NULL): how many columns were added. */
int upl_lake_ensure_table(struct upl_lake *l, enum floe_batch_kind kind,
                          const struct upl_column *add, unsigned n_add, unsigned *ret_added);

int upl_lake_open_writer(struct upl_lake *l, enum floe_batch_kind kind, struct ice_writer **ret);

/*
 * The floe column of a batch the writer lacks though the batch has values for it (an
 * optional column of DESIGN.md added after the table was made): its name and Iceberg type in
 * *ret, 1; 0 if the writer has every column the batch needs.
 */
int upl_lake_missing_column(const struct ice_writer *w, const struct floe_batch *b,
                            struct upl_column *ret);
