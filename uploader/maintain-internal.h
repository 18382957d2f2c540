/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by maintain.c (the worker thread and the loop's side) and maintain-tasks.c (what the
 * worker does to one table). */

#include <pthread.h>
#include <stdatomic.h>

#include "ice-table.h"
#include "ice-tier.h"
#include "lake.h"
#include "maintain.h"

#define MiB            (UINT64_C(1) << 20)
#define TARGET_DEFAULT (512 * MiB) /* the writer's, without write.target-file-size-bytes */
#define RETRIES        2           /* whole steps again after the library's own retries */
#define DELETE_BATCH   64          /* deletions between checks of the stop flag */

struct upl_maint {
        const struct lake_conf *conf;
        const struct ice_tier_conf *tiers;
        int efd;
        /* the loop's side */
        sd_event_source *io;
        upl_maint_fn fn;
        void *ud;
        bool busy, started;
        pthread_t th;
        /* shared, under mu */
        pthread_mutex_t mu;
        pthread_cond_t cv;
        bool have_req, quit, exited, abandoned, run_over;
        struct upl_maint_request req;
        struct upl_maint_result done[UPL_TABLES];
        size_t n_done;
        atomic_bool stop;
        /* the worker's side */
        struct upl_lake lake;
        struct ice_tier_opts tier;       /* the tiers' roots, open during a run (n_tiers 0: none) */
        int64_t compact_seq[UPL_TABLES]; /* sequence number of the last compaction seen */
        int64_t checked_seq[UPL_TABLES]; /* ... of the last pass that found nothing more to do */
};

/* One table as the worker has it open. */
struct tbl {
        struct upl_maint *m;
        unsigned index;
        const char *name;
        struct ice_io io;
        struct ice_tier_io ti; /* io over every tier's root */
        struct ice_catalog_sql sql;
        struct ice_table *t;
};

uint64_t upl_maint_mono_us(void);
int64_t upl_maint_wall_ms(void);
bool upl_maint_stopping(struct upl_maint *m);
void upl_maint_fail(struct upl_maint_result *res, enum upl_maint_task task, int r, const char *why);
/* Whether the next task may start: not when the daemon stops (then the result says so). */
bool upl_maint_may(struct upl_maint *m, struct upl_maint_result *res);
/* One table's maintenance, as the request says, into res. */
void upl_maint_table(struct upl_maint *m, const struct upl_maint_request *req, unsigned index,
                     struct upl_maint_result *res);
