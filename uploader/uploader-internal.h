/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the daemon's parts: uploader.c (life cycle, MQTT, signals), intake.c (batches in),
 * flush.c (buffers out to the lake), maintain.c (table maintenance beside them), metrics.c
 * (the /metrics text). */

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "buffer.h"
#include "floe-ack.h"
#include "floe-config.h"
#include "floe-event.h"
#include "floe-log.h"
#include "floe-metrics.h"
#include "floe-mqtt.h"
#include "floe-wire.h"
#include "http.h"
#include "ice-floe.h"
#include "lake.h"
#include "ledger.h"
#include "maintain.h"
#include "upl-settings.h"
#include "uploader.h"

#define UPL_SEC         UINT64_C(1000000)
#define UPL_TENANTS_MAX 4096 /* tenants with metrics of their own; the rest share "_other" */
#define UPL_REASONS_MAX 64
#define UPL_LAT_BUCKETS 11

enum upl_phase {
        UPL_FLUSH_IDLE,
        UPL_FLUSH_WRITING, /* fl is being written, step by step */
        UPL_FLUSH_WAIT,    /* fl failed: retry after a backoff */
        UPL_FLUSH_REBASE,  /* fl written, its commit lost a race: committed again after
                              commit.retry's wait, on a timer */
};

struct upl_hist {
        uint64_t bucket[UPL_LAT_BUCKETS]; /* cumulative counts happen at rendering */
        uint64_t count;
        double sum;
};

struct upl_table_stats {
        uint64_t commits, batches, rows, bytes, files;
        uint64_t conflicts;  /* catalog compare-and-swap retries */
        uint64_t failures;   /* flushes that failed (and were retried) */
        uint64_t rebuilds;   /* flushes rebuilt without batches committed meanwhile */
        uint64_t duplicates; /* batches found committed by the commit's transaction */
        uint64_t rejected;   /* batches the table refused at flush */
        uint64_t evolutions; /* columns added */
        uint64_t written_off;
        int64_t last_commit_us;
        int64_t last_snapshot;
        struct upl_hist commit_s, flush_s;
};

struct upl_table {
        struct upl *u;
        enum floe_batch_kind kind;
        const char *name;
        struct upl_table_settings set;
        struct ice_writer *w;
        bool ensured;          /* created and evolved as configured */
        struct upl_buffer cur; /* taking batches */
        struct upl_buffer fl;  /* being flushed */
        struct upl_item **order;
        size_t n_order, pos;
        enum upl_phase phase;
        unsigned attempt;
        int rebases; /* commits of this flush that lost a race */
        uint64_t flush_mono;
        sd_event_source *retry;
        char last_error[512];
        struct upl_table_stats st;
};

/* What maintenance did to one table, totals since the start. */
struct upl_maint_stats {
        uint64_t runs[_UPL_MAINT_TASKS], failures[_UPL_MAINT_TASKS];
        uint64_t deleted[_UPL_MAINT_TASKS], not_deleted[_UPL_MAINT_TASKS];
        int64_t last_us[_UPL_MAINT_TASKS]; /* wall clock at the end of the task's last run */
        double last_s[_UPL_MAINT_TASKS];
        uint64_t commits, files_in, files_out, bytes_in, bytes_out, rows, retries, skipped;
        uint64_t expired;
        uint64_t tier_files, tier_bytes; /* moved to colder tiers (S3: objects given a class) */
        uint64_t since_compaction;
};

struct upl_tenant_stats {
        char tenant[FLOE_IDENTITY_PART_MAX + 1];
        uint64_t batches, events, committed_events, committed_batches, duplicates, rejected;
};

struct upl_reason_count {
        char reason[40];
        uint64_t n;
};

struct upl_stats {
        uint64_t messages, batches, bytes, events;
        uint64_t resent_buffered; /* a batch already in a buffer, sent again */
        uint64_t duplicates;      /* acked "duplicate" at intake */
        uint64_t deferred;        /* not taken (memory full, stopping): the agent resends */
        uint64_t dead_letter_failures;
        uint64_t acks[3], ack_failures;
        uint64_t ledger_errors;
        struct upl_reason_count rejected[UPL_REASONS_MAX];
        size_t n_reasons;
        double events_per_s;
        uint64_t rate_events, rate_mono;
};

struct upl_tls_files {
        char cert[PATH_MAX], key[PATH_MAX];
};

struct upl {
        const char *config_path;
        struct floe_config *cfg;
        struct upl_settings s;
        sd_event *e;
        struct floe_mqtt *mqtt;
        struct upl_tls_files tls[2]; /* what mqtt borrows; tls_slot is current */
        unsigned tls_slot;
        struct upl_http *http;
        struct floe_metrics *metrics;
        sd_event_source *tick, *work, *stop_timer;
        struct upl_lake lake;
        struct upl_ledger *ledger;
        bool ledger_ready;
        struct upl_table tables[UPL_TABLES];
        struct upl_maint *maint;
        struct upl_maint_stats mst[UPL_TABLES];
        uint64_t maint_last_mono, orphans_last_mono; /* the last run's start; 0: none yet */
        uint64_t maint_runs;
        struct upl_index index;
        uint64_t mem; /* bytes of every buffered item */
        struct floe_wire_decoder *dec;
        struct floe_batch *batch;
        struct ice_floe_rows rows;
        char filter[200];
        bool subscribed, stopping;
        uint64_t outstanding; /* acks published and not yet PUBACKed */
        uint64_t start_us;
        uint64_t last_status_mono, last_expire_mono;
        struct upl_stats st;
        struct upl_tenant_stats *tenants;
        size_t n_tenants;
        char last_status[FLOE_NOTIFY_STATUS_MAX];
        struct floe_ratelimit rl_reject, rl_defer, rl_flush, rl_ack, rl_maint;
};

/* uploader.c */
uint64_t upl_now_mono(void);
int64_t upl_now_wall(void);
/* Publishes the ack of one batch to floe/v1/<identity>/ack (reason only when rejected). */
void upl_ack(struct upl *u, const char *identity, uint64_t epoch, uint64_t seq,
             enum floe_ack_status status, const char *reason);
struct upl_tenant_stats *upl_tenant(struct upl *u, const char *identity);
void upl_count_reason(struct upl *u, const char *reason);
/* Makes sure the lake and the ledger are open; logs what fails (rate-limited). */
int upl_lake_ready(struct upl *u);

/* intake.c */
void upl_on_message(void *ud, const struct mosquitto_message *msg, const mosquitto_property *props);
/* Dead-letters a batch and acks it rejected (when its epoch and seq are known). 0 when kept;
 * a store error leaves it unacked (the agent sends it again). */
int upl_reject(struct upl *u, const char *topic, const char *identity, bool have_seq,
               uint64_t epoch, uint64_t seq, const char *reason, const char *detail,
               int64_t received_us, const void *data, size_t len);

/* flush.c */
void upl_table_init(struct upl_table *t, struct upl *u, enum floe_batch_kind kind);
void upl_table_done(struct upl_table *t);
/* Takes an item into the table's current buffer (and the index). */
int upl_table_add(struct upl_table *t, struct upl_item *it);
/* Starts the flushes that are due (size, interval, memory pressure; all when stopping). */
void upl_flush_check(struct upl *u, uint64_t now_mono);
/* Runs the next step of the flushes under way; true while one remains. */
bool upl_flush_work(struct upl *u);
/* Whether every table is idle and empty. */
bool upl_flush_drained(const struct upl *u);
/* Retry now what waits for its backoff (stopping). */
void upl_flush_retry_now(struct upl *u);
/* Opens the table's writer (and the table) when it is not open. */
int upl_table_open(struct upl_table *t);
uint64_t upl_buffer_fill(const struct upl_table *t);

/* metrics.c */
int upl_metrics_render(void *ud, const char **ret_body, size_t *ret_len);
void upl_hist_add(struct upl_hist *h, double v);
void upl_update_rate(struct upl *u, uint64_t now_mono);
