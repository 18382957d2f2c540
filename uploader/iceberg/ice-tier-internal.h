/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Between ice-tier.c (moves, the ice_io over roots) and ice-tier-s3.c (classes, [tier]). */

#include "ice-tier.h"

/* The index of the root holding location (the most specific), its key into key; -EXDEV. */
int ice_tier_io_find(const struct ice_tier_io *ti, const char *location, char *key, size_t size);
/* Opens ns.table in tiers[0].store through an ice_tier_io (ti and sql must outlive it). */
int ice_tier_open_table(const struct ice_tier_opts *o, struct ice_tier_io *ti,
                        struct ice_catalog_sql *sql, struct lake_catalog *catalog, const char *ns,
                        const char *table, struct ice_table **ret, char *err, size_t errsize);
/* At least one tier beside the warehouse, ages ascending; with roots: a store of its own each. */
int ice_tier_check_opts(const struct ice_tier_opts *o, bool roots, char *err, size_t errsize);
int64_t ice_tier_now_ms(const struct ice_tier_opts *o);

/* Tests: called just before the replace commit of a move (a crash or a concurrent commit). */
void ice_tier_set_test_hook(void (*before_commit)(void *ud), void *ud);
