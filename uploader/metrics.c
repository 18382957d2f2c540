/* SPDX-License-Identifier: Apache-2.0 */
/* The /metrics text: Prometheus exposition of the daemon's counters and gauges. */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "floe-alloc.h"
#include "uploader-internal.h"

#define P "floe_uploader_"

static const double BOUNDS[UPL_LAT_BUCKETS] = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

void upl_hist_add(struct upl_hist *h, double v)
{
        for (int i = 0; i < UPL_LAT_BUCKETS; i++)
                if (v <= BOUNDS[i]) {
                        h->bucket[i]++;
                        break;
                }
        h->count++;
        h->sum += v;
}

void upl_update_rate(struct upl *u, uint64_t now)
{
        uint64_t ev = u->tables[0].st.rows + u->tables[1].st.rows;

        if (u->st.rate_mono && now > u->st.rate_mono) {
                double dt = (double)(now - u->st.rate_mono) / 1e6;

                if (dt < 5)
                        return; /* over 5 s at least: commits come in steps */
                u->st.events_per_s = (double)(ev - u->st.rate_events) / dt;
        }
        u->st.rate_events = ev;
        u->st.rate_mono = now;
}

static void fam(struct floe_metrics *m, const char *name, const char *type, const char *help)
{
        floe_metrics_family(m, name, type, help);
}

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static void per_table_u64(struct upl *u, struct floe_metrics *m, const char *name, const char *type,
                          const char *help, size_t off)
{
        fam(m, name, type, help);
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                const uint64_t *v = (const uint64_t *)((const char *)&u->tables[i].st + off);

                floe_metrics_u64(m, name, L("table", u->tables[i].name), *v);
        }
}

static void hist(struct floe_metrics *m, const char *name, const char *help, struct upl *u,
                 size_t off)
{
        char bname[128], sname[128], cname[128], le[16];

        snprintf(bname, sizeof(bname), "%s_bucket", name);
        snprintf(sname, sizeof(sname), "%s_sum", name);
        snprintf(cname, sizeof(cname), "%s_count", name);
        fam(m, name, "histogram", help);
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                const struct upl_hist *h =
                        (const struct upl_hist *)((const char *)&u->tables[i].st + off);
                uint64_t cum = 0;

                for (int b = 0; b < UPL_LAT_BUCKETS; b++) {
                        cum += h->bucket[b];
                        snprintf(le, sizeof(le), "%g", BOUNDS[b]);
                        floe_metrics_u64(m, bname, L("table", u->tables[i].name, "le", le), cum);
                }
                floe_metrics_u64(m, bname, L("table", u->tables[i].name, "le", "+Inf"), h->count);
                floe_metrics_double(m, sname, L("table", u->tables[i].name), h->sum);
                floe_metrics_u64(m, cname, L("table", u->tables[i].name), h->count);
        }
}

static void intake(struct upl *u, struct floe_metrics *m)
{
        static const char *const status[] = {"ok", "duplicate", "rejected"};

        fam(m, P "info", "gauge", "Version of the running uploader");
        floe_metrics_u64(m, P "info", L("version", FLOE_VERSION), 1);
        fam(m, P "uptime_seconds", "gauge", "Seconds since the start");
        floe_metrics_double(m, P "uptime_seconds", NULL,
                            (double)(upl_now_mono() - u->start_us) / 1e6);
        fam(m, P "mqtt_connected", "gauge", "1 while connected and subscribed");
        floe_metrics_u64(m, P "mqtt_connected", NULL,
                         floe_mqtt_connected(u->mqtt) && u->subscribed);
        fam(m, P "messages_total", "counter", "Messages the broker delivered");
        floe_metrics_u64(m, P "messages_total", NULL, u->st.messages);
        fam(m, P "batches_received_total", "counter", "Batches taken into a buffer");
        floe_metrics_u64(m, P "batches_received_total", NULL, u->st.batches);
        fam(m, P "bytes_received_total", "counter", "Bytes of the batches taken (compressed)");
        floe_metrics_u64(m, P "bytes_received_total", NULL, u->st.bytes);
        fam(m, P "events_received_total", "counter", "Rows of the batches taken");
        floe_metrics_u64(m, P "events_received_total", NULL, u->st.events);
        fam(m, P "events_per_second", "gauge", "Rows committed per second, recently");
        floe_metrics_double(m, P "events_per_second", NULL, u->st.events_per_s);
        fam(m, P "resent_buffered_total", "counter",
            "Batches sent again while buffered (acked by the commit that takes them)");
        floe_metrics_u64(m, P "resent_buffered_total", NULL, u->st.resent_buffered);
        fam(m, P "duplicates_total", "counter", "Batches found committed already and acked so");
        floe_metrics_u64(m, P "duplicates_total", L("where", "intake"), u->st.duplicates);
        floe_metrics_u64(m, P "duplicates_total", L("where", "commit"),
                         u->tables[0].st.duplicates + u->tables[1].st.duplicates);
        fam(m, P "deferred_total", "counter",
            "Batches not taken (memory full, stopping): not acked, the agents resend them");
        floe_metrics_u64(m, P "deferred_total", NULL, u->st.deferred);
        fam(m, P "dead_letters_total", "counter", "Rejected batches kept as dead letters");
        for (size_t i = 0; i < u->st.n_reasons; i++)
                floe_metrics_u64(m, P "dead_letters_total", L("reason", u->st.rejected[i].reason),
                                 u->st.rejected[i].n);
        fam(m, P "dead_letter_failures_total", "counter",
            "Rejected batches that could not be stored (not acked)");
        floe_metrics_u64(m, P "dead_letter_failures_total", NULL, u->st.dead_letter_failures);
        fam(m, P "acks_total", "counter", "Acks published, by status");
        for (int s = 0; s < 3; s++)
                floe_metrics_u64(m, P "acks_total", L("status", status[s]), u->st.acks[s]);
        fam(m, P "ack_failures_total", "counter", "Acks that could not be published");
        floe_metrics_u64(m, P "ack_failures_total", NULL, u->st.ack_failures);
        fam(m, P "ledger_errors_total", "counter", "Ledger checks before buffering that failed");
        floe_metrics_u64(m, P "ledger_errors_total", NULL, u->st.ledger_errors);
        fam(m, P "ledger_cached_streams", "gauge", "Streams (identity, epoch) in the cache");
        floe_metrics_u64(m, P "ledger_cached_streams", NULL, upl_ledger_cached(u->ledger));
        fam(m, P "ledger_cache_bytes", "gauge", "Heap bytes the ledger cache holds");
        floe_metrics_u64(m, P "ledger_cache_bytes", NULL, upl_ledger_memory(u->ledger));
        fam(m, P "memory_bytes", "gauge", "Bytes of buffered batches, all tables");
        floe_metrics_u64(m, P "memory_bytes", NULL, u->mem);
        fam(m, P "memory_limit_bytes", "gauge", "[buffer] max_memory");
        floe_metrics_u64(m, P "memory_limit_bytes", NULL, u->s.max_memory);
}

static void tables(struct upl *u, struct floe_metrics *m)
{
        static const char *const phases[] = {"idle", "writing", "waiting"};

        fam(m, P "buffer_bytes", "gauge", "Bytes buffered per table (taking and flushing)");
        fam(m, P "buffer_batches", "gauge", "Batches buffered per table");
        fam(m, P "buffer_rows", "gauge", "Rows buffered per table");
        fam(m, P "buffer_partitions", "gauge", "Tenants (identity partitions) buffered");
        fam(m, P "buffer_size_bytes", "gauge", "The table's size hint");
        fam(m, P "buffer_interval_seconds", "gauge", "The table's interval hint");
        fam(m, P "buffer_fill_ratio", "gauge", "Buffered bytes over the size hint");
        fam(m, P "flush_state", "gauge", "1 for the state the table's flush is in");
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                struct upl_table *t = &u->tables[i];
                const char *const *lt = L("table", t->name);

                floe_metrics_u64(m, P "buffer_bytes", lt, upl_buffer_fill(t));
                floe_metrics_u64(m, P "buffer_batches", lt, t->cur.n_items + t->fl.n_items);
                floe_metrics_u64(m, P "buffer_rows", lt, t->cur.rows + t->fl.rows);
                floe_metrics_u64(m, P "buffer_partitions", lt,
                                 t->cur.n_tenants > t->fl.n_tenants ? t->cur.n_tenants
                                                                    : t->fl.n_tenants);
                floe_metrics_u64(m, P "buffer_size_bytes", lt, t->set.size);
                floe_metrics_double(m, P "buffer_interval_seconds", lt,
                                    (double)t->set.interval_us / 1e6);
                floe_metrics_double(m, P "buffer_fill_ratio", lt,
                                    (double)upl_buffer_fill(t) / (double)t->set.size);
                for (int p = 0; p < 3; p++)
                        floe_metrics_u64(m, P "flush_state",
                                         L("table", t->name, "state", phases[p]),
                                         (int)t->phase == p);
        }
#define T(name, type, help, field) \
        per_table_u64(u, m, P name, type, help, offsetof(struct upl_table_stats, field))
        T("commits_total", "counter", "Snapshots committed", commits);
        T("committed_batches_total", "counter", "Batches committed", batches);
        T("committed_events_total", "counter", "Rows committed", rows);
        T("written_bytes_total", "counter", "Bytes of Parquet committed", bytes);
        T("files_total", "counter", "Parquet files committed", files);
        T("commit_retries_total", "counter", "Catalog conflicts retried", conflicts);
        T("flush_failures_total", "counter", "Flushes that failed (retried with backoff)",
          failures);
        T("flush_rebuilds_total", "counter",
          "Flushes written again without batches committed elsewhere meanwhile", rebuilds);
        T("flush_rejected_total", "counter", "Batches the table refused at a flush", rejected);
        T("schema_evolutions_total", "counter", "Optional columns added to the table", evolutions);
        T("ledger_written_off_total", "counter",
          "Seqs of gaps given up by the ledger's bound ([ledger] max_ranges)", written_off);
#undef T
        fam(m, P "last_commit_timestamp_seconds", "gauge", "Time of the table's last commit");
        for (unsigned i = 0; i < UPL_TABLES; i++)
                floe_metrics_double(m, P "last_commit_timestamp_seconds",
                                    L("table", u->tables[i].name),
                                    (double)u->tables[i].st.last_commit_us / 1e6);
        hist(m, P "commit_seconds", "Duration of the catalog commit (metadata and transaction)", u,
             offsetof(struct upl_table_stats, commit_s));
        hist(m, P "flush_seconds", "From the start of a flush to its commit", u,
             offsetof(struct upl_table_stats, flush_s));
}

static void maint_u64(struct upl *u, struct floe_metrics *m, const char *name, const char *help,
                      size_t off)
{
        fam(m, name, "counter", help);
        for (unsigned i = 0; i < UPL_TABLES; i++)
                floe_metrics_u64(m, name, L("table", u->tables[i].name),
                                 *(const uint64_t *)((const char *)&u->mst[i] + off));
}

static double task_runs(const struct upl_maint_stats *st, int k)
{
        return (double)st->runs[k];
}

static double task_failures(const struct upl_maint_stats *st, int k)
{
        return (double)st->failures[k];
}

static double task_deleted(const struct upl_maint_stats *st, int k)
{
        return (double)st->deleted[k];
}

static double task_not_deleted(const struct upl_maint_stats *st, int k)
{
        return (double)st->not_deleted[k];
}

static double task_last(const struct upl_maint_stats *st, int k)
{
        return (double)st->last_us[k] / 1e6;
}

static double task_seconds(const struct upl_maint_stats *st, int k)
{
        return st->last_s[k];
}

/* A family with a sample per table and task (deletions: not for compaction, which deletes
 * nothing). */
static void per_task(struct upl *u, struct floe_metrics *m, const char *name, const char *type,
                     const char *help, bool deletions,
                     double (*get)(const struct upl_maint_stats *, int))
{
        fam(m, name, type, help);
        for (unsigned i = 0; i < UPL_TABLES; i++)
                for (int k = deletions ? UPL_MAINT_EXPIRE : 0; k < _UPL_MAINT_TASKS; k++)
                        floe_metrics_double(m, name,
                                            L("table", u->tables[i].name, "task",
                                              upl_maint_task_name((enum upl_maint_task)k)),
                                            get(&u->mst[i], k));
}

static void maintenance(struct upl *u, struct floe_metrics *m)
{
        fam(m, P "maintenance_enabled", "gauge", "[maintenance] enabled");
        floe_metrics_u64(m, P "maintenance_enabled", NULL, u->s.maint.enabled);
        fam(m, P "maintenance_running", "gauge", "1 while a maintenance run is under way");
        floe_metrics_u64(m, P "maintenance_running", NULL, upl_maint_busy(u->maint));
        fam(m, P "maintenance_interval_seconds", "gauge", "[maintenance] interval");
        floe_metrics_double(m, P "maintenance_interval_seconds", NULL,
                            (double)u->s.maint.interval_us / 1e6);
        per_task(u, m, P "maintenance_runs_total", "counter",
                 "Maintenance tasks run, per table and task", false, task_runs);
        per_task(u, m, P "maintenance_failures_total", "counter",
                 "Maintenance tasks that failed (tried again at the next run)", false,
                 task_failures);
        per_task(u, m, P "maintenance_files_deleted_total", "counter",
                 "Files deleted by expiry, old-metadata removal and orphan removal", true,
                 task_deleted);
        per_task(u, m, P "maintenance_delete_failures_total", "counter",
                 "Files maintenance could not delete (left for the orphan pass)", true,
                 task_not_deleted);
        per_task(u, m, P "maintenance_last_run_timestamp_seconds", "gauge",
                 "End of the task's last run (0: never)", false, task_last);
        per_task(u, m, P "maintenance_last_run_duration_seconds", "gauge",
                 "Duration of the task's last run", false, task_seconds);
#define M(name, help, field) \
        maint_u64(u, m, P "maintenance_" name, help, offsetof(struct upl_maint_stats, field))
        M("commits_total", "Replace snapshots committed by compaction", commits);
        M("files_compacted_total", "Small data files rewritten by compaction", files_in);
        M("files_written_total", "Data files compaction wrote in their place", files_out);
        M("bytes_compacted_total", "Bytes of the small files rewritten", bytes_in);
        M("bytes_written_total", "Bytes of the files compaction wrote", bytes_out);
        M("rows_compacted_total", "Rows rewritten by compaction", rows);
        M("commit_retries_total", "Conflicts with other commits that compaction retried", retries);
        M("files_skipped_total", "Small files compaction cannot read back (left as they are)",
          skipped);
        M("snapshots_expired_total", "Snapshots expired", expired);
        M("tier_files_total",
          "Data files moved to colder tier roots (S3 storage classes: objects given a class)",
          tier_files);
        M("tier_bytes_total", "Bytes of the data files moved to colder tier roots", tier_bytes);
#undef M
        fam(m, P "maintenance_snapshots_since_compaction", "gauge",
            "Snapshots since the table's last compaction, at the last run");
        for (unsigned i = 0; i < UPL_TABLES; i++)
                floe_metrics_u64(m, P "maintenance_snapshots_since_compaction",
                                 L("table", u->tables[i].name), u->mst[i].since_compaction);
}

static void tenants(struct upl *u, struct floe_metrics *m)
{
        int64_t now = upl_now_wall();

        fam(m, P "tenant_events_received_total", "counter", "Rows taken, per tenant");
        for (size_t i = 0; i < u->n_tenants; i++)
                floe_metrics_u64(m, P "tenant_events_received_total",
                                 L("tenant", u->tenants[i].tenant), u->tenants[i].events);
        fam(m, P "tenant_events_committed_total", "counter", "Rows committed, per tenant");
        for (size_t i = 0; i < u->n_tenants; i++)
                floe_metrics_u64(m, P "tenant_events_committed_total",
                                 L("tenant", u->tenants[i].tenant), u->tenants[i].committed_events);
        fam(m, P "tenant_batches_committed_total", "counter", "Batches committed, per tenant");
        for (size_t i = 0; i < u->n_tenants; i++)
                floe_metrics_u64(m, P "tenant_batches_committed_total",
                                 L("tenant", u->tenants[i].tenant),
                                 u->tenants[i].committed_batches);
        fam(m, P "tenant_dead_letters_total", "counter", "Batches rejected, per tenant");
        for (size_t i = 0; i < u->n_tenants; i++)
                floe_metrics_u64(m, P "tenant_dead_letters_total",
                                 L("tenant", u->tenants[i].tenant), u->tenants[i].rejected);
        fam(m, P "lag_seconds", "gauge",
            "Now minus the oldest received_at not yet committed, per tenant (0: nothing waits)");
        for (size_t i = 0; i < u->n_tenants; i++) {
                int64_t oldest = 0;

                for (unsigned k = 0; k < UPL_TABLES; k++) {
                        int64_t a =
                                upl_buffer_tenant_oldest(&u->tables[k].cur, u->tenants[i].tenant);
                        int64_t b =
                                upl_buffer_tenant_oldest(&u->tables[k].fl, u->tenants[i].tenant);

                        if (a && (!oldest || a < oldest))
                                oldest = a;
                        if (b && (!oldest || b < oldest))
                                oldest = b;
                }
                floe_metrics_double(m, P "lag_seconds", L("tenant", u->tenants[i].tenant),
                                    oldest && now > oldest ? (double)(now - oldest) / 1e6 : 0);
        }
}

int upl_metrics_render(void *ud, const char **ret_body, size_t *ret_len)
{
        struct upl *u = ud;

        for (int attempt = 0; attempt < 4; attempt++) {
                struct floe_metrics *bigger = NULL;
                size_t size;
                int r;

                floe_metrics_reset(u->metrics);
                intake(u, u->metrics);
                tables(u, u->metrics);
                maintenance(u, u->metrics);
                tenants(u, u->metrics);
                r = floe_metrics_text(u->metrics, ret_body, ret_len);
                if (r != -ENOSPC)
                        return r;
                size = (size_t)(4u << 20) << attempt; /* many tenants */
                if (floe_metrics_new(size, &bigger) < 0)
                        return -ENOMEM;
                floe_metrics_free(u->metrics);
                u->metrics = bigger;
        }
        return -ENOSPC;
}
