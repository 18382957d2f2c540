/* SPDX-License-Identifier: Apache-2.0 */
/* floe-uploader's life cycle: configuration, the MQTT connection, acks, signals, the loop. */
#include "uploader.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "floe-daemon.h"
#include "floe-event.h"
#include "ice-writer.h"
#include "uploader-internal.h"

#define TICK          (100 * 1000)
#define METRICS_BYTES (1u << 20)
#define HTTP_TIMEOUT  (5 * UPL_SEC)
#define JOIN_GRACE    (2 * UPL_SEC) /* a maintenance run still going at exit: then abandoned */

uint64_t upl_now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * UPL_SEC + (uint64_t)ts.tv_nsec / 1000;
}

int64_t upl_now_wall(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void upl_ack(struct upl *u, const char *identity, uint64_t epoch, uint64_t seq,
             enum floe_ack_status status, const char *reason)
{
        struct floe_ack a = {.epoch = epoch, .seq = seq, .status = status};
        char topic[FLOE_IDENTITY_MAX + 32];
        uint8_t buf[FLOE_ACK_MAX];
        size_t len = 0;
        int r;

        if (reason)
                snprintf(a.reason, sizeof(a.reason), "%s", reason);
        snprintf(topic, sizeof(topic), "floe/v1/%s/ack", identity);
        r = floe_ack_encode(&a, buf, sizeof(buf), &len);
        r = r ?: floe_mqtt_publish(u->mqtt, topic, buf, len, 1, false, NULL, NULL);
        if (r < 0) { /* the agent resends after its ack timeout: a duplicate ack then */
                u->st.ack_failures++;
                log_ratelimit_errno(&u->rl_ack, LOG_NOTICE, r,
                                    "ack of %s %" PRIu64 "/%" PRIu64 " not sent", identity, epoch,
                                    seq);
                return;
        }
        u->st.acks[status]++;
        u->outstanding++;
}

struct upl_tenant_stats *upl_tenant(struct upl *u, const char *identity)
{
        size_t n = strcspn(identity, ".");
        struct upl_tenant_stats *t;

        if (n > FLOE_IDENTITY_PART_MAX)
                return NULL;
        for (size_t i = 0; i < u->n_tenants; i++)
                if (strncmp(u->tenants[i].tenant, identity, n) == 0 && !u->tenants[i].tenant[n])
                        return &u->tenants[i];
        if (u->n_tenants == UPL_TENANTS_MAX) {
                identity = "_other";
                n = strlen(identity);
                for (size_t i = 0; i < u->n_tenants; i++)
                        if (strcmp(u->tenants[i].tenant, identity) == 0)
                                return &u->tenants[i];
                t = &u->tenants[u->n_tenants - 1]; /* the last slot becomes "_other" */
                *t = (struct upl_tenant_stats){0};
        } else {
                t = &u->tenants[u->n_tenants++];
                *t = (struct upl_tenant_stats){0};
        }
        memcpy(t->tenant, identity, n);
        t->tenant[n] = '\0';
        return t;
}

void upl_count_reason(struct upl *u, const char *reason)
{
        size_t i;

        for (i = 0; i < u->st.n_reasons; i++)
                if (strcmp(u->st.rejected[i].reason, reason) == 0)
                        break;
        if (i == u->st.n_reasons) {
                if (u->st.n_reasons == UPL_REASONS_MAX)
                        i = UPL_REASONS_MAX - 1, reason = "other";
                else
                        u->st.n_reasons++;
                snprintf(u->st.rejected[i].reason, sizeof(u->st.rejected[i].reason), "%s", reason);
        }
        u->st.rejected[i].n++;
}

int upl_lake_ready(struct upl *u)
{
        int r;

        r = upl_lake_open(&u->lake, &u->s.lake);
        if (r == 0 && !u->ledger_ready) {
                r = upl_ledger_setup(u->ledger, u->lake.catalog);
                if (r < 0)
                        snprintf(u->lake.why, sizeof(u->lake.why), "ledger: %s",
                                 lake_catalog_error(u->lake.catalog));
                u->ledger_ready = r == 0;
        }
        return r;
}

/* -- MQTT ------------------------------------------------------------------------------------ */

static void on_connect(void *ud, int rc)
{
        struct upl *u = ud;
        int r;

        if (rc != 0) {
                log_warning("mqtt %s: connection refused: %s (%d)", floe_mqtt_peer(u->mqtt),
                            mosquitto_reason_string(rc), rc);
                return;
        }
        log_info("mqtt %s: connected", floe_mqtt_peer(u->mqtt));
        u->outstanding = 0; /* libmosquitto resends what it had in flight itself */
        r = floe_mqtt_subscribe(u->mqtt, u->filter, 1);
        if (r < 0)
                log_error_errno(r, "cannot subscribe to %s", u->filter);
}

static void on_subscribe(void *ud, int mid, int granted)
{
        struct upl *u = ud;

        (void)mid;
        if (granted >= 0x80) {
                log_error("the broker refused the subscription to %s (reason %d)", u->filter,
                          granted);
                return;
        }
        u->subscribed = true;
        log_info("subscribed to %s", u->filter);
}

static void on_disconnect(void *ud, int rc)
{
        struct upl *u = ud;

        u->subscribed = false;
        log_warning("mqtt %s: connection lost (%s)", floe_mqtt_peer(u->mqtt),
                    rc ? mosquitto_strerror(rc) : "closed");
}

static void on_connect_failed(void *ud, int rc)
{
        struct upl *u = ud;

        log_ratelimit(&u->rl_ack, LOG_WARNING, "mqtt %s: cannot connect: %s",
                      floe_mqtt_peer(u->mqtt),
                      rc < 0x80 ? mosquitto_strerror(rc) : mosquitto_reason_string(rc));
}

static void on_publish(void *ud, int mid, int reason)
{
        struct upl *u = ud;

        (void)mid;
        if (reason >= 0x80)
                log_ratelimit(&u->rl_ack, LOG_WARNING,
                              "the broker refused an ack (reason %d): check the service ACL "
                              "(write floe/v1/+/ack)",
                              reason);
        if (u->outstanding > 0)
                u->outstanding--;
}

/* -- the loop ---------------------------------------------------------------------------------- */

static bool drained(struct upl *u)
{
        return upl_flush_drained(u) && !upl_maint_busy(u->maint) &&
               (u->outstanding == 0 || !floe_mqtt_connected(u->mqtt));
}

static void maybe_exit(struct upl *u)
{
        if (u->stopping && drained(u))
                sd_event_exit(u->e, 0);
}

/* -- maintenance ------------------------------------------------------------------------------ */

static void maint_logged(struct upl *u, const char *table, const struct upl_maint_result *res)
{
        char a[32], b[32];

        if (res->commits)
                log_info("%s.%s: compacted %zu files of %zu partitions (%s) into %zu (%s) in %zu "
                         "commits, %.1f s",
                         u->s.lake.ns, table, res->files_in, res->partitions,
                         floe_format_size(res->bytes_in, a, sizeof(a)), res->files_out,
                         floe_format_size(res->bytes_out, b, sizeof(b)), res->commits,
                         res->seconds[UPL_MAINT_COMPACT]);
        if (res->tier_files && res->tier_partitions)
                log_info("%s.%s: moved %zu files of %zu partitions (%s) to colder tiers",
                         u->s.lake.ns, table, res->tier_files, res->tier_partitions,
                         floe_format_size(res->tier_bytes, a, sizeof(a)));
        else if (res->tier_files)
                log_info("%s.%s: gave %zu objects a colder storage class", u->s.lake.ns, table,
                         res->tier_files);
        if (res->lifecycle_changed)
                log_info("%s.%s: installed the bucket lifecycle rule of [tier]", u->s.lake.ns,
                         table);
        if (res->snapshots_expired || res->deleted[UPL_MAINT_EXPIRE])
                log_info("%s.%s: expired %zu snapshots, deleted %zu files only they used",
                         u->s.lake.ns, table, res->snapshots_expired,
                         res->deleted[UPL_MAINT_EXPIRE]);
        if (res->deleted[UPL_MAINT_METADATA])
                log_info("%s.%s: deleted %zu metadata files beyond the metadata-log", u->s.lake.ns,
                         table, res->deleted[UPL_MAINT_METADATA]);
        if (res->deleted[UPL_MAINT_ORPHANS])
                log_info("%s.%s: deleted %zu orphan files", u->s.lake.ns, table,
                         res->deleted[UPL_MAINT_ORPHANS]);
        if (res->gc_disabled)
                log_ratelimit(&u->rl_maint, LOG_NOTICE,
                              "%s.%s: gc.enabled is false: snapshots are not expired and no file "
                              "is deleted",
                              u->s.lake.ns, table);
        if (res->stopped)
                log_info(
                        "%s.%s: maintenance stopped at a safe point (stopping): the rest waits for "
                        "the next run",
                        u->s.lake.ns, table);
}

static void on_maint(void *ud, const struct upl_maint_result *res)
{
        struct upl *u = ud;
        struct upl_maint_stats *st;
        const char *table;

        if (!res) { /* the run is over */
                u->maint_runs++;
                log_debug("maintenance run %" PRIu64 " over after %.1f s", u->maint_runs,
                          (double)(upl_now_mono() - u->maint_last_mono) / 1e6);
                maybe_exit(u);
                return;
        }
        st = &u->mst[res->table];
        table = u->tables[res->table].name;
        for (int k = 0; k < _UPL_MAINT_TASKS; k++) {
                if (!res->ran[k])
                        continue;
                st->runs[k]++;
                st->last_us[k] = upl_now_wall();
                st->last_s[k] = res->seconds[k];
                st->deleted[k] += res->deleted[k];
                st->not_deleted[k] += res->not_deleted[k];
                if (res->error[k] < 0) {
                        st->failures[k]++;
                        log_ratelimit_errno(&u->rl_maint, LOG_WARNING, res->error[k],
                                            "%s.%s: maintenance: %s failed: %s (tried again at "
                                            "the next run)",
                                            u->s.lake.ns, table,
                                            upl_maint_task_name((enum upl_maint_task)k),
                                            res->why[k]);
                } else if (res->not_deleted[k]) {
                        log_ratelimit(&u->rl_maint, LOG_WARNING,
                                      "%s.%s: maintenance: %s: %zu files not deleted (%s)",
                                      u->s.lake.ns, table,
                                      upl_maint_task_name((enum upl_maint_task)k),
                                      res->not_deleted[k], res->why[k]);
                }
        }
        st->commits += res->commits;
        st->files_in += res->files_in;
        st->files_out += res->files_out;
        st->bytes_in += res->bytes_in;
        st->bytes_out += res->bytes_out;
        st->rows += res->rows;
        st->retries += (uint64_t)res->retries;
        st->skipped += res->skipped;
        st->expired += res->snapshots_expired;
        st->tier_files += res->tier_files;
        st->tier_bytes += res->tier_bytes;
        st->since_compaction = res->commits ? 0 : res->since_compaction;
        maint_logged(u, table, res);
}

/* Starts a maintenance run when one is due and none is under way. */
static void maint_check(struct upl *u, uint64_t now)
{
        struct upl_maint_request req = {.set = u->s.maint};
        int r;

        if (!u->s.maint.enabled || u->stopping || upl_maint_busy(u->maint) ||
            now - u->maint_last_mono < u->s.maint.interval_us)
                return;
        req.orphans = u->orphans_last_mono == 0 ||
                      now - u->orphans_last_mono >= u->s.maint.orphan_interval_us;
        snprintf(req.uploader, sizeof(req.uploader), "%s", u->s.client_id);
        u->maint_last_mono = now;
        r = upl_maint_post(u->maint, &req);
        if (r < 0) {
                log_ratelimit_errno(&u->rl_maint, LOG_WARNING, r,
                                    "maintenance not started (tried again in [maintenance] "
                                    "interval)");
                return;
        }
        if (req.orphans)
                u->orphans_last_mono = now;
        log_debug("maintenance run %" PRIu64 " started%s", u->maint_runs + 1,
                  req.orphans ? " (with the orphan pass)" : "");
}

static void update_status(struct upl *u)
{
        char status[FLOE_NOTIFY_STATUS_MAX], fill[32];
        uint64_t bytes = 0;

        for (unsigned i = 0; i < UPL_TABLES; i++)
                bytes += upl_buffer_fill(&u->tables[i]);
        snprintf(status, sizeof(status),
                 "%s; %.0f events/s; buffered %s (%.0f%% of max_memory); %" PRIu64
                 " batches committed; %" PRIu64 " duplicates; %" PRIu64 " deferred",
                 !floe_mqtt_connected(u->mqtt) ? "disconnected"
                 : u->subscribed               ? "connected"
                                               : "subscribing",
                 u->st.events_per_s, floe_format_size(bytes, fill, sizeof(fill)),
                 100.0 * (double)u->mem / (double)u->s.max_memory,
                 u->tables[0].st.batches + u->tables[1].st.batches,
                 u->st.duplicates + u->tables[0].st.duplicates + u->tables[1].st.duplicates,
                 u->st.deferred);
        if (strcmp(status, u->last_status) != 0) {
                floe_notify_status("%s", status);
                memcpy(u->last_status, status, sizeof(status));
        }
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
        struct upl *u = ud;
        uint64_t now = upl_now_mono();

        (void)s;
        (void)usec;
        upl_flush_check(u, now);
        if (now - u->last_status_mono >= UPL_SEC) {
                upl_update_rate(u, now);
                update_status(u);
                u->last_status_mono = now;
        }
        if (now - u->last_expire_mono >= 60 * UPL_SEC) {
                upl_ledger_expire(u->ledger, now);
                u->last_expire_mono = now;
        }
        maint_check(u, now);
        maybe_exit(u);
        return 0;
}

static int on_work(sd_event_source *s, void *ud)
{
        struct upl *u = ud;

        if (!upl_flush_work(u))
                sd_event_source_set_enabled(s, SD_EVENT_OFF);
        maybe_exit(u);
        return 0;
}

static int on_stop_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct upl *u = ud;
        size_t batches = 0;

        (void)s;
        (void)usec;
        for (unsigned i = 0; i < UPL_TABLES; i++)
                batches += u->tables[i].cur.n_items + u->tables[i].fl.n_items;
        log_warning("stopping after [buffer] stop_timeout with %zu batches not committed (not "
                    "acknowledged: their agents send them again)%s",
                    batches,
                    upl_maint_busy(u->maint) ? "; maintenance still running: abandoned" : "");
        return sd_event_exit(u->e, 0);
}

static int on_terminate(void *ud)
{
        struct upl *u = ud;

        if (u->stopping)
                return 0; /* a second SIGTERM: now */
        u->stopping = true;
        floe_notify_stopping();
        log_info("stopping: flushing what is buffered (at most %.0f s)%s",
                 (double)u->s.stop_timeout_us / 1e6,
                 upl_maint_busy(u->maint) ? "; maintenance stops at its next safe point" : "");
        upl_maint_stop(u->maint);
        upl_flush_retry_now(u);
        upl_flush_check(u, upl_now_mono());
        if (drained(u))
                return 0;
        if (floe_event_add_timer(u->e, u->s.stop_timeout_us, 10000, on_stop_timeout, u,
                                 &u->stop_timer) < 0)
                return 0;
        return FLOE_EVENT_TERMINATE_DEFER;
}

/* The certificate and key the MQTT connection borrows live in u->tls[]: a changed pair goes to
 * the other slot, which becomes current once the connection took it. */
static void apply_tls(struct upl *u, const struct upl_settings *s)
{
        struct upl_tls_files *f = &u->tls[u->tls_slot ^ 1];
        int r;

        if (strcmp(s->cert_file, u->tls[u->tls_slot].cert) == 0 &&
            strcmp(s->key_file, u->tls[u->tls_slot].key) == 0)
                return;
        snprintf(f->cert, sizeof(f->cert), "%s", s->cert_file);
        snprintf(f->key, sizeof(f->key), "%s", s->key_file);
        r = floe_mqtt_set_tls_files(u->mqtt, f->cert, f->key);
        if (r < 0)
                log_error_errno(r, "reload: certificate %s, key %s: keeping the old ones", f->cert,
                                f->key);
        else
                u->tls_slot ^= 1;
}

static bool same_str(const char *a, const char *b)
{
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool same_tiers(const struct ice_tier_conf *a, const struct ice_tier_conf *b)
{
        if (a->n_tiers != b->n_tiers || a->s3_mode != b->s3_mode)
                return false;
        for (size_t i = 1; i < a->n_tiers && i < ICE_TIER_MAX; i++)
                if (a->age_ms[i] != b->age_ms[i] || !same_str(a->root[i], b->root[i]) ||
                    !same_str(a->storage_class[i], b->storage_class[i]))
                        return false;
        return true;
}

static int on_reload(void *ud)
{
        struct upl *u = ud;
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct upl_settings s;
        int r;

        floe_notify_reloading();
        r = upl_config_load(u->config_path, &cfg, &s, &err);
        if (r < 0) {
                floe_daemon_config_error(r, &err);
                log_error("reload: keeping the running configuration");
                floe_notify_ready("reload failed; running with the previous configuration");
                return 0;
        }
        if (strcmp(s.host, u->s.host) != 0 || s.port != u->s.port ||
            strcmp(s.client_id, u->s.client_id) != 0 ||
            strcmp(s.share_group, u->s.share_group) != 0 || strcmp(s.ca_file, u->s.ca_file) != 0 ||
            strcmp(s.lake.warehouse, u->s.lake.warehouse) != 0 ||
            strcmp(s.lake.catalog, u->s.lake.catalog) != 0 ||
            strcmp(s.lake.ns, u->s.lake.ns) != 0 || s.metrics_port != u->s.metrics_port ||
            s.session_expiry_us != u->s.session_expiry_us || !same_tiers(&s.tier, &u->s.tier))
                log_warning("reload: [broker] host, port, ca_file, client_id, share_group, "
                            "session_expiry, [lake], [tier] and [metrics] change at restart "
                            "only");
        apply_tls(u, &s);
        u->s.limits = s.limits;
        u->s.max_memory = s.max_memory;
        u->s.retry_min_us = s.retry_min_us;
        u->s.retry_max_us = s.retry_max_us;
        u->s.stop_timeout_us = s.stop_timeout_us;
        u->s.step_bytes = s.step_bytes;
        u->s.max_ranges = s.max_ranges;
        u->s.cache_idle_us = s.cache_idle_us;
        u->s.maint = s.maint; /* from the next run on */
        upl_ledger_set_limits(u->ledger, (uint32_t)s.max_ranges, s.cache_idle_us);
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                u->s.table[i] = s.table[i];
                u->tables[i].set = s.table[i];
                u->tables[i].ensured = false; /* columns added now, if any are new */
        }
        floe_config_free(cfg);
        {
                struct floe_wire_decoder *d = NULL;

                if (floe_wire_decoder_new(&u->s.limits, &d) == 0) {
                        floe_wire_decoder_free(u->dec);
                        u->dec = d;
                }
        }
        log_info("reload: buffers, limits and ledger applied, maintenance from its next run; "
                 "reconnecting with the certificate on disk");
        floe_mqtt_reconnect(u->mqtt);
        floe_notify_ready("reloaded");
        return 0;
}

/* -- set-up ---------------------------------------------------------------------------------- */

struct upl *upl_free(struct upl *u)
{
        if (!u)
                return NULL;
        u->maint = upl_maint_free(u->maint, JOIN_GRACE);
        u->tick = sd_event_source_disable_unref(u->tick);
        u->work = sd_event_source_disable_unref(u->work);
        u->stop_timer = sd_event_source_disable_unref(u->stop_timer);
        for (unsigned i = 0; i < UPL_TABLES; i++)
                upl_table_done(&u->tables[i]);
        upl_index_clear(&u->index);
        u->http = upl_http_free(u->http);
        u->mqtt = floe_mqtt_free(u->mqtt);
        upl_lake_close(&u->lake);
        u->ledger = upl_ledger_free(u->ledger);
        ice_floe_rows_clear(&u->rows);
        floe_batch_free(u->batch);
        floe_wire_decoder_free(u->dec);
        floe_metrics_free(u->metrics);
        floe_free(u->tenants);
        sd_event_unref(u->e);
        floe_config_free(u->cfg);
        floe_free(u);
        return NULL;
}

static int setup_mqtt(struct upl *u)
{
        static const struct floe_mqtt_callbacks cb = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = upl_on_message,
                .on_publish = on_publish,
                .on_subscribe = on_subscribe,
                .on_connect_failed = on_connect_failed,
        };
        struct floe_mqtt_opts o;
        int r;

        if (snprintf(u->filter, sizeof(u->filter), "$share/%s/floe/v1/+/batch", u->s.share_group) >=
            (int)sizeof(u->filter))
                return log_error_errno(-ENAMETOOLONG, "share_group too long");
        snprintf(u->tls[0].cert, sizeof(u->tls[0].cert), "%s", u->s.cert_file);
        snprintf(u->tls[0].key, sizeof(u->tls[0].key), "%s", u->s.key_file);
        u->tls_slot = 0;
        o = (struct floe_mqtt_opts){
                .name = "broker",
                .host = u->s.host,
                .port = (int)u->s.port,
                .client_id = u->s.client_id,
                .keepalive_s = (int)(u->s.keepalive_us / UPL_SEC),
                /* queued for us while we restart: the broker keeps the session */
                .persistent = u->s.session_expiry_us > 0,
                .session_expiry_s = (uint32_t)(u->s.session_expiry_us / UPL_SEC),
                .ca_file = u->s.ca_file,
                .cert_file = u->tls[0].cert,
                .key_file = u->tls[0].key,
                .backoff_min_us = u->s.backoff_min_us,
                .backoff_max_us = u->s.backoff_max_us,
                .receive_max = (uint16_t)u->s.inflight,
                .send_max = (uint16_t)u->s.inflight,
        };
        r = floe_mqtt_new(u->e, &o, &cb, u, &u->mqtt);
        if (r < 0)
                return log_error_errno(r, "broker %s:%d, TLS files %s, %s, %s", o.host, o.port,
                                       o.ca_file, o.cert_file, o.key_file);
        return 0;
}

static int setup(struct upl *u)
{
        int r;

        r = floe_event_new(&u->e);
        if (r < 0)
                return log_error_errno(r, "event loop");
        r = floe_wire_decoder_new(&u->s.limits, &u->dec);
        r = r ?: floe_batch_new(FLOE_KIND_EVENTS, &u->s.limits, &u->batch);
        r = r ?: floe_metrics_new(METRICS_BYTES, &u->metrics);
        r = r
                    ?: upl_ledger_new(u->s.lake.catalog_name, (uint32_t)u->s.max_ranges,
                                      u->s.cache_idle_us, &u->ledger);
        r = r ?: upl_index_init(&u->index);
        if (r == 0 && !(u->tenants = floe_calloc(UPL_TENANTS_MAX, sizeof(*u->tenants))))
                r = -ENOMEM;
        if (r < 0)
                return log_error_errno(r, "out of memory");
        for (unsigned i = 0; i < UPL_TABLES; i++)
                upl_table_init(&u->tables[i], u, i == 0 ? FLOE_KIND_EVENTS : FLOE_KIND_AGGREGATES);
        r = sd_event_add_defer(u->e, &u->work, on_work, u);
        if (r >= 0)
                r = sd_event_source_set_enabled(u->work, SD_EVENT_OFF);
        if (r < 0)
                return log_error_errno(r, "event loop");
        /* the lake configuration it borrows stays as it is until the exit */
        r = upl_maint_new(u->e, &u->s.lake, &u->s.tier, on_maint, u, &u->maint);
        if (r < 0)
                return log_error_errno(r, "maintenance");
        r = setup_mqtt(u);
        if (r < 0)
                return r;
        if (u->s.metrics_enabled) {
                r = upl_http_new(u->e, u->s.metrics_host, u->s.metrics_port, HTTP_TIMEOUT,
                                 upl_metrics_render, u, &u->http);
                if (r < 0)
                        return log_error_errno(r, "[metrics] listen %s:%d", u->s.metrics_host,
                                               u->s.metrics_port);
        }
        /* the lake now if it is there; a flush tries again otherwise */
        for (unsigned i = 0; i < UPL_TABLES; i++) {
                r = upl_table_open(&u->tables[i]);
                if (r < 0) {
                        log_warning_errno(r,
                                          "the lake is not ready (%s): buffering until it "
                                          "is",
                                          u->lake.why);
                        break;
                }
        }
        return 0;
}

int upl_new(const char *config_path, struct upl **ret)
{
        struct floe_config_error err = {0};
        struct upl *u = floe_calloc(1, sizeof(*u));
        int r;

        if (!u)
                return log_error_errno(-ENOMEM, "out of memory");
        u->config_path = config_path;
        u->rl_reject = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * UPL_SEC, 20);
        u->rl_defer = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * UPL_SEC, 5);
        u->rl_flush = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * UPL_SEC, 10);
        u->rl_ack = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * UPL_SEC, 10);
        u->rl_maint = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(60 * UPL_SEC, 10);
        r = upl_config_load(config_path, &u->cfg, &u->s, &err);
        if (r < 0)
                r = floe_daemon_config_error(r, &err);
        else
                r = setup(u);
        if (r < 0) {
                upl_free(u);
                return r;
        }
        u->start_us = upl_now_mono();
        u->maint_last_mono = u->start_us; /* the first run after one interval */
        *ret = u;
        return 0;
}

int upl_run(struct upl *u)
{
        const struct floe_event_handlers handlers = {
                .on_terminate = on_terminate,
                .on_reload = on_reload,
                .userdata = u,
        };
        bool wd = false;
        int r;

        r = floe_event_install_signals(u->e, &handlers);
        r = r ?: floe_event_enable_watchdog(u->e, &wd);
        r = r ?: floe_event_add_periodic(u->e, TICK, 10000, on_tick, u, &u->tick);
        if (r < 0)
                return log_error_errno(r, "event loop");
        floe_mqtt_start(u->mqtt);
        floe_notify_ready("connecting");
        log_info("floe-uploader %s running: broker %s:%" PRId64 " (%s), warehouse %s, metrics "
                 "%s:%d",
                 FLOE_VERSION, u->s.host, u->s.port, u->filter, u->s.lake.warehouse,
                 u->s.metrics_enabled ? u->s.metrics_host : "off",
                 u->s.metrics_enabled ? u->s.metrics_port : 0);
        r = sd_event_loop(u->e);
        floe_notify_stopping();
        if (upl_maint_busy(u->maint))
                log_notice("maintenance still running at exit: waiting %.0f s for its next safe "
                           "point, then leaving it",
                           (double)JOIN_GRACE / 1e6);
        u->maint = upl_maint_free(u->maint, JOIN_GRACE);
        floe_mqtt_stop(u->mqtt);
        log_info("stopped: %" PRIu64 " batches taken, %" PRIu64 " + %" PRIu64 " committed, %" PRIu64
                 " duplicates, %" PRIu64 " deferred",
                 u->st.batches, u->tables[0].st.batches, u->tables[1].st.batches,
                 u->st.duplicates + u->tables[0].st.duplicates + u->tables[1].st.duplicates,
                 u->st.deferred);
        return r < 0 ? r : 0;
}
