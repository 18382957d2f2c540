/* SPDX-License-Identifier: Apache-2.0 */
/* Flushes: a table's buffered batches written as Parquet, step by step on the event loop, and
 * committed with the ledger in one catalog transaction; acks after the commit. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "floe-alloc.h"
#include "ice-writer.h"
#include "uploader-internal.h"

void upl_table_init(struct upl_table *t, struct upl *u, enum floe_batch_kind kind)
{
        *t = (struct upl_table){
                .u = u,
                .kind = kind,
                .name = ice_floe_table_name(kind),
                .set = u->s.table[upl_table_index(kind)],
        };
}

static void release(struct upl_table *t, struct upl_buffer *b)
{
        struct upl *u = t->u;

        for (size_t i = 0; i < b->n_tenants; i++)
                for (struct upl_item *it = b->tenants[i].head; it; it = it->next) {
                        upl_index_remove(&u->index, it);
                        u->mem -= upl_item_bytes(it);
                }
        upl_buffer_clear(b);
}

void upl_table_done(struct upl_table *t)
{
        t->retry = sd_event_source_disable_unref(t->retry);
        t->w = ice_writer_free(t->w);
        floe_free(t->order);
        t->order = NULL;
        release(t, &t->fl);
        release(t, &t->cur);
}

int upl_table_add(struct upl_table *t, struct upl_item *it)
{
        int r = upl_buffer_add(&t->cur, it);

        if (r < 0)
                return r;
        upl_index_add(&t->u->index, it);
        t->u->mem += upl_item_bytes(it);
        return 0;
}

uint64_t upl_buffer_fill(const struct upl_table *t)
{
        return t->cur.bytes + t->fl.bytes;
}

int upl_table_open(struct upl_table *t)
{
        struct upl *u = t->u;
        unsigned added = 0;
        int r;

        if (t->w)
                return 0;
        r = upl_lake_ready(u);
        if (r < 0)
                return r;
        if (!t->ensured) {
                r = upl_lake_ensure_table(&u->lake, t->kind, t->set.add, t->set.n_add, &added);
                if (r < 0)
                        return r;
                if (added)
                        log_notice("%s.%s: %u optional column%s added as configured (the schema "
                                   "evolves, no data is rewritten)",
                                   u->s.lake.ns, t->name, added, added == 1 ? "" : "s");
                t->st.evolutions += added;
                t->ensured = true;
        }
        return upl_lake_open_writer(&u->lake, t->kind, &t->w);
}

static uint64_t backoff(const struct upl *u, unsigned attempt)
{
        uint64_t rnd = 0;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = upl_now_mono() * 0x9e3779b97f4a7c15ULL;
        return floe_backoff_us(u->s.retry_min_us, u->s.retry_max_us, attempt, rnd);
}

static void begin_writing(struct upl_table *t);
static void commit(struct upl_table *t);

static int on_rebase(sd_event_source *s, uint64_t usec, void *ud)
{
        struct upl_table *t = ud;

        (void)s;
        (void)usec;
        t->retry = sd_event_source_disable_unref(t->retry);
        if (t->phase == UPL_FLUSH_REBASE) {
                t->phase = UPL_FLUSH_WRITING;
                commit(t);
        }
        return 0;
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
        struct upl_table *t = ud;

        (void)s;
        (void)usec;
        t->retry = sd_event_source_disable_unref(t->retry);
        if (t->phase != UPL_FLUSH_WAIT)
                return 0;
        /* what came meanwhile goes along: one commit drains the backlog */
        if (upl_buffer_merge(&t->fl, &t->cur) < 0)
                log_debug("%s: out of memory merging buffers; retrying without the new ones",
                          t->name);
        begin_writing(t);
        return 0;
}

/* The flush failed: nothing is acked, every batch stays buffered, a retry follows. */
static void failed(struct upl_table *t, int r, const char *why)
{
        struct upl *u = t->u;
        uint64_t delay;
        char d[32];

        /* why may be the writer's own text: kept before the writer goes */
        snprintf(t->last_error, sizeof(t->last_error), "%s", why && *why ? why : strerror(-r));
        if (t->w) {
                const struct ice_strv *o = ice_writer_orphans(t->w);

                ice_writer_abort(t->w);
                if (o->n)
                        log_warning("%s.%s: %zu written files could not be deleted (floe-lake "
                                    "orphans finds them)",
                                    u->s.lake.ns, t->name, o->n);
                t->w = ice_writer_free(t->w); /* reopened on the refreshed table */
        }
        t->st.failures++;
        delay = backoff(u, t->attempt);
        if (t->attempt < 64)
                t->attempt++;
        if (u->stopping && delay > UPL_SEC)
                delay = UPL_SEC;
        log_ratelimit_errno(&u->rl_flush, LOG_WARNING, r,
                            "%s.%s: flush of %zu batches (%" PRIu64 " rows) failed, attempt %u: "
                            "%s; kept unacknowledged, retrying in %s",
                            u->s.lake.ns, t->name, t->fl.n_items, t->fl.rows, t->attempt,
                            t->last_error, floe_format_duration(delay, d, sizeof(d)));
        t->phase = UPL_FLUSH_WAIT;
        t->retry = sd_event_source_disable_unref(t->retry);
        if (floe_event_add_timer(u->e, delay, 10000, on_retry, t, &t->retry) < 0)
                t->phase = UPL_FLUSH_WAIT; /* retried at the next check (stopping) or never */
}

static void begin_writing(struct upl_table *t)
{
        /* columns to add since (SIGHUP): the writer reopens on the evolved table; between
         * flushes it holds nothing */
        if (!t->ensured && t->w)
                t->w = ice_writer_free(t->w);
        floe_free(t->order);
        t->order = NULL;
        t->n_order = t->pos = 0;
        if (upl_buffer_order(&t->fl, &t->order) < 0) {
                failed(t, -ENOMEM, "out of memory");
                return;
        }
        t->n_order = t->fl.n_items;
        t->rebases = 0;
        t->phase = UPL_FLUSH_WRITING;
        sd_event_source_set_enabled(t->u->work, SD_EVENT_ON);
}

static void start(struct upl_table *t, uint64_t now)
{
        if (upl_buffer_merge(&t->fl, &t->cur) < 0)
                return; /* out of memory: the next check tries again */
        t->flush_mono = now;
        begin_writing(t);
}

void upl_flush_check(struct upl *u, uint64_t now)
{
        bool pressure = u->mem >= u->s.max_memory / 4 * 3;

        for (unsigned i = 0; i < UPL_TABLES; i++) {
                struct upl_table *t = &u->tables[i];
                bool due;

                if (t->phase != UPL_FLUSH_IDLE || t->cur.n_items == 0)
                        continue;
                due = u->stopping || pressure || t->cur.bytes >= t->set.size ||
                      now - t->cur.first_mono >= t->set.interval_us;
                if (due)
                        start(t, now);
        }
}

void upl_flush_retry_now(struct upl *u)
{
        for (unsigned i = 0; i < UPL_TABLES; i++)
                if (u->tables[i].phase == UPL_FLUSH_WAIT)
                        on_retry(NULL, 0, &u->tables[i]);
                else if (u->tables[i].phase == UPL_FLUSH_REBASE)
                        on_rebase(NULL, 0, &u->tables[i]);
}

bool upl_flush_drained(const struct upl *u)
{
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                const struct upl_table *t = &u->tables[i];

                if (t->phase != UPL_FLUSH_IDLE || t->cur.n_items || t->fl.n_items)
                        return false;
        }
        return true;
}

/* A batch the table cannot take: dead-lettered, acked rejected, left out of the flush. */
static void reject_item(struct upl_table *t, struct upl_item *it, const char *reason,
                        const char *detail)
{
        char topic[FLOE_IDENTITY_MAX + 32];

        it->state = UPL_ITEM_REJECTED;
        t->st.rejected++;
        snprintf(topic, sizeof(topic), "floe/v1/%s/batch", it->identity);
        upl_reject(t->u, topic, it->identity, true, it->epoch, it->seq, reason, detail,
                   it->received_us, it->data, it->len);
}

/* A floe column the table lacks: it gets it (schema evolution), the flush starts over. */
static int evolve(struct upl_table *t, const struct upl_column *col)
{
        struct upl *u = t->u;
        unsigned added = 0;
        int r;

        ice_writer_abort(t->w);
        t->w = ice_writer_free(t->w);
        r = upl_lake_ensure_table(&u->lake, t->kind, col, 1, &added);
        if (r < 0) {
                failed(t, r, u->lake.why);
                return r;
        }
        t->st.evolutions += added;
        log_notice("%s.%s: optional column %s (%s) added for the batches that carry it (the "
                   "schema evolves, no data is rewritten)",
                   u->s.lake.ns, t->name, col->name, col->type);
        t->pos = 0;
        return 0;
}

/* Writes the next batches of the flush; commits after the last one. */
static void step(struct upl_table *t)
{
        struct upl *u = t->u;
        uint64_t budget = u->s.step_bytes;
        struct floe_wire_error werr;
        struct upl_column col;
        char why[256];
        int r;

        if (!t->w) {
                r = upl_table_open(t);
                if (r < 0) {
                        failed(t, r, u->lake.why);
                        return;
                }
        }
        while (t->pos < t->n_order && budget > 0) {
                struct upl_item *it = t->order[t->pos];
                const struct parquet_column *cols;
                size_t n_cols;

                if (it->state != UPL_ITEM_BUFFERED) {
                        t->pos++;
                        continue;
                }
                r = floe_wire_decode_into(u->dec, it->data, it->len, u->batch, &werr);
                if (r == -ENOMEM) {
                        failed(t, r, "out of memory decoding a batch");
                        return;
                }
                if (r < 0) { /* decoded at intake: only a smaller limit since (reload) */
                        reject_item(t, it, floe_wire_reason_name(werr.reason), werr.detail);
                        t->pos++;
                        continue;
                }
                if (upl_lake_missing_column(t->w, u->batch, &col) == 1) {
                        if (evolve(t, &col) < 0)
                                return;
                        r = upl_table_open(t);
                        if (r < 0) {
                                failed(t, r, u->lake.why);
                                return;
                        }
                        if (upl_lake_missing_column(t->w, u->batch, &col) == 1) {
                                snprintf(why, sizeof(why), "column %s: not writable", col.name);
                                reject_item(t, it, "schema-mismatch", why);
                                t->pos++;
                        }
                        continue;
                }
                cols = ice_writer_columns(t->w, &n_cols);
                why[0] = '\0';
                r = ice_floe_rows_from_batch(&u->rows, u->batch, it->received_us, cols, n_cols, why,
                                             sizeof(why));
                if (r == 0)
                        r = ice_writer_write(t->w, u->rows.values, u->rows.n_rows);
                if (r == -EINVAL) {
                        if (!why[0])
                                snprintf(why, sizeof(why), "%s", ice_writer_error(t->w));
                        reject_item(t, it, "schema-mismatch", why);
                        t->pos++;
                        continue;
                }
                if (r < 0) {
                        failed(t, r, ice_writer_error(t->w));
                        return;
                }
                t->pos++;
                budget -= it->len < budget ? it->len : budget;
        }
        if (t->pos == t->n_order)
                commit(t);
}

static void committed(struct upl_table *t, const struct ice_writer_result *res, double secs)
{
        struct upl *u = t->u;
        uint64_t batches = 0, rows = 0;

        for (size_t i = 0; i < t->n_order; i++) {
                struct upl_item *it = t->order[i];
                struct upl_tenant_stats *ts;

                if (it->state != UPL_ITEM_BUFFERED)
                        continue;
                batches++;
                rows += it->rows;
                ts = upl_tenant(u, it->identity);
                if (ts) {
                        ts->committed_batches++;
                        ts->committed_events += it->rows;
                }
                upl_ack(u, it->identity, it->epoch, it->seq, FLOE_ACK_OK, NULL);
        }
        if (batches == 0) { /* all left out */
                floe_free(t->order);
                t->order = NULL;
                t->n_order = t->pos = 0;
                release(t, &t->fl);
                t->phase = UPL_FLUSH_IDLE;
                t->attempt = 0;
                return;
        }
        t->st.commits++;
        t->st.batches += batches;
        t->st.rows += rows;
        t->st.bytes += res->bytes;
        t->st.files += res->files;
        t->st.conflicts += (uint64_t)res->retries;
        t->st.last_commit_us = upl_now_wall();
        if (res->snapshot_id)
                t->st.last_snapshot = res->snapshot_id;
        upl_hist_add(&t->st.commit_s, secs);
        upl_hist_add(&t->st.flush_s, (double)(upl_now_mono() - t->flush_mono) / 1e6);
        log_debug("%s.%s: committed %" PRIu64 " batches, %" PRIu64 " rows in %zu files "
                  "(snapshot %" PRId64 ", %.3f s)",
                  u->s.lake.ns, t->name, batches, rows, res->files, res->snapshot_id, secs);
        floe_free(t->order);
        t->order = NULL;
        t->n_order = t->pos = 0;
        release(t, &t->fl);
        t->phase = UPL_FLUSH_IDLE;
        t->attempt = 0;
        t->last_error[0] = '\0';
}

/* Some batches were committed by someone else meanwhile: acked as duplicates, left out, and
 * the flush is written again without them (the writer deleted its files). */
static void conflict(struct upl_table *t, struct upl_claim **claims, size_t n)
{
        struct upl *u = t->u;
        size_t dups = 0;

        for (size_t i = 0; i < n; i++) {
                struct upl_item *it = claims[i]->tag;

                if (!claims[i]->conflict)
                        continue;
                it->state = UPL_ITEM_DUPLICATE;
                dups++;
                upl_ack(u, it->identity, it->epoch, it->seq, FLOE_ACK_DUPLICATE, NULL);
        }
        t->st.duplicates += dups;
        t->st.rebuilds++;
        log_info("%s.%s: %zu batches of the flush were committed elsewhere meanwhile: "
                 "acknowledged as duplicates, the flush is written again without them",
                 u->s.lake.ns, t->name, dups);
        ice_writer_abort(t->w);
        t->pos = 0;
}

/* Another writer committed first: the flush's files are kept and committed again on the
 * refreshed table after commit.retry's wait, on a timer (the loop goes on meanwhile); past
 * commit.retry.num-retries the flush fails and is written again after a backoff. */
static void lost_race(struct upl_table *t)
{
        struct upl *u = t->u;
        struct ice_table *it = ice_writer_table(t->w);
        int64_t ms;

        t->rebases++;
        t->st.conflicts++;
        if (t->rebases > ice_table_retry_limit(it)) {
                failed(t, -ESTALE, ice_writer_error(t->w));
                return;
        }
        ms = ice_table_retry_delay_ms(it, t->rebases);
        log_info("%s.%s: commit conflict (attempt %d), committing again in %" PRId64 " ms: %s",
                 u->s.lake.ns, t->name, t->rebases, ms, ice_writer_error(t->w));
        t->phase = UPL_FLUSH_REBASE;
        t->retry = sd_event_source_disable_unref(t->retry);
        if (floe_event_add_timer(u->e, (uint64_t)ms * 1000, 1000, on_rebase, t, &t->retry) < 0)
                on_rebase(NULL, 0, t); /* no timer: at once */
}

static void commit(struct upl_table *t)
{
        struct upl *u = t->u;
        struct upl_ledger_commit lc = {0};
        struct ice_writer_result res = {0};
        struct upl_claim **claims;
        char nb[24];
        struct ice_kv summary[2] = {
                {(char *)"floe.uploader", (char *)u->s.client_id},
                {(char *)"floe.batches", nb},
        };
        struct ice_writer_commit c = {
                .summary = summary,
                .n_summary = ELEMENTSOF(summary),
                .txn_fn = upl_ledger_txn,
                .txn_ud = &lc,
                .conflict_returns = true,
        };
        size_t n = 0;
        uint64_t t0;
        int r;

        claims = floe_calloc(t->n_order + 1, sizeof(*claims));
        if (!claims) {
                failed(t, -ENOMEM, "out of memory");
                return;
        }
        for (size_t i = 0; i < t->n_order; i++)
                if (t->order[i]->state == UPL_ITEM_BUFFERED)
                        claims[n++] = &t->order[i]->claim;
        snprintf(nb, sizeof(nb), "%zu", n);
        if (n == 0) { /* every batch left out: nothing to commit */
                floe_free(claims);
                ice_writer_abort(t->w);
                committed(t, &res, 0);
                return;
        }
        r = upl_ledger_commit_init(&lc, u->ledger, claims, n, upl_now_wall() / 1000);
        if (r < 0) {
                floe_free(claims);
                failed(t, r, "out of memory");
                return;
        }
        t0 = upl_now_mono();
        r = ice_writer_commit(t->w, &c, &res);
        upl_ledger_commit_finish(&lc, r == 0, upl_now_mono());
        if (r == 0) {
                t->st.written_off += lc.written_off;
                if (lc.written_off)
                        log_warning("%s.%s: the ledger's bound gave up %" PRIu64 " seqs of old "
                                    "gaps (more than [ledger] max_ranges gaps in a stream)",
                                    u->s.lake.ns, t->name, lc.written_off);
                committed(t, &res, (double)(upl_now_mono() - t0) / 1e6);
        } else if (r == -EALREADY) {
                conflict(t, claims, n);
        } else if (r == -EAGAIN) {
                lost_race(t);
        } else {
                failed(t, r, lc.error[0] ? lc.error : ice_writer_error(t->w));
        }
        upl_ledger_commit_clear(&lc);
        floe_free(claims);
}

bool upl_flush_work(struct upl *u)
{
        bool busy = false;

        for (unsigned i = 0; i < UPL_TABLES; i++) {
                struct upl_table *t = &u->tables[i];

                if (t->phase == UPL_FLUSH_WRITING)
                        step(t);
                busy = busy || t->phase == UPL_FLUSH_WRITING;
        }
        return busy;
}
