/* SPDX-License-Identifier: Apache-2.0 */
#include "uplink.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floe-ack.h"
#include "floe-alloc.h"
#include "floe-log.h"
#include "outbox.h"

#define TICK_US 200000ULL

struct flight {
        uint64_t seq;
        uint64_t sent_us; /* monotonic */
        bool used;
};

struct agent_uplink {
        sd_event *event;
        struct agent_uplink_opts o;
        struct agent_outbox *ob;
        struct floe_mqtt *mqtt;
        sd_event_source *tick;
        char topic_batch[160];
        char topic_ack[160];
        char topic_status[160];
        uint8_t *frame;
        char *status_buf;
        struct flight *flights;
        uint64_t cursor; /* highest seq sent on this connection */
        bool cursor_valid;
        double tokens;
        uint64_t tokens_at;
        uint64_t status_at;
        struct agent_uplink_stats st;
        struct floe_ratelimit rl;
        struct agent_uplink_hooks hooks;
        bool started;
};

static uint64_t mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static int64_t wall_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static struct flight *flight_find(struct agent_uplink *u, uint64_t seq)
{
        for (uint32_t i = 0; i < u->o.inflight; i++)
                if (u->flights[i].used && u->flights[i].seq == seq)
                        return &u->flights[i];
        return NULL;
}

static struct flight *flight_free_slot(struct agent_uplink *u)
{
        for (uint32_t i = 0; i < u->o.inflight; i++)
                if (!u->flights[i].used)
                        return &u->flights[i];
        return NULL;
}

/* Token bucket: may `len` bytes go now? */
static bool bandwidth_allows(struct agent_uplink *u, size_t len)
{
        uint64_t now = mono_us();
        double cap;

        if (!u->o.bandwidth)
                return true;
        cap = (double)(u->o.bandwidth > len ? u->o.bandwidth : len);
        u->tokens += (double)(now - u->tokens_at) * 1e-6 * (double)u->o.bandwidth;
        u->tokens_at = now;
        if (u->tokens > cap)
                u->tokens = cap;
        if (u->tokens < (double)len)
                return false;
        u->tokens -= (double)len;
        return true;
}

static int send_one(struct agent_uplink *u, uint64_t seq, struct flight *f, bool resend)
{
        size_t len;
        int r;

        r = agent_outbox_read(u->ob, seq, u->frame, u->o.max_frame, &len);
        if (r < 0)
                return r;
        if (!bandwidth_allows(u, len))
                return -EAGAIN;
        r = floe_mqtt_publish(u->mqtt, u->topic_batch, u->frame, len, 1, false, NULL, NULL);
        if (r < 0)
                return r;
        *f = (struct flight){.seq = seq, .sent_us = mono_us(), .used = true};
        u->st.bytes_sent += len;
        if (resend)
                u->st.resent++;
        else
                u->st.sent++;
        return 0;
}

/* Send what the window and the bandwidth allow. */
static void pump(struct agent_uplink *u)
{
        uint64_t now = mono_us();

        if (!u->mqtt || !floe_mqtt_connected(u->mqtt))
                return;
        /* timed-out batches first, byte-identical */
        for (uint32_t i = 0; i < u->o.inflight; i++) {
                struct flight *f = &u->flights[i];

                if (f->used && now - f->sent_us >= u->o.ack_timeout_us) {
                        uint64_t seq = f->seq;
                        int r;

                        f->used = false;
                        r = send_one(u, seq, f, true);
                        if (r == -ENOENT)
                                continue; /* acknowledged or dropped meanwhile */
                        if (r < 0) {
                                *f = (struct flight){
                                        .seq = seq, .sent_us = f->sent_us, .used = true};
                                return;
                        }
                }
        }
        for (;;) {
                struct flight *f = flight_free_slot(u);
                uint64_t seq;
                int r;

                if (!f)
                        return;
                r = agent_outbox_next_unacked(u->ob, u->cursor_valid ? u->cursor + 1 : 0, &seq);
                if (r < 0)
                        return;
                r = send_one(u, seq, f, false);
                if (r == -ENOENT) {
                        u->cursor = seq;
                        u->cursor_valid = true;
                        continue;
                }
                if (r < 0) {
                        if (r != -EAGAIN)
                                log_ratelimit(&u->rl, LOG_WARNING,
                                              "uplink: batch %" PRIu64 " not sent: %s", seq,
                                              strerror(-r));
                        return;
                }
                u->cursor = seq;
                u->cursor_valid = true;
        }
}

static void publish_status(struct agent_uplink *u)
{
        int n;

        if (!u->o.status || !u->mqtt || !floe_mqtt_connected(u->mqtt))
                return;
        n = u->o.status(u->o.status_ud, u->status_buf, 4096);
        if (n > 0)
                floe_mqtt_publish(u->mqtt, u->topic_status, u->status_buf, (size_t)n, 1, true, NULL,
                                  NULL);
        u->status_at = mono_us();
}

static int on_tick(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent_uplink *u = ud;

        (void)usec;
        pump(u);
        if (u->o.status_interval_us && mono_us() - u->status_at >= u->o.status_interval_us)
                publish_status(u);
        sd_event_source_set_time_relative(s, TICK_US);
        return 0;
}

static void keep_rejected(struct agent_uplink *u, const struct floe_ack *a)
{
        char path[4096];
        size_t len;
        int fd;

        if (!u->o.rejected_dir ||
            agent_outbox_read(u->ob, a->seq, u->frame, u->o.max_frame, &len) < 0)
                return;
        if (snprintf(path, sizeof(path), "%s/%016" PRIx64 "-%016" PRIx64 ".fb", u->o.rejected_dir,
                     a->epoch, a->seq) >= (int)sizeof(path))
                return;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (write(fd, u->frame, len) != (ssize_t)len)
                log_warning("uplink: %s: short write", path);
        close(fd);
}

static void on_ack(struct agent_uplink *u, const void *data, size_t len)
{
        struct floe_ack a;
        struct flight *f;
        int r = floe_ack_decode(data, len, &a);

        if (r < 0) {
                u->st.bad_acks++;
                log_ratelimit(&u->rl, LOG_WARNING, "uplink: unreadable ack (%zu bytes): %s", len,
                              strerror(-r));
                return;
        }
        if (a.epoch != agent_outbox_epoch(u->ob)) {
                u->st.bad_acks++;
                return;
        }
        if (a.status == FLOE_ACK_REJECTED) {
                u->st.rejected++;
                log_error("uplink: the uploader rejected batch %" PRIu64 ": %s; kept in %s", a.seq,
                          a.reason, u->o.rejected_dir ? u->o.rejected_dir : "(nowhere)");
                keep_rejected(u, &a);
        } else if (a.status == FLOE_ACK_DUPLICATE) {
                u->st.duplicates++;
        }
        u->st.acked++;
        u->st.last_ack_us = wall_us();
        if (a.status == FLOE_ACK_REJECTED)
                agent_outbox_discard(u->ob, a.seq);
        else
                agent_outbox_ack(u->ob, a.epoch, a.seq);
        f = flight_find(u, a.seq);
        if (f)
                f->used = false;
        pump(u);
}

static void cb_connect(void *ud, int rc)
{
        struct agent_uplink *u = ud;

        if (rc != 0) {
                log_warning("mqtt %s: connection refused: %s (%d)", floe_mqtt_peer(u->mqtt),
                            mosquitto_reason_string(rc), rc);
                return;
        }
        log_info("mqtt %s: connected", floe_mqtt_peer(u->mqtt));
        u->st.connected = true;
        memset(u->flights, 0, sizeof(*u->flights) * u->o.inflight);
        u->cursor_valid = false;
        if (floe_mqtt_subscribe(u->mqtt, u->topic_ack, 1) < 0)
                log_error("uplink: cannot subscribe to %s", u->topic_ack);
        publish_status(u);
        pump(u);
        if (u->hooks.on_connect)
                u->hooks.on_connect(u->hooks.ud);
}

static void cb_connect_failed(void *ud, int rc)
{
        struct agent_uplink *u = ud;

        if (u->hooks.on_connect_failed)
                u->hooks.on_connect_failed(u->hooks.ud, rc);
}

static void cb_subscribe(void *ud, int mid, int granted)
{
        struct agent_uplink *u = ud;

        if (u->hooks.on_subscribe)
                u->hooks.on_subscribe(u->hooks.ud, mid, granted);
}

static void cb_disconnect(void *ud, int rc)
{
        struct agent_uplink *u = ud;

        log_warning("mqtt %s: connection lost (%s)", floe_mqtt_peer(u->mqtt),
                    rc ? mosquitto_strerror(rc) : "closed");
        u->st.connected = false;
        memset(u->flights, 0, sizeof(*u->flights) * u->o.inflight);
        u->cursor_valid = false;
        if (u->hooks.on_disconnect)
                u->hooks.on_disconnect(u->hooks.ud);
}

static void cb_message(void *ud, const struct mosquitto_message *msg, const mosquitto_property *p)
{
        struct agent_uplink *u = ud;

        if (msg->topic && strcmp(msg->topic, u->topic_ack) == 0)
                on_ack(u, msg->payload, (size_t)msg->payloadlen);
        else if (u->hooks.on_message)
                u->hooks.on_message(u->hooks.ud, msg, p);
}

static void cb_publish(void *ud, int mid, int reason)
{
        struct agent_uplink *u = ud;

        if (reason >= 0x80) {
                u->st.puback_errors++;
                u->st.last_puback_reason = reason;
                log_ratelimit(&u->rl, LOG_ERR,
                              "uplink: the broker refused message %d with reason %d (%s)", mid,
                              reason, mosquitto_reason_string(reason));
        }
}

static int make_connection(struct agent_uplink *u)
{
        static const struct floe_mqtt_callbacks cbs = {
                .on_connect = cb_connect,
                .on_disconnect = cb_disconnect,
                .on_message = cb_message,
                .on_publish = cb_publish,
                .on_subscribe = cb_subscribe,
                .on_connect_failed = cb_connect_failed,
        };

        return floe_mqtt_new(u->event, &u->o.mqtt, &cbs, u, &u->mqtt);
}

int agent_uplink_new(sd_event *e, const struct agent_uplink_opts *o, struct agent_outbox *ob,
                     struct agent_uplink **ret)
{
        struct agent_uplink *u;
        int r;

        if (!o->identity || o->inflight == 0 || o->max_frame == 0)
                return -EINVAL;
        u = floe_calloc(1, sizeof(*u));
        if (!u)
                return -ENOMEM;
        u->event = sd_event_ref(e);
        u->o = *o;
        u->ob = ob;
        u->rl = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * 1000000ULL, 5);
        snprintf(u->topic_batch, sizeof(u->topic_batch), "floe/v1/%s/batch", o->identity);
        snprintf(u->topic_ack, sizeof(u->topic_ack), "floe/v1/%s/ack", o->identity);
        snprintf(u->topic_status, sizeof(u->topic_status), "floe/v1/%s/status", o->identity);
        u->frame = floe_malloc(o->max_frame);
        u->status_buf = floe_malloc(4096);
        u->flights = floe_calloc(o->inflight, sizeof(*u->flights));
        if (!u->frame || !u->status_buf || !u->flights) {
                r = -ENOMEM;
                goto fail;
        }
        u->tokens_at = mono_us();
        if (!o->lazy_connect) {
                r = make_connection(u);
                if (r < 0)
                        goto fail;
        }
        r = sd_event_add_time_relative(e, &u->tick, CLOCK_MONOTONIC, TICK_US, 10000, on_tick, u);
        if (r < 0)
                goto fail;
        sd_event_source_set_enabled(u->tick, SD_EVENT_ON);
        *ret = u;
        return 0;
fail:
        agent_uplink_free(u);
        return r;
}

struct agent_uplink *agent_uplink_free(struct agent_uplink *u)
{
        if (!u)
                return NULL;
        u->tick = sd_event_source_disable_unref(u->tick);
        floe_mqtt_free(u->mqtt);
        sd_event_unref(u->event);
        floe_free(u->frame);
        floe_free(u->status_buf);
        floe_free(u->flights);
        floe_free(u);
        return NULL;
}

int agent_uplink_start(struct agent_uplink *u)
{
        int r;

        if (!u->mqtt) {
                r = make_connection(u);
                if (r < 0)
                        return r;
        }
        u->started = true;
        return floe_mqtt_start(u->mqtt);
}

void agent_uplink_stop(struct agent_uplink *u)
{
        if (!u->mqtt)
                return;
        publish_status(u);
        floe_mqtt_stop(u->mqtt);
        u->st.connected = false;
}

void agent_uplink_kick(struct agent_uplink *u)
{
        pump(u);
}

void agent_uplink_reconnect(struct agent_uplink *u)
{
        if (u->mqtt)
                floe_mqtt_reconnect(u->mqtt);
}

void agent_uplink_stats(const struct agent_uplink *u, struct agent_uplink_stats *ret)
{
        uint32_t n = 0;

        *ret = u->st;
        for (uint32_t i = 0; i < u->o.inflight; i++)
                n += u->flights[i].used;
        ret->inflight = n;
}

struct floe_mqtt *agent_uplink_mqtt(struct agent_uplink *u)
{
        return u->mqtt;
}

bool agent_uplink_started(const struct agent_uplink *u)
{
        return u->started;
}

void agent_uplink_set_hooks(struct agent_uplink *u, const struct agent_uplink_hooks *h)
{
        u->hooks = h ? *h : (struct agent_uplink_hooks){0};
}

int agent_uplink_set_tls_files(struct agent_uplink *u, const char *cert_file, const char *key_file,
                               bool reconnect)
{
        int r = 0;

        if (u->mqtt)
                r = floe_mqtt_set_tls_files(u->mqtt, cert_file, key_file);
        if (r < 0)
                return r;
        u->o.mqtt.cert_file = cert_file;
        u->o.mqtt.key_file = key_file;
        if (reconnect && u->mqtt && u->started)
                floe_mqtt_reconnect(u->mqtt);
        return 0;
}
