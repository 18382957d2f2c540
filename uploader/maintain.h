/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Table maintenance beside ingest (docs/uploader.md, "Maintenance"): a worker thread with its
 * own store and catalog connections compacts small files, moves old partitions to colder
 * tiers ([tier]), expires snapshots, removes old metadata files and orphan files of floe.events
 * and floe.aggregates. The event loop posts a
 * run and hears each table's result through an eventfd; it never waits for the worker.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "ice-tier.h"
#include "lake-conf.h"
#include "upl-settings.h"

enum upl_maint_task {
        UPL_MAINT_COMPACT,
        UPL_MAINT_EXPIRE,
        UPL_MAINT_METADATA, /* metadata files that fell off the metadata-log */
        UPL_MAINT_ORPHANS,
        UPL_MAINT_TIER, /* partitions to colder tiers ([tier]) */
        _UPL_MAINT_TASKS,
};

/* "compact", "expire", "metadata", "orphans", "tier". */
const char *upl_maint_task_name(enum upl_maint_task task);

struct upl_maint_request {
        struct upl_maint_settings set;
        bool orphans;       /* the orphan pass is due (every orphan_interval) */
        char uploader[128]; /* floe.uploader in the summary of compactions */
};

/* One table's part of a run. */
struct upl_maint_result {
        unsigned table;              /* events 0, aggregates 1 */
        bool ran[_UPL_MAINT_TASKS];  /* done or tried */
        int error[_UPL_MAINT_TASKS]; /* 0 or a negative errno */
        double seconds[_UPL_MAINT_TASKS];
        char why[_UPL_MAINT_TASKS][200]; /* the reason of a failure */
        bool stopped;                    /* abandoned at a safe point: the daemon stops */
        bool gc_disabled;                /* gc.enabled=false: nothing is deleted */
        uint64_t since_compaction;       /* snapshots since the last compaction */
        /* compaction: replace snapshots committed and what they rewrote */
        size_t commits, partitions, files_in, files_out, skipped;
        uint64_t rows, bytes_in, bytes_out;
        int retries;
        /* tiers: what moved (file roots) or changed class (S3) */
        size_t tier_files, tier_partitions;
        uint64_t tier_bytes;
        bool lifecycle_changed;
        /* expiry, old metadata, orphans */
        size_t snapshots_expired;
        size_t deleted[_UPL_MAINT_TASKS], not_deleted[_UPL_MAINT_TASKS];
};

/* Called on the event loop with each table's result as it comes, then once with NULL when
 * the run is over. */
typedef void (*upl_maint_fn)(void *ud, const struct upl_maint_result *res);

struct upl_maint;

/* conf and tiers (n_tiers < 2: none) are borrowed and must not change while the worker runs;
 * the thread starts with the first run. */
int upl_maint_new(sd_event *e, const struct lake_conf *conf, const struct ice_tier_conf *tiers,
                  upl_maint_fn fn, void *ud, struct upl_maint **ret);
/* Starts a run of both tables: -EBUSY while one is under way. */
int upl_maint_post(struct upl_maint *m, const struct upl_maint_request *req);
bool upl_maint_busy(const struct upl_maint *m);
/* The worker abandons its run at the next safe point (between commits and deletions). */
void upl_maint_stop(struct upl_maint *m);
/* Stops and joins the worker, waiting at most wait_us: a worker still busy then (a store not
 * answering) is left to end alone while the process exits. */
struct upl_maint *upl_maint_free(struct upl_maint *m, uint64_t wait_us);
