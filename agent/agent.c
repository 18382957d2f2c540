/* SPDX-License-Identifier: Apache-2.0 */
#include "agent.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "board.h"
#include "enroll-renew.h"
#include "floe-alloc.h"
#include "floe-event.h"
#include "floe-log.h"
#include "floe-metrics.h"
#include "floe-wire.h"
#include "floe-mqtt.h"
#include "outbox.h"
#include "parse.h"
#include "pipeline.h"
#include "ring.h"
#include "uplink.h"
#include "window.h"

#define TOPICS_MAX 16

struct agent {
        struct floe_config *cfg;
        struct agent_settings s;
        char config_path[4096];
        sd_event *e;
        const struct board_ops *board;
        void *board_state;
        struct agent_parser *parser;
        struct agent_ring *ring;
        struct agent_window *win;
        struct agent_outbox *ob;
        struct agent_pipeline *pipe;
        struct agent_uplink *uplink;
        struct agent_renew *renew; /* [enroll]: enrollment and renewal */
        struct floe_mqtt *local;
        struct floe_metrics *metrics;
        sd_event_source *tick;
        sd_event_source *poll;
        sd_event_source *metrics_timer;
        sd_event_source *sync_timer;
        int64_t now;
        int64_t cert_not_after_us; /* wall clock */
        bool cert_days_known;
        uint64_t payloads;
        uint64_t payload_rejects[AGENT_PARSE_REASON_MAX];
        uint64_t board_readings;
        struct floe_ratelimit rl;
        uint32_t max_record; /* the outbox's largest record: the batch bound */
        char last_status[FLOE_NOTIFY_STATUS_MAX];
        char topics[TOPICS_MAX][256];
        size_t ntopics;
};

static int64_t wall_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int agent_load_config(const char *path, struct floe_config **ret_cfg,
                      struct agent_settings *ret_settings)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        char msg[600];
        int r;

        r = floe_config_load_daemon(path, &cfg, &err);
        if (r == 0)
                r = agent_settings_load(cfg, ret_settings, &err);
        if (r < 0) {
                log_error("%s", floe_config_error_format(&err, msg, sizeof(msg)));
                floe_config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}

/* ---- ingest ---- */

static int on_reading(void *ud, const struct agent_reading *r)
{
        struct agent *a = ud;

        return agent_pipeline_accept(a->pipe, r, a->now);
}

/* A payload's readings at once: one ring record per sensor (docs/ring.md §3). */
static int on_readings(void *ud, const struct agent_reading *r, size_t n, size_t *ret_taken)
{
        struct agent *a = ud;

        return agent_pipeline_accept_many(a->pipe, r, n, a->now, ret_taken);
}

static void local_connect(void *ud, int rc)
{
        struct agent *a = ud;

        if (rc != 0) {
                log_warning("mqtt %s: connection refused: %s (%d)", floe_mqtt_peer(a->local),
                            mosquitto_reason_string(rc), rc);
                return;
        }
        log_info("mqtt %s: connected", floe_mqtt_peer(a->local));
        for (size_t i = 0; i < a->ntopics; i++)
                if (floe_mqtt_subscribe(a->local, a->topics[i], 1) < 0)
                        log_error("local: cannot subscribe to %s", a->topics[i]);
}

static void local_disconnect(void *ud, int rc)
{
        struct agent *a = ud;

        log_warning("mqtt %s: connection lost (%s)", floe_mqtt_peer(a->local),
                    rc ? mosquitto_strerror(rc) : "closed");
}

static void local_message(void *ud, const struct mosquitto_message *m, const mosquitto_property *p)
{
        struct agent *a = ud;
        struct agent_parse_error err = {0};
        int r;

        (void)p;
        a->now = wall_us();
        r = agent_parse_payload_many(a->parser, m->topic, m->payload, (size_t)m->payloadlen,
                                     on_readings, a, &err);
        if (r >= 0) {
                a->payloads++;
                return;
        }
        a->payload_rejects[err.reason]++;
        log_ratelimit(&a->rl, LOG_WARNING, "local: payload on %s refused: %s: %s", m->topic,
                      agent_parse_reason_name(err.reason), err.detail);
}

static int board_poll(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent *a = ud;
        int r;

        (void)s;
        (void)usec;
        a->now = wall_us();
        r = a->board->poll(a->board_state, a->now, on_reading, a);
        if (r < 0 && r != -ENOSPC)
                log_ratelimit(&a->rl, LOG_WARNING, "board %s: poll: %s", a->board->name,
                              strerror(-r));
        return 0;
}

/* ---- status, metrics ---- */

/* Days until the device certificate expires, now: it counts down while the agent runs. */
static double cert_days(const struct agent *a)
{
        return (double)(a->cert_not_after_us - wall_us()) / 86400e6;
}

static int status_json(void *ud, char *buf, size_t size)
{
        struct agent *a = ud;
        struct agent_outbox_stats os;
        struct agent_uplink_stats us;
        char days[32] = "null";
        int n, m = 0;

        agent_outbox_stats(a->ob, &os);
        agent_uplink_stats(a->uplink, &us);
        if (a->cert_days_known)
                snprintf(days, sizeof(days), "%.1f", cert_days(a));
        n = snprintf(buf, size,
                     "{\"identity\":\"%s\",\"time_us\":%" PRId64 ",\"queue_batches\":%" PRIu64
                     ",\"queue_bytes\":%" PRIu64 ",\"dropped_batches\":%" PRIu64
                     ",\"dropped_events\":%" PRIu64 ",\"rejected_batches\":%" PRIu64
                     ",\"last_ack_us\":%" PRId64 ",\"cert_days_left\":%s",
                     a->s.identity, wall_us(), os.batches, os.bytes, os.dropped_batches,
                     os.dropped_events, os.rejected_batches, us.last_ack_us, days);
        if (n > 0 && (size_t)n < size && a->renew)
                m = agent_renew_status_json(a->renew, buf + n, size - (size_t)n);
        if (n <= 0 || m < 0 || (size_t)(n + m) + 1 >= size)
                return -ENOSPC;
        buf[n + m] = '}';
        buf[n + m + 1] = '\0';
        return n + m + 1;
}

static void family(struct floe_metrics *m, const char *name, const char *type, const char *help,
                   uint64_t v)
{
        floe_metrics_family(m, name, type, help);
        floe_metrics_u64(m, name, NULL, v);
}

static void write_metrics(struct agent *a)
{
        struct agent_pipeline_stats ps;
        struct agent_outbox_stats os;
        struct agent_uplink_stats us;
        struct agent_window_stats ws;
        struct agent_ring_stats rs;
        struct floe_metrics *m = a->metrics;
        int r;

        agent_pipeline_stats(a->pipe, &ps);
        agent_outbox_stats(a->ob, &os);
        agent_uplink_stats(a->uplink, &us);
        agent_window_stats(a->win, &ws);
        agent_ring_stats(a->ring, &rs);
        floe_metrics_reset(m);
        floe_metrics_family(m, "floe_agent_info", "gauge", "Identity of this agent.");
        floe_metrics_u64(
                m, "floe_agent_info",
                (const char *const[]){"identity", a->s.identity, "board", a->board->name, NULL}, 1);
        family(m, "floe_agent_readings_accepted_total", "counter", "Readings written to the ring.",
               ps.accepted);
        family(m, "floe_agent_ring_full_total", "counter",
               "Readings refused because the ring was full.", ps.ring_full);
        family(m, "floe_agent_payloads_total", "counter", "Local payloads accepted.", a->payloads);
        floe_metrics_family(m, "floe_agent_payloads_rejected_total", "counter",
                            "Local payloads refused, by reason.");
        for (int i = 1; i < AGENT_PARSE_REASON_MAX; i++)
                floe_metrics_u64(m, "floe_agent_payloads_rejected_total",
                                 (const char *const[]){"reason", agent_parse_reason_name(i), NULL},
                                 a->payload_rejects[i]);
        floe_metrics_family(m, "floe_agent_batches_total", "counter", "Batches put in the outbox.");
        floe_metrics_u64(m, "floe_agent_batches_total",
                         (const char *const[]){"kind", "events", NULL}, ps.event_batches);
        floe_metrics_u64(m, "floe_agent_batches_total",
                         (const char *const[]){"kind", "aggregates", NULL}, ps.aggregate_batches);
        family(m, "floe_agent_batches_split_total", "counter",
               "Event batches that encoded larger than an outbox record and were split.",
               ps.split_batches);
        family(m, "floe_agent_batch_errors_total", "counter",
               "Batches that could not be encoded (logged).", ps.encode_errors);
        family(m, "floe_agent_readings_unbatched_total", "counter",
               "Readings the ring or an event batch refused (logged).", ps.rejected);
        family(m, "floe_agent_ring_used_bytes", "gauge", "Ring bytes not yet consumed.", rs.used);
        family(m, "floe_agent_ring_capacity_bytes", "gauge", "Ring capacity.", rs.capacity);
        family(m, "floe_agent_late_total", "counter", "Readings too late for their window.",
               ws.late);
        family(m, "floe_agent_implausible_total", "counter",
               "Readings with an implausible timestamp.", ws.implausible);
        family(m, "floe_agent_outbox_batches", "gauge", "Batches waiting for an ack.", os.batches);
        family(m, "floe_agent_outbox_events", "gauge", "Events waiting for an ack.", os.events);
        family(m, "floe_agent_outbox_bytes", "gauge", "Outbox bytes on disk.", os.bytes);
        family(m, "floe_agent_outbox_dropped_batches_total", "counter",
               "Batches dropped by the drop-oldest policy.", os.dropped_batches);
        family(m, "floe_agent_outbox_dropped_events_total", "counter",
               "Events dropped by the drop-oldest policy.", os.dropped_events);
        family(m, "floe_agent_outbox_rejected_batches_total", "counter",
               "Batches refused by the reject-new policy.", os.rejected_batches);
        family(m, "floe_agent_outbox_rejected_events_total", "counter",
               "Events refused by the reject-new policy.", os.rejected_events);
        family(m, "floe_agent_uplink_connected", "gauge", "1 when connected to the broker.",
               us.connected);
        family(m, "floe_agent_uplink_sent_total", "counter", "Batches sent.", us.sent);
        family(m, "floe_agent_uplink_resent_total", "counter", "Batches sent again.", us.resent);
        family(m, "floe_agent_uplink_bytes_total", "counter", "Batch bytes sent.", us.bytes_sent);
        family(m, "floe_agent_uplink_acked_total", "counter", "Acks received.", us.acked);
        family(m, "floe_agent_uplink_duplicates_total", "counter", "Acks saying duplicate.",
               us.duplicates);
        family(m, "floe_agent_uplink_rejected_total", "counter", "Batches the uploader rejected.",
               us.rejected);
        family(m, "floe_agent_uplink_refused_total", "counter",
               "Publishes the broker refused (MQTT v5 reason >= 128).", us.puback_errors);
        floe_metrics_family(m, "floe_agent_last_ack_timestamp_seconds", "gauge",
                            "When the last ack arrived.");
        floe_metrics_double(m, "floe_agent_last_ack_timestamp_seconds", NULL,
                            (double)us.last_ack_us / 1e6);
        if (a->cert_days_known) {
                floe_metrics_family(m, "floe_agent_certificate_days_left", "gauge",
                                    "Days until the device certificate expires.");
                floe_metrics_double(m, "floe_agent_certificate_days_left", NULL, cert_days(a));
        }
        if (a->renew)
                agent_renew_metrics(a->renew, m);
        r = floe_metrics_write_file(m, a->s.metrics_file);
        if (r < 0)
                log_ratelimit(&a->rl, LOG_WARNING, "metrics: %s: %s", a->s.metrics_file,
                              strerror(-r));
}

static int on_metrics(sd_event_source *s, uint64_t usec, void *ud)
{
        (void)s;
        (void)usec;
        write_metrics(ud);
        return 0;
}

static int on_sync(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent *a = ud;

        (void)s;
        (void)usec;
        agent_ring_sync(a->ring);
        return 0;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent *a = ud;
        struct agent_outbox_stats os;
        struct agent_uplink_stats us;
        char status[sizeof(a->last_status)];
        int r;

        (void)s;
        (void)usec;
        a->now = wall_us();
        r = agent_pipeline_tick(a->pipe, a->now, mono_us());
        if (r < 0)
                log_ratelimit(&a->rl, LOG_ERR, "pipeline: %s", strerror(-r));
        a->board->watchdog_kick(a->board_state);
        agent_outbox_stats(a->ob, &os);
        agent_uplink_stats(a->uplink, &us);
        a->board->led_set(a->board_state, us.connected ? BOARD_LED_OK : BOARD_LED_ERROR);
        /* tell systemd only what changed: a tick is 10 times a second */
        snprintf(status, sizeof(status), "%s, outbox %" PRIu64 " batches, dropped %" PRIu64,
                 us.connected ? "connected" : "disconnected", os.batches,
                 os.dropped_batches + os.rejected_batches);
        if (strcmp(status, a->last_status) != 0) {
                floe_notify_status("%s", status);
                memcpy(a->last_status, status, sizeof(status));
        }
        return 0;
}

static void refresh_cert(struct agent *a)
{
        char cn[sizeof(a->s.identity)];
        double days;

        a->cert_days_known = a->s.uplink_enabled && *a->s.cert_file &&
                             agent_cert_days_left(a->s.cert_file, &days) == 0;
        if (!a->cert_days_known)
                return;
        a->cert_not_after_us = wall_us() + (int64_t)(days * 86400e6);
        if (days < 14)
                log_warning("uplink: the device certificate %s expires in %.1f days",
                            a->s.cert_file, days);
        /* the broker confines a device to the topics of its certificate's CN */
        if (agent_cert_cn(a->s.cert_file, cn, sizeof(cn)) == 0 && strcmp(cn, a->s.identity) != 0)
                log_warning("uplink: identity %s is not the device certificate's CN %s (%s): "
                            "the broker will refuse its batches",
                            a->s.identity, cn, a->s.cert_file);
}

static int on_reload(void *ud)
{
        struct agent *a = ud;
        struct agent_settings s;
        struct floe_config *cfg;

        floe_notify_reloading();
        if (agent_load_config(a->config_path, &cfg, &s) < 0) {
                log_error("reload: keeping the running configuration");
        } else {
                /* certificates and keys are re-read on every connect */
                log_info("reload: configuration checked; reconnecting with the certificates "
                         "on disk (other changes take effect at restart)");
                floe_config_free(cfg);
                refresh_cert(a);
                if (a->renew)
                        agent_renew_reload(a->renew);
                else if (a->s.uplink_enabled)
                        agent_uplink_reconnect(a->uplink);
        }
        floe_notify_ready("reloaded");
        return 0;
}

/* ---- setup ---- */

static int split_topics(struct agent *a)
{
        const char *p = a->s.local_topics;

        while (*p) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);

                while (n && (*p == ' ' || *p == '\t'))
                        p++, n--;
                while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
                        n--;
                if (n) {
                        if (a->ntopics == TOPICS_MAX || n >= sizeof(a->topics[0]))
                                return -E2BIG;
                        memcpy(a->topics[a->ntopics], p, n);
                        a->topics[a->ntopics++][n] = '\0';
                }
                if (!end)
                        break;
                p = end + 1;
        }
        return 0;
}

static int open_store(struct agent *a)
{
        struct agent_outbox_opts oo;
        struct agent_window_opts wo;
        struct agent_ring_recovery rec;
        char err[256];
        int r;

        if (mkdir(a->s.state_dir, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "%s", a->s.state_dir);
        if (mkdir(a->s.rejected_dir_buf, 0700) < 0 && errno != EEXIST)
                return log_error_errno(-errno, "%s", a->s.rejected_dir_buf);
        r = agent_ring_open(a->s.ring_path, a->s.ring_size, a->s.ring_sync, &a->ring, &rec, err,
                            sizeof(err));
        if (r == -ERANGE) {
                /* resized in the configuration while it holds data: keep its size
                 * until it drains (docs/ring.md) */
                log_warning("ring %s: %s; keeping its current size until it is empty",
                            a->s.ring_path, err);
                r = agent_ring_open(a->s.ring_path, 0, a->s.ring_sync, &a->ring, &rec, err,
                                    sizeof(err));
        } else if (r == -EBADMSG || r == -EPROTONOSUPPORT) {
                char aside[4096];

                if (agent_ring_move_aside(a->s.ring_path, wall_us(), aside, sizeof(aside)) < 0)
                        return log_error_errno(r, "ring %s: %s; cannot move it aside",
                                               a->s.ring_path, err);
                log_error("ring %s: %s; moved aside to %s, starting with an empty ring",
                          a->s.ring_path, err, aside);
                r = agent_ring_open(a->s.ring_path, a->s.ring_size, a->s.ring_sync, &a->ring, &rec,
                                    err, sizeof(err));
        }
        if (r < 0)
                return log_error_errno(r, "ring %s: %s", a->s.ring_path, err);
        if (rec.rolled_forward || rec.cursors_clamped)
                log_warning("ring %s: %" PRIu64 " records recovered past the stored head, %u "
                            "cursors clamped",
                            a->s.ring_path, rec.rolled_forward, rec.cursors_clamped);
        if (rec.torn_bytes)
                log_warning("ring %s: %" PRIu64 " torn bytes after a power cut dropped",
                            a->s.ring_path, rec.torn_bytes);
        log_info("ring %s: %" PRIu64 " records to replay", a->s.ring_path, rec.records);
        agent_outbox_opts_default(&oo);
        oo.max_bytes = a->s.outbox_max_bytes;
        oo.segment_bytes = a->s.outbox_segment_bytes;
        /* a small outbox takes smaller batches: at least four fit */
        if (oo.max_record > a->s.outbox_max_bytes / 4)
                oo.max_record = (uint32_t)(a->s.outbox_max_bytes / 4);
        a->max_record = oo.max_record;
        oo.policy = a->s.outbox_policy;
        oo.sync = a->s.outbox_sync;
        r = agent_outbox_open(a->s.outbox_dir, &oo, &a->ob, err, sizeof(err));
        if (r < 0)
                return log_error_errno(r, "outbox %s: %s", a->s.outbox_dir, err);
        agent_window_opts_default(&wo);
        wo.window_us = (int64_t)a->s.window_us;
        wo.grace_us = (int64_t)a->s.grace_us;
        wo.max_future_us = (int64_t)a->s.max_future_us;
        wo.max_series = (uint32_t)a->s.max_series;
        wo.max_windows = 2 * wo.max_series;
        wo.name_bytes = 64ULL * wo.max_series;
        r = agent_window_new(&wo, &a->win);
        if (r < 0)
                return log_error_errno(r, "windows");
        return 0;
}

/* enrollment or renewal installed another certificate */
static void renew_changed(void *ud)
{
        refresh_cert(ud);
}

static void uplink_kick(void *ud)
{
        struct agent *a = ud;

        if (a->uplink)
                agent_uplink_kick(a->uplink);
}

static int open_flow(struct agent *a)
{
        struct agent_pipeline_opts po = {
                .identity = a->s.identity,
                .ship = a->s.ship,
                .batch_max_events = (uint32_t)a->s.batch_max_events,
                .batch_max_bytes = a->s.batch_max_bytes,
                .batch_max_age_us = a->s.batch_max_age_us,
                .level = (int)a->s.level,
                .on_batch = uplink_kick,
                .on_batch_ud = a,
        };
        struct agent_uplink_opts uo = {
                .identity = a->s.identity,
                .mqtt =
                        {
                                .name = "uplink",
                                .host = a->s.uplink_host,
                                .port = (int)a->s.uplink_port,
                                .client_id = a->s.identity,
                                .keepalive_s = (int)(a->s.keepalive_us / 1000000),
                                .ca_file = a->s.ca_file,
                                .cert_file = a->s.cert_file,
                                .key_file = a->s.key_file,
                                .backoff_min_us = a->s.backoff_min_us,
                                .backoff_max_us = a->s.backoff_max_us,
                                .send_max = (uint16_t)(a->s.inflight + 4),
                        },
                .inflight = (uint32_t)a->s.inflight,
                .ack_timeout_us = a->s.ack_timeout_us,
                .bandwidth = a->s.bandwidth,
                .status_interval_us = a->s.status_interval_us,
                .rejected_dir = a->s.rejected_dir_buf,
                .max_frame = 4u << 20,
                .status = status_json,
                .status_ud = a,
                .lazy_connect = a->s.uplink_enabled && a->s.enroll_enabled,
        };
        int r;

        floe_wire_limits_default(&po.lim);
        po.lim.max_compressed = a->max_record;
        if (po.batch_max_bytes > a->max_record)
                po.batch_max_bytes = a->max_record;
        if (po.batch_max_events > po.lim.max_rows)
                po.batch_max_events = po.lim.max_rows;
        po.lim.max_series = (uint32_t)a->s.max_series;
        r = agent_pipeline_new(&po, a->ring, a->win, a->ob, wall_us(), &a->pipe);
        if (r < 0)
                return log_error_errno(r, "pipeline: replaying the ring");
        if (!a->s.uplink_enabled) {
                uo.mqtt.ca_file = uo.mqtt.cert_file = uo.mqtt.key_file = NULL;
                uo.mqtt.host = "127.0.0.1";
        }
        r = agent_uplink_new(a->e, &uo, a->ob, &a->uplink);
        if (r < 0)
                return log_error_errno(r, "uplink %s:%d, TLS files %s, %s, %s", uo.mqtt.host,
                                       uo.mqtt.port, uo.mqtt.ca_file ?: "none",
                                       uo.mqtt.cert_file ?: "none", uo.mqtt.key_file ?: "none");
        if (uo.lazy_connect) {
                r = agent_renew_new(a->e, &a->s, a->uplink, renew_changed, a, &a->renew);
                if (r < 0)
                        return log_error_errno(r, "enroll");
        }
        return 0;
}

static int open_local(struct agent *a)
{
        static const struct floe_mqtt_callbacks cbs = {
                .on_connect = local_connect,
                .on_disconnect = local_disconnect,
                .on_message = local_message,
        };
        struct agent_parse_opts po;
        struct floe_mqtt_opts mo = {
                .name = "local",
                .host = a->s.local_host,
                .port = (int)a->s.local_port,
                .client_id = a->s.local_client_id,
                .keepalive_s = 30,
                .persistent = a->s.local_session_expiry_us > 0,
                .session_expiry_s = (uint32_t)(a->s.local_session_expiry_us / 1000000),
                .backoff_min_us = 500000,
                .backoff_max_us = 30000000,
                .receive_max = 100,
                .buffered_reads = true, /* main.c routes read() through floe_mqtt_read() */
        };
        int r;

        agent_parse_opts_default(&po);
        po.topic_prefix_strip = a->s.local_prefix;
        po.max_payload = a->s.max_payload;
        r = agent_parser_new(&po, &a->parser);
        if (r < 0)
                return log_error_errno(r, "parser");
        r = split_topics(a);
        if (r < 0)
                return log_error_errno(r, "[local] topics: at most %d of up to 255 bytes",
                                       TOPICS_MAX);
        if (!a->s.local_enabled)
                return 0;
        r = floe_mqtt_new(a->e, &mo, &cbs, a, &a->local);
        if (r < 0)
                return log_error_errno(r, "local broker %s:%d", mo.host, mo.port);
        return 0;
}

static int open_board(struct agent *a)
{
        struct floe_config_error err = {0};
        char section[BOARD_NAME_MAX + 8], msg[600];
        int r;

        a->board = board_find(a->s.board);
        board_section(a->board, section, sizeof(section));
        r = a->board->open(a->cfg, section, &a->board_state, &err);
        if (r < 0) {
                log_error("%s", floe_config_error_format(&err, msg, sizeof(msg)));
                a->board = NULL;
                return r;
        }
        r = a->board->watchdog_open(a->board_state);
        if (r < 0)
                return log_error_errno(r, "board %s: watchdog", a->board->name);
        return 0;
}

int agent_new(const char *config_path, struct agent **ret)
{
        struct agent *a = floe_calloc(1, sizeof(*a));
        int r;

        if (!a)
                return -ENOMEM;
        a->rl = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * 1000000ULL, 10);
        snprintf(a->config_path, sizeof(a->config_path), "%s", config_path);
        r = agent_load_config(config_path, &a->cfg, &a->s);
        r = r ?: floe_event_new(&a->e);
        r = r ?: floe_metrics_new(64 << 10, &a->metrics);
        r = r ?: open_board(a);
        r = r ?: open_store(a);
        r = r ?: open_flow(a);
        r = r ?: open_local(a);
        if (r < 0) {
                agent_free(a);
                return r;
        }
        refresh_cert(a);
        *ret = a;
        return 0;
}

struct agent *agent_free(struct agent *a)
{
        if (!a)
                return NULL;
        a->tick = sd_event_source_disable_unref(a->tick);
        a->poll = sd_event_source_disable_unref(a->poll);
        a->metrics_timer = sd_event_source_disable_unref(a->metrics_timer);
        a->sync_timer = sd_event_source_disable_unref(a->sync_timer);
        floe_mqtt_free(a->local);
        agent_renew_free(a->renew);
        agent_uplink_free(a->uplink);
        agent_pipeline_free(a->pipe);
        agent_window_free(a->win);
        agent_outbox_close(a->ob);
        agent_ring_close(a->ring);
        agent_parser_free(a->parser);
        if (a->board && a->board->close)
                a->board->close(a->board_state);
        floe_metrics_free(a->metrics);
        sd_event_unref(a->e);
        floe_config_free(a->cfg);
        floe_free(a);
        return NULL;
}

int agent_run(struct agent *a)
{
        const struct floe_event_handlers handlers = {.on_reload = on_reload, .userdata = a};
        bool wd;
        int r;

        r = floe_event_install_signals(a->e, &handlers);
        r = r ?: floe_event_enable_watchdog(a->e, &wd);
        r = r
                    ?: floe_event_add_periodic(a->e, a->s.tick_us, a->s.tick_us / 10, on_tick, a,
                                               &a->tick);
        r = r
                    ?: floe_event_add_periodic(a->e, a->board->poll_interval_us(a->board_state),
                                               1000, board_poll, a, &a->poll);
        r = r
                    ?: floe_event_add_periodic(a->e, a->s.metrics_interval_us, 100000, on_metrics,
                                               a, &a->metrics_timer);
        if (r == 0 && a->s.ring_sync == AGENT_RING_SYNC_INTERVAL)
                r = floe_event_add_periodic(a->e, a->s.ring_sync_interval_us, 10000, on_sync, a,
                                            &a->sync_timer);
        if (r < 0)
                return log_error_errno(r, "event loop");
        if (a->renew)
                r = agent_renew_start(a->renew);
        else if (a->s.uplink_enabled)
                agent_uplink_start(a->uplink);
        if (r < 0)
                return 1;
        if (a->local)
                floe_mqtt_start(a->local);
        write_metrics(a);
        floe_notify_ready("running");
        log_info("floe-agent %s running (board %s)", a->s.identity, a->board->name);
        r = sd_event_loop(a->e);
        floe_notify_stopping();
        log_info("stopping: closing the open batch and windows into the outbox");
        if (a->local)
                floe_mqtt_stop(a->local);
        a->now = wall_us();
        if (agent_pipeline_drain(a->pipe, a->now) < 0)
                log_error("stopping: could not drain the pipeline; the ring keeps the data");
        if (a->s.uplink_enabled) {
                agent_uplink_kick(a->uplink);
                agent_uplink_stop(a->uplink);
        }
        write_metrics(a);
        a->board->watchdog_close(a->board_state, true);
        return r < 0 ? 1 : r;
}
