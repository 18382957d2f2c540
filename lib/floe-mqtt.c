/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-mqtt.h"

#include <errno.h>
#include <inttypes.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-log.h"

#define MISC_INTERVAL_US   1000000ULL
#define READ_BURST         64 /* packets read per wakeup at most, so timers get their turn */
#define READ_BUFFER        65536
#define CONNECT_TIMEOUT_US UINT64_C(30000000)

enum state {
        ST_IDLE,
        ST_CONNECTING,
        ST_CONNECTED,
        ST_WAITING, /* backoff before the next attempt */
        ST_STOPPED,
};

struct floe_mqtt {
        sd_event *event;
        struct mosquitto *mosq;
        struct floe_mqtt_opts o;
        struct floe_mqtt_callbacks cb;
        void *ud;
        sd_event_source *io;
        sd_event_source *misc;
        sd_event_source *retry;
        enum state state;
        unsigned attempt;
        struct floe_mqtt_stats stats;
        uint32_t io_events;
        uint64_t connecting_since; /* monotonic µs of the attempt under way */
        char peer[320];            /* "<name> <host>:<port>" */
};

static int lib_refs;

/* The connection being read through floe_mqtt_read() (one at a time: only on_io arms it),
 * and the bytes taken from its socket that libmosquitto has not asked for yet. */
static struct {
        struct floe_mqtt *m;
        int fd;
        size_t off, len;
        uint8_t buf[READ_BUFFER];
} rb = {.fd = -1};

static void rb_disarm(void)
{
        rb.m = NULL;
        rb.fd = -1;
        rb.off = rb.len = 0;
}

ssize_t floe_mqtt_read(int fd, void *buf, size_t n)
{
        size_t k;

        if (fd != rb.fd || !rb.m)
                return syscall(SYS_read, fd, buf, n);
        if (rb.m->state != ST_CONNECTED) {
                /* the connection went away under a callback: the descriptor may be another
                 * socket's by now */
                rb_disarm();
                return syscall(SYS_read, fd, buf, n);
        }
        if (rb.off == rb.len) {
                long got;

                if (n >= sizeof(rb.buf))
                        return syscall(SYS_read, fd, buf, n);
                got = syscall(SYS_read, fd, rb.buf, sizeof(rb.buf));
                if (got <= 0)
                        return got;
                rb.off = 0;
                rb.len = (size_t)got;
        }
        k = rb.len - rb.off < n ? rb.len - rb.off : n;
        memcpy(buf, rb.buf + rb.off, k);
        rb.off += k;
        return (ssize_t)k;
}

uint64_t floe_backoff_us(uint64_t min_us, uint64_t max_us, unsigned attempt, uint64_t random)
{
        uint64_t cap = min_us;

        for (unsigned i = 0; i < attempt && cap < max_us; i++)
                cap = cap > UINT64_MAX / 2 ? UINT64_MAX : cap * 2;
        if (cap > max_us)
                cap = max_us;
        if (cap < 1000)
                cap = 1000;
        return 1000 + random % (cap - 999);
}

static uint64_t now_mono(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void io_drop(struct floe_mqtt *m)
{
        m->io = sd_event_source_disable_unref(m->io);
        m->io_events = 0;
}

static void schedule_retry(struct floe_mqtt *m);

/* The connection is gone (error, broker DISCONNECT, failed CONNACK). */
static void lost(struct floe_mqtt *m, int rc)
{
        bool was_connected = m->state == ST_CONNECTED;

        io_drop(m);
        if (m->state == ST_STOPPED || m->state == ST_WAITING)
                return;
        if (sd_event_get_state(m->event) == SD_EVENT_EXITING ||
            sd_event_get_state(m->event) == SD_EVENT_FINISHED) {
                m->state = ST_STOPPED; /* shutting down: no reconnect */
                return;
        }
        m->stats.last_rc = rc;
        if (was_connected) {
                m->stats.disconnects++;
                if (m->cb.on_disconnect)
                        m->cb.on_disconnect(m->ud, rc);
        } else {
                m->stats.connect_failures++;
                if (m->cb.on_connect_failed)
                        m->cb.on_connect_failed(m->ud, rc);
                if (m->state == ST_STOPPED)
                        return; /* the callback stopped it */
        }
        schedule_retry(m);
}

static void update_io(struct floe_mqtt *m);

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *ud)
{
        struct floe_mqtt *m = ud;
        int rc = MOSQ_ERR_SUCCESS;

        (void)s;
        (void)fd;
        /* libmosquitto reads one QoS 0 packet per call: under load, read on until the socket
         * runs dry (it then returns with errno EAGAIN) instead of a trip through epoll per
         * packet. Bytes in the read buffer are not the kernel's: epoll would not report them,
         * so they are all taken before returning. */
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (m->o.buffered_reads && !m->o.ca_file && m->state == ST_CONNECTED) {
                        rb.m = m;
                        rb.fd = mosquitto_socket(m->mosq);
                }
                /* each call takes at least a byte of a non-empty buffer */
                for (int i = 1; i <= READ_BURST + READ_BUFFER; i++) {
                        errno = 0;
                        rc = mosquitto_loop_read(m->mosq, 1);
                        if (rc != MOSQ_ERR_SUCCESS || m->state != ST_CONNECTED)
                                break;
                        if (rb.m == m && rb.off < rb.len)
                                continue;
                        if (errno == EAGAIN || errno == EWOULDBLOCK || i >= READ_BURST)
                                break;
                }
                rb_disarm();
        }
        if (rc == MOSQ_ERR_SUCCESS && (revents & EPOLLOUT))
                rc = mosquitto_loop_write(m->mosq, 1);
        /* A refused or reset connect during the TLS handshake: libmosquitto 2.0 takes
         * SSL_ERROR_SYSCALL for "try again" and would spin on the hung-up socket until
         * the keepalive ran out. A connect cannot complete once the peer hung up. */
        if (rc == MOSQ_ERR_SUCCESS && (revents & (EPOLLHUP | EPOLLERR)) &&
            m->state == ST_CONNECTING)
                rc = MOSQ_ERR_CONN_LOST;
        if (rc != MOSQ_ERR_SUCCESS) {
                lost(m, rc);
                return 0;
        }
        update_io(m);
        return 0;
}

static void update_io(struct floe_mqtt *m)
{
        int fd = mosquitto_socket(m->mosq);
        uint32_t want = EPOLLIN | (mosquitto_want_write(m->mosq) ? EPOLLOUT : 0);

        if (fd < 0) {
                io_drop(m);
                return;
        }
        if (!m->io) {
                if (sd_event_add_io(m->event, &m->io, fd, want, on_io, m) < 0) {
                        lost(m, MOSQ_ERR_NOMEM);
                        return;
                }
                m->io_events = want;
                return;
        }
        if (want != m->io_events && sd_event_source_set_io_events(m->io, want) >= 0)
                m->io_events = want;
}

static int on_misc(sd_event_source *s, uint64_t usec, void *ud)
{
        struct floe_mqtt *m = ud;

        (void)usec;
        if (m->state == ST_CONNECTING &&
            now_mono() - m->connecting_since >
                    (m->o.connect_timeout_us ? m->o.connect_timeout_us : CONNECT_TIMEOUT_US)) {
                log_debug("mqtt %s: no CONNACK from %s:%d within %" PRIu64 " s: trying again",
                          m->o.name, m->o.host, m->o.port,
                          (m->o.connect_timeout_us ? m->o.connect_timeout_us : CONNECT_TIMEOUT_US) /
                                  1000000);
                lost(m, MOSQ_ERR_TIMEOUT); /* first: the socket's end is not news then */
                mosquitto_disconnect(m->mosq);
        } else if (m->state == ST_CONNECTING || m->state == ST_CONNECTED) {
                int rc = mosquitto_loop_misc(m->mosq);

                if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
                        lost(m, rc);
                else
                        update_io(m);
        }
        sd_event_source_set_time_relative(s, MISC_INTERVAL_US);
        return 0;
}

static void attempt(struct floe_mqtt *m)
{
        mosquitto_property *props = NULL;
        int rc;

        m->state = ST_CONNECTING;
        m->connecting_since = now_mono();
        m->stats.next_retry_us = 0;
        if (m->o.persistent) {
                /* loopback only: see floe_mqtt_opts */
                mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
                                             m->o.session_expiry_s);
                rc = mosquitto_connect_bind_v5(m->mosq, m->o.host, m->o.port, m->o.keepalive_s,
                                               NULL, props);
                mosquitto_property_free_all(&props);
        } else {
                rc = mosquitto_connect_bind_async(m->mosq, m->o.host, m->o.port, m->o.keepalive_s,
                                                  NULL);
        }
        if (rc != MOSQ_ERR_SUCCESS) {
                log_debug("mqtt %s: connect to %s:%d: %s", m->o.name, m->o.host, m->o.port,
                          mosquitto_strerror(rc));
                lost(m, rc);
                return;
        }
        update_io(m);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
        struct floe_mqtt *m = ud;

        (void)s;
        (void)usec;
        if (m->state == ST_WAITING)
                attempt(m);
        return 0;
}

static void schedule_retry(struct floe_mqtt *m)
{
        uint64_t rnd = 0, delay;

        if (getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd))
                rnd = now_mono() * 0x9e3779b97f4a7c15ULL;
        delay = floe_backoff_us(m->o.backoff_min_us, m->o.backoff_max_us, m->attempt, rnd);
        if (m->attempt < 64)
                m->attempt++;
        m->state = ST_WAITING;
        m->stats.next_retry_us = now_mono() + delay;
        m->retry = sd_event_source_disable_unref(m->retry);
        if (sd_event_add_time_relative(m->event, &m->retry, CLOCK_MONOTONIC, delay, 1000, on_retry,
                                       m) < 0) {
                /* stopped until floe_mqtt_reconnect(): the caller hears of it */
                m->state = ST_STOPPED;
                m->stats.last_rc = MOSQ_ERR_NOMEM;
                if (m->cb.on_disconnect)
                        m->cb.on_disconnect(m->ud, MOSQ_ERR_NOMEM);
        }
}

static void cb_connect(struct mosquitto *mosq, void *ud, int rc, int flags,
                       const mosquitto_property *props)
{
        struct floe_mqtt *m = ud;

        (void)mosq;
        (void)flags;
        (void)props;
        if (rc != 0) {
                if (m->cb.on_connect)
                        m->cb.on_connect(m->ud, rc);
                mosquitto_disconnect(m->mosq);
                lost(m, rc);
                return;
        }
        m->state = ST_CONNECTED;
        m->attempt = 0;
        m->stats.connects++;
        m->stats.last_rc = 0;
        if (m->cb.on_connect)
                m->cb.on_connect(m->ud, 0);
}

static void cb_disconnect(struct mosquitto *mosq, void *ud, int rc, const mosquitto_property *props)
{
        struct floe_mqtt *m = ud;

        (void)mosq;
        (void)props;
        if (m->state == ST_CONNECTED || m->state == ST_CONNECTING)
                lost(m, rc);
}

static void cb_message(struct mosquitto *mosq, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct floe_mqtt *m = ud;

        (void)mosq;
        if (m->cb.on_message)
                m->cb.on_message(m->ud, msg, props);
}

static void cb_publish(struct mosquitto *mosq, void *ud, int mid, int reason,
                       const mosquitto_property *props)
{
        struct floe_mqtt *m = ud;

        (void)mosq;
        (void)props;
        if (m->cb.on_publish)
                m->cb.on_publish(m->ud, mid, reason);
}

static void cb_subscribe(struct mosquitto *mosq, void *ud, int mid, int n, const int *granted,
                         const mosquitto_property *props)
{
        struct floe_mqtt *m = ud;

        (void)mosq;
        (void)props;
        if (m->cb.on_subscribe)
                m->cb.on_subscribe(m->ud, mid, n > 0 ? granted[0] : 0x80);
}

int floe_mqtt_new(sd_event *e, const struct floe_mqtt_opts *o, const struct floe_mqtt_callbacks *cb,
                  void *ud, struct floe_mqtt **ret)
{
        struct floe_mqtt *m;
        int rc;

        if (!o->host || (!o->ca_file != !o->cert_file) || (!o->cert_file != !o->key_file))
                return -EINVAL;
        m = floe_calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        if (lib_refs++ == 0)
                mosquitto_lib_init();
        m->event = sd_event_ref(e);
        m->o = *o;
        m->cb = *cb;
        m->ud = ud;
        snprintf(m->peer, sizeof(m->peer), "%s %s:%d", o->name ? o->name : "mqtt", o->host,
                 o->port);
        m->mosq = mosquitto_new(o->client_id, !o->persistent, m);
        if (!m->mosq) {
                rc = -ENOMEM;
                goto fail;
        }
        mosquitto_int_option(m->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
        mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
        if (o->receive_max)
                mosquitto_int_option(m->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, o->receive_max);
        if (o->send_max)
                mosquitto_int_option(m->mosq, MOSQ_OPT_SEND_MAXIMUM, o->send_max);
        if (o->ca_file) {
                rc = mosquitto_tls_set(m->mosq, o->ca_file, NULL, o->cert_file, o->key_file, NULL);
                if (rc == MOSQ_ERR_SUCCESS)
                        /* 1 = SSL_VERIFY_PEER; hostname verification stays on */
                        rc = mosquitto_tls_opts_set(m->mosq, 1, "tlsv1.2", NULL);
                if (rc != MOSQ_ERR_SUCCESS) {
                        log_debug("mqtt %s: TLS files %s, %s, %s: %s", o->name, o->ca_file,
                                  o->cert_file, o->key_file, mosquitto_strerror(rc));
                        rc = -EINVAL;
                        goto fail;
                }
        }
        mosquitto_connect_v5_callback_set(m->mosq, cb_connect);
        mosquitto_disconnect_v5_callback_set(m->mosq, cb_disconnect);
        mosquitto_message_v5_callback_set(m->mosq, cb_message);
        mosquitto_subscribe_v5_callback_set(m->mosq, cb_subscribe);
        mosquitto_publish_v5_callback_set(m->mosq, cb_publish);
        if (sd_event_add_time_relative(e, &m->misc, CLOCK_MONOTONIC, MISC_INTERVAL_US, 100000,
                                       on_misc, m) < 0 ||
            sd_event_source_set_enabled(m->misc, SD_EVENT_ON) < 0) {
                rc = -ENOMEM;
                goto fail;
        }
        *ret = m;
        return 0;
fail:
        floe_mqtt_free(m);
        return rc;
}

struct floe_mqtt *floe_mqtt_free(struct floe_mqtt *m)
{
        if (!m)
                return NULL;
        if (rb.m == m)
                rb_disarm();
        io_drop(m);
        m->misc = sd_event_source_disable_unref(m->misc);
        m->retry = sd_event_source_disable_unref(m->retry);
        if (m->mosq)
                mosquitto_destroy(m->mosq);
        sd_event_unref(m->event);
        if (--lib_refs == 0)
                mosquitto_lib_cleanup();
        floe_free(m);
        return NULL;
}

int floe_mqtt_start(struct floe_mqtt *m)
{
        m->attempt = 0;
        attempt(m);
        return 0;
}

void floe_mqtt_stop(struct floe_mqtt *m)
{
        if (m->state == ST_CONNECTED) {
                mosquitto_disconnect(m->mosq);
                mosquitto_loop_write(m->mosq, 1);
        }
        m->state = ST_STOPPED;
        io_drop(m);
        m->retry = sd_event_source_disable_unref(m->retry);
}

void floe_mqtt_reconnect(struct floe_mqtt *m)
{
        if (m->state == ST_STOPPED)
                return;
        if (m->state == ST_CONNECTED) {
                /* writing the DISCONNECT makes libmosquitto call cb_disconnect, which
                 * reports the loss (once) */
                mosquitto_disconnect(m->mosq);
                mosquitto_loop_write(m->mosq, 1);
                if (m->state == ST_CONNECTED) {
                        m->stats.disconnects++;
                        if (m->cb.on_disconnect)
                                m->cb.on_disconnect(m->ud, 0);
                }
        }
        io_drop(m);
        m->retry = sd_event_source_disable_unref(m->retry);
        m->attempt = 0;
        attempt(m);
}

bool floe_mqtt_connected(const struct floe_mqtt *m)
{
        return m->state == ST_CONNECTED;
}

const char *floe_mqtt_peer(const struct floe_mqtt *m)
{
        return m->peer;
}

struct mosquitto *floe_mqtt_handle(struct floe_mqtt *m)
{
        return m->mosq;
}

int floe_mqtt_publish(struct floe_mqtt *m, const char *topic, const void *data, size_t len, int qos,
                      bool retain, const mosquitto_property *props, int *ret_mid)
{
        int mid = 0, rc;

        if (m->state != ST_CONNECTED)
                return -ENOTCONN;
        if (len > INT32_MAX)
                return -EMSGSIZE;
        rc = mosquitto_publish_v5(m->mosq, &mid, topic, (int)len, data, qos, retain, props);
        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
        update_io(m);
        if (ret_mid)
                *ret_mid = mid;
        return 0;
}

int floe_mqtt_subscribe(struct floe_mqtt *m, const char *topic, int qos)
{
        int rc = mosquitto_subscribe_v5(m->mosq, NULL, topic, qos, 0, NULL);

        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EIO;
        update_io(m);
        return 0;
}

int floe_mqtt_subscribe_mid(struct floe_mqtt *m, const char *topic, int qos, int *ret_mid)
{
        int mid = 0, rc = mosquitto_subscribe_v5(m->mosq, &mid, topic, qos, 0, NULL);

        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
        update_io(m);
        *ret_mid = mid;
        return 0;
}

int floe_mqtt_unsubscribe(struct floe_mqtt *m, const char *topic)
{
        int rc = mosquitto_unsubscribe_v5(m->mosq, NULL, topic, NULL);

        if (rc != MOSQ_ERR_SUCCESS)
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : rc == MOSQ_ERR_NO_CONN ? -ENOTCONN : -EIO;
        update_io(m);
        return 0;
}

int floe_mqtt_set_tls_files(struct floe_mqtt *m, const char *cert_file, const char *key_file)
{
        int rc;

        if (!m->o.ca_file || !cert_file || !key_file)
                return -EINVAL;
        /* libmosquitto applies them to its SSL_CTX at every connect */
        rc = mosquitto_tls_set(m->mosq, m->o.ca_file, NULL, cert_file, key_file, NULL);
        if (rc != MOSQ_ERR_SUCCESS) {
                log_debug("mqtt %s: TLS files %s, %s: %s", m->o.name, cert_file, key_file,
                          mosquitto_strerror(rc));
                /* a failed mosquitto_tls_set clears the files: put the old ones back */
                mosquitto_tls_set(m->mosq, m->o.ca_file, NULL, m->o.cert_file, m->o.key_file, NULL);
                return rc == MOSQ_ERR_NOMEM ? -ENOMEM : -EINVAL;
        }
        m->o.cert_file = cert_file;
        m->o.key_file = key_file;
        return 0;
}

void floe_mqtt_stats(const struct floe_mqtt *m, struct floe_mqtt_stats *ret)
{
        *ret = m->stats;
}
