/* SPDX-License-Identifier: Apache-2.0 */
/* floe-enrolld: enrollment by claim and renewal over MQTT (docs/enrollment.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <mqtt_protocol.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floe-mqtt.h"
#include "enroll-settings.h"
#include "floe-alloc.h"
#include "floe-version.h"
#include "floe-event.h"
#include "floe-log.h"

#define SEC             1000000ULL
#define STATUS_INTERVAL (5 * SEC)
#define HEALTH_INTERVAL (3600 * SEC)
#define DRAIN_TIMEOUT   (2 * SEC)
#define CA_WARN_S       (30 * 86400)
#define CRL_WARN_S      (2 * 86400)
#define FILTER_MAX      (ENROLL_TOPIC_MAX + 80)
#define BATCH_MAX       64 /* requests decided in one registry commit */

struct stats {
        uint64_t requests, issued, renewed, replayed, refused, dropped, internal;
};

/* A request waiting for the next batch: what on_message could not keep borrowed. */
struct request {
        enum enroll_kind kind;
        char id[CA_NAME_MAX + 1];
        char *resp_topic; /* libmosquitto's allocation: free() */
        void *corr;       /* likewise; NULL if none */
        uint16_t corr_len;
        void *payload; /* copy, at most max_payload + 1 bytes */
        size_t len;
};

struct enrolld {
        const char *config_path;
        struct floe_config *cfg;
        struct enroll_settings s;
        sd_event *e;
        struct enroll_service *svc;
        struct floe_mqtt *mqtt;
        sd_event_source *status_timer, *health_timer, *drain_timer, *batch_src;
        struct request queue[BATCH_MAX];
        struct enroll_result results[BATCH_MAX];
        size_t n_queued;
        char filter[FILTER_MAX];
        struct stats st;
        uint64_t outstanding; /* responses published and not yet acknowledged */
        bool draining;
        char last_status[FLOE_NOTIFY_STATUS_MAX];
        struct floe_ratelimit rl_refused, rl_dropped;
};

static void usage(FILE *f)
{
        fprintf(f, "Usage: floe-enrolld [--config FILE]          run the enrollment daemon\n"
                   "       floe-enrolld --check-config [--config FILE]\n"
                   "       floe-enrolld --version\n"
                   "The configuration is FILE (default " ENROLL_CONFIG_DEFAULT
                   ") and FILE.d/*.conf.\n");
}

static int64_t wall_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec;
}

static int load_config(const char *path, struct floe_config **ret_cfg, struct enroll_settings *s)
{
        struct floe_config_error err = {0};
        char msg[600];
        int r;

        r = enroll_config_load(path, ret_cfg, s, &err);
        if (r < 0) {
                if (!err.msg[0])
                        snprintf(err.msg, sizeof(err.msg), "%s", strerror(-r));
                log_error("%s", floe_config_error_format(&err, msg, sizeof(msg)));
        }
        return r;
}

static int open_service(const struct enroll_settings *s, struct enroll_service **ret)
{
        struct floe_config_error err = {0};
        char msg[600];
        int r;

        r = enroll_service_new(s->ca_dir, s->ca_config, &s->policy, ret, &err);
        if (r < 0 && err.msg[0])
                return log_error_errno(r, "CA directory %s: %s", s->ca_dir,
                                       floe_config_error_format(&err, msg, sizeof(msg)));
        if (r < 0)
                return log_error_errno(r,
                                       "CA directory %s: cannot open it or load the device CA "
                                       "(device/ca.pem, ca.key 0600, trust.pem, the registry)",
                                       s->ca_dir);
        return 0;
}

/* -- health: the device CA and its CRL --------------------------------------------------- */

static void check_health(struct enrolld *d)
{
        int64_t now = wall_now(), ca_end = enroll_service_issuer_not_after(d->svc);
        int64_t this_update = 0, next_update = 0;
        uint64_t number = 0;
        char when[32];

        if (ca_end - now < CA_WARN_S)
                log_warning("the device CA expires on %s: rotate it (docs/enrollment.md)",
                            ca_format_time(ca_end, when, sizeof(when)));
        if (registry_crl_last(enroll_service_registry(d->svc), CA_ROLE_DEVICE, &number,
                              &this_update, &next_update) == 0 &&
            next_update - now < CRL_WARN_S)
                log_warning("the device CRL (number %" PRIu64 ") expires on %s: run floe-ca crl, "
                            "or devices will be refused by the broker",
                            number, ca_format_time(next_update, when, sizeof(when)));
}

static int on_health(sd_event_source *s, uint64_t usec, void *ud)
{
        (void)s;
        (void)usec;
        check_health(ud);
        return 0;
}

static void update_status(struct enrolld *d)
{
        char status[sizeof(d->last_status)];

        snprintf(status, sizeof(status),
                 "%s; %" PRIu64 " requests: %" PRIu64 " issued, %" PRIu64 " renewed, %" PRIu64
                 " retries, %" PRIu64 " refused, %" PRIu64 " dropped, %" PRIu64 " failed",
                 floe_mqtt_connected(d->mqtt) ? "connected" : "disconnected", d->st.requests,
                 d->st.issued, d->st.renewed, d->st.replayed, d->st.refused, d->st.dropped,
                 d->st.internal);
        if (strcmp(status, d->last_status) != 0) {
                floe_notify_status("%s", status);
                memcpy(d->last_status, status, sizeof(status));
        }
}

static int on_status(sd_event_source *s, uint64_t usec, void *ud)
{
        (void)s;
        (void)usec;
        update_status(ud);
        return 0;
}

/* -- requests ----------------------------------------------------------------------------- */

static void log_result(struct enrolld *d, enum enroll_kind kind, const char *id,
                       const struct enroll_result *res)
{
        const char *what = kind == ENROLL_KIND_CLAIM ? "claim" : "renewal by";
        char until[32];

        if (res->err.reason == ENROLL_OK) {
                if (res->replay)
                        d->st.replayed++;
                else if (kind == ENROLL_KIND_RENEW)
                        d->st.renewed++;
                else
                        d->st.issued++;
                log_struct(LOG_INFO,
                           FLOE_LOG_FIELDS(FLOE_LOG_FIELD("FLOE_IDENTITY", "%s", res->identity),
                                           FLOE_LOG_FIELD("FLOE_ENROLL_BY", "%s", id),
                                           FLOE_LOG_FIELD("FLOE_SERIAL", "%s", res->serial)),
                           "%s %s (%s %s%s), serial %s, valid until %s",
                           res->replay                 ? "answered a retry for"
                           : kind == ENROLL_KIND_RENEW ? "renewed"
                                                       : "enrolled",
                           res->identity, what, id,
                           kind == ENROLL_KIND_CLAIM ? (res->token ? ", token" : ", allowlist")
                                                     : "",
                           res->serial, ca_format_time(res->not_after, until, sizeof(until)));
                return;
        }
        if (res->err.reason == ENROLL_INTERNAL) {
                d->st.internal++;
                log_error_errno(res->error, "request of %s %s: %s",
                                kind == ENROLL_KIND_CLAIM ? "claim" : "device", id,
                                res->err.message);
                return;
        }
        d->st.refused++;
        log_ratelimit(&d->rl_refused, LOG_NOTICE, "refused the request of %s %s%s%s: %s: %s",
                      kind == ENROLL_KIND_CLAIM ? "claim" : "device", id,
                      res->identity[0] && kind == ENROLL_KIND_CLAIM ? " for " : "",
                      kind == ENROLL_KIND_CLAIM ? res->identity : "",
                      enroll_reason_name(res->err.reason), res->err.message);
}

static void respond(struct enrolld *d, const char *topic, const void *corr, uint16_t corr_len,
                    const struct enroll_result *res)
{
        mosquitto_property *props = NULL;
        char *buf = NULL;
        size_t len = 0;
        int r, rc;

        r = enroll_service_respond(d->svc, res, &buf, &len);
        if (r < 0) {
                log_error_errno(r, "cannot encode a response");
                return;
        }
        rc = mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE,
                                           enroll_format_content_type(res->format));
        if (rc == MOSQ_ERR_SUCCESS)
                rc = mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
                                                  (uint32_t)(d->s.response_expiry_us / SEC));
        if (rc == MOSQ_ERR_SUCCESS && corr)
                rc = mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, corr,
                                                   corr_len);
        r = rc == MOSQ_ERR_SUCCESS
                    ? floe_mqtt_publish(d->mqtt, topic, buf, len, 1, false, props, NULL)
                    : -ENOMEM;
        if (r < 0)
                log_warning_errno(r, "cannot publish the response to %s (the device will retry)",
                                  topic);
        else
                d->outstanding++;
        mosquitto_property_free_all(&props);
        floe_free(buf);
}

static void drop(struct enrolld *d, const char *topic, const char *why)
{
        d->st.dropped++;
        log_ratelimit(&d->rl_dropped, LOG_NOTICE, "ignored a message on %s: %s", topic, why);
}

static void request_clear(struct request *q)
{
        free(q->resp_topic); /* libmosquitto's allocations */
        free(q->corr);
        floe_free(q->payload);
        *q = (struct request){0};
}

/* Decides every queued request in one registry transaction, then answers. */
static void process_batch(struct enrolld *d)
{
        int64_t now = wall_now();
        size_t n = d->n_queued;
        int r;

        if (n == 0)
                return;
        r = enroll_service_begin(d->svc);
        if (r < 0)
                log_error_errno(r, "the registry: cannot begin a transaction: %s",
                                registry_last_error(enroll_service_registry(d->svc)));
        for (size_t i = 0; i < n; i++) {
                struct request *q = &d->queue[i];

                d->results[i] = (struct enroll_result){0};
                enroll_service_decide(d->svc, q->kind, q->id, q->payload, q->len, now,
                                      &d->results[i]);
        }
        if (r >= 0) {
                r = enroll_service_commit(d->svc);
                if (r < 0)
                        log_error_errno(r, "the registry: commit failed, %zu requests undone: %s",
                                        n, registry_last_error(enroll_service_registry(d->svc)));
        }
        for (size_t i = 0; i < n; i++) {
                struct request *q = &d->queue[i];
                struct enroll_result *res = &d->results[i];

                if (r < 0 && res->err.reason != ENROLL_INTERNAL)
                        enroll_result_set_internal(res, r);
                log_result(d, q->kind, q->id, res);
                respond(d, q->resp_topic, q->corr, q->corr_len, res);
                enroll_result_clear(res);
                request_clear(q);
        }
        d->n_queued = 0;
}

static int on_batch(sd_event_source *s, void *ud)
{
        (void)s;
        process_batch(ud);
        return 0;
}

static void on_message(void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct enrolld *d = ud;
        struct request q = {0};
        size_t keep;

        d->st.requests++;
        if (d->draining)
                return; /* not answered: the device retries */
        if (enroll_topic_parse(msg->topic, &q.kind, q.id, sizeof(q.id)) < 0) {
                drop(d, msg->topic, "not floe/enroll/v1/<claim or identity>/req");
                return;
        }
        if (msg->retain) {
                drop(d, msg->topic, "a retained request (requests must not be retained)");
                return;
        }
        if (!mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &q.resp_topic,
                                            false) ||
            !enroll_response_topic_valid(q.id, q.resp_topic, strlen(q.resp_topic))) {
                drop(d, msg->topic, "no response topic floe/enroll/v1/<id>/res[/<nonce>]");
                goto fail;
        }
        if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &q.corr, &q.corr_len,
                                           false) &&
            q.corr_len > ENROLL_CORRELATION_MAX) {
                drop(d, msg->topic, "correlation data longer than 256 bytes");
                goto fail;
        }
        /* more than max_payload is refused by its length: no need to keep it all */
        q.len = (size_t)msg->payloadlen;
        keep = q.len > d->s.policy.max_payload ? d->s.policy.max_payload + 1 : q.len;
        q.payload = floe_malloc(keep ? keep : 1);
        if (!q.payload) {
                log_error("out of memory: request on %s not answered", msg->topic);
                goto fail;
        }
        if (keep > 0)
                memcpy(q.payload, msg->payload, keep);
        q.len = keep;
        d->queue[d->n_queued++] = q;
        /* decided when the socket has no more requests to read, or when the batch is full */
        if (d->n_queued == BATCH_MAX)
                process_batch(d);
        else
                sd_event_source_set_enabled(d->batch_src, SD_EVENT_ONESHOT);
        return;
fail:
        request_clear(&q);
}

static void on_publish(void *ud, int mid, int reason)
{
        struct enrolld *d = ud;

        (void)mid;
        if (reason >= 0x80)
                log_warning("the broker refused a response (reason %d): check the ACL of %s",
                            reason, "floe-enrolld (write floe/enroll/v1/+/res/#)");
        if (d->outstanding > 0)
                d->outstanding--;
        if (d->draining && d->outstanding == 0)
                sd_event_exit(d->e, 0);
}

static void on_connect(void *ud, int rc)
{
        struct enrolld *d = ud;
        int r;

        if (rc != 0) {
                log_warning("mqtt %s: connection refused: %s (%d)", floe_mqtt_peer(d->mqtt),
                            mosquitto_reason_string(rc), rc);
                return;
        }
        log_info("mqtt %s: connected", floe_mqtt_peer(d->mqtt));
        d->outstanding = 0; /* a clean session: nothing in flight survives */
        r = floe_mqtt_subscribe(d->mqtt, d->filter, 1);
        if (r < 0)
                log_error_errno(r, "cannot subscribe to %s", d->filter);
        update_status(d);
}

static void on_subscribe(void *ud, int mid, int granted)
{
        struct enrolld *d = ud;

        (void)mid;
        if (granted >= 0x80)
                log_error("the broker refused the subscription to %s (reason %d)", d->filter,
                          granted);
        else
                log_info("subscribed to %s", d->filter);
}

static void on_disconnect(void *ud, int rc)
{
        struct enrolld *d = ud;

        log_warning("mqtt %s: connection lost (%s)", floe_mqtt_peer(d->mqtt),
                    rc ? mosquitto_strerror(rc) : "closed");
        update_status(d);
}

/* -- signals -------------------------------------------------------------------------------- */

static int on_drain_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct enrolld *d = ud;

        (void)s;
        (void)usec;
        log_warning("stopping with %" PRIu64 " responses unacknowledged", d->outstanding);
        return sd_event_exit(d->e, 0);
}

static int on_terminate(void *ud)
{
        struct enrolld *d = ud;

        floe_notify_stopping();
        if (!d->draining && floe_mqtt_connected(d->mqtt))
                process_batch(d); /* answer what was already acknowledged to the broker */
        if (d->draining || d->outstanding == 0 || !floe_mqtt_connected(d->mqtt))
                return 0;
        d->draining = true;
        log_info("stopping: waiting for %" PRIu64 " responses to be acknowledged", d->outstanding);
        if (floe_event_add_timer(d->e, DRAIN_TIMEOUT, 10000, on_drain_timeout, d, &d->drain_timer) <
            0)
                return 0;
        return FLOE_EVENT_TERMINATE_DEFER;
}

static int on_reload(void *ud)
{
        struct enrolld *d = ud;
        struct enroll_settings s;
        struct floe_config *cfg = NULL;
        int r;

        floe_notify_reloading();
        if (load_config(d->config_path, &cfg, &s) < 0) {
                log_error("reload: keeping the running configuration");
                floe_notify_ready("reload failed; running with the previous configuration");
                return 0;
        }
        if (strcmp(s.ca_dir, d->s.ca_dir) != 0 || strcmp(s.host, d->s.host) != 0 ||
            s.port != d->s.port || strcmp(s.share_group, d->s.share_group) != 0)
                log_warning("reload: ca_dir, host, port and share_group change at restart only");
        enroll_service_set_policy(d->svc, &s.policy);
        floe_config_free(cfg);
        r = enroll_service_reload_issuer(d->svc);
        if (r < 0)
                log_error_errno(r, "reload: cannot load the device CA; signing with the old one");
        else
                log_info("reload: limits and validity applied, device CA loaded, reconnecting "
                         "with the service certificate on disk");
        check_health(d);
        floe_mqtt_reconnect(d->mqtt);
        floe_notify_ready("reloaded");
        return 0;
}

/* -- setup ------------------------------------------------------------------------------------ */

static struct enrolld *enrolld_free(struct enrolld *d)
{
        if (!d)
                return NULL;
        d->status_timer = sd_event_source_disable_unref(d->status_timer);
        d->health_timer = sd_event_source_disable_unref(d->health_timer);
        d->drain_timer = sd_event_source_disable_unref(d->drain_timer);
        d->batch_src = sd_event_source_disable_unref(d->batch_src);
        for (size_t i = 0; i < d->n_queued; i++)
                request_clear(&d->queue[i]);
        floe_mqtt_free(d->mqtt);
        enroll_service_free(d->svc);
        sd_event_unref(d->e);
        floe_config_free(d->cfg);
        floe_free(d);
        return NULL;
}

static int enrolld_new(const char *config_path, struct enrolld **ret)
{
        static const struct floe_mqtt_callbacks cb = {
                .on_connect = on_connect,
                .on_disconnect = on_disconnect,
                .on_message = on_message,
                .on_publish = on_publish,
                .on_subscribe = on_subscribe,
        };
        struct floe_mqtt_opts o;
        struct enrolld *d;
        int r;

        d = floe_calloc(1, sizeof(*d));
        if (!d)
                return log_error_errno(-ENOMEM, "out of memory");
        d->config_path = config_path;
        d->rl_refused = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * SEC, 100);
        d->rl_dropped = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(10 * SEC, 20);
        r = load_config(config_path, &d->cfg, &d->s);
        r = r ?: open_service(&d->s, &d->svc);
        if (r >= 0 && snprintf(d->filter, sizeof(d->filter), "$share/%s/" ENROLL_TOPIC_FILTER,
                               d->s.share_group) >= (int)sizeof(d->filter))
                r = log_error_errno(-ENAMETOOLONG, "share_group too long");
        if (r >= 0 && (r = floe_event_new(&d->e)) < 0)
                log_error_errno(r, "event loop");
        /* idle priority: runs once the broker's socket has nothing more to read */
        if (r >= 0 &&
            ((r = sd_event_add_defer(d->e, &d->batch_src, on_batch, d)) < 0 ||
             (r = sd_event_source_set_priority(d->batch_src, SD_EVENT_PRIORITY_IDLE)) < 0 ||
             (r = sd_event_source_set_enabled(d->batch_src, SD_EVENT_OFF)) < 0))
                log_error_errno(r, "event loop");
        if (r >= 0) {
                o = (struct floe_mqtt_opts){
                        .name = "broker",
                        .host = d->s.host,
                        .port = (int)d->s.port,
                        .client_id = d->s.client_id,
                        .keepalive_s = (int)(d->s.keepalive_us / SEC),
                        .ca_file = d->s.ca_file,
                        .cert_file = d->s.cert_file,
                        .key_file = d->s.key_file,
                        .backoff_min_us = d->s.backoff_min_us,
                        .backoff_max_us = d->s.backoff_max_us,
                        .receive_max = (uint16_t)d->s.inflight,
                        .send_max = (uint16_t)d->s.inflight,
                };
                r = floe_mqtt_new(d->e, &o, &cb, d, &d->mqtt);
                if (r < 0)
                        log_error_errno(r, "broker %s:%d, TLS files %s, %s, %s", o.host, o.port,
                                        o.ca_file, o.cert_file, o.key_file);
        }
        if (r < 0) {
                enrolld_free(d);
                return r;
        }
        *ret = d;
        return 0;
}

static int enrolld_run(struct enrolld *d)
{
        const struct floe_event_handlers handlers = {
                .on_terminate = on_terminate,
                .on_reload = on_reload,
                .userdata = d,
        };
        bool wd = false;
        int r;

        r = floe_event_install_signals(d->e, &handlers);
        r = r ?: floe_event_enable_watchdog(d->e, &wd);
        r = r
                    ?: floe_event_add_periodic(d->e, STATUS_INTERVAL, 100000, on_status, d,
                                               &d->status_timer);
        r = r
                    ?: floe_event_add_periodic(d->e, HEALTH_INTERVAL, SEC, on_health, d,
                                               &d->health_timer);
        if (r < 0)
                return log_error_errno(r, "event loop");
        check_health(d);
        floe_mqtt_start(d->mqtt);
        floe_notify_ready("connecting");
        log_info("floe-enrolld %s running: CA %s, broker %s:%" PRId64 ", %s", FLOE_VERSION,
                 d->s.ca_dir, d->s.host, d->s.port, d->filter);
        r = sd_event_loop(d->e);
        floe_notify_stopping();
        floe_mqtt_stop(d->mqtt);
        log_info("stopped: %" PRIu64 " requests, %" PRIu64 " issued, %" PRIu64 " renewed, %" PRIu64
                 " retries, %" PRIu64 " refused",
                 d->st.requests, d->st.issued, d->st.renewed, d->st.replayed, d->st.refused);
        return r < 0 ? 1 : 0;
}

static int check_config(const char *path)
{
        struct enroll_service *svc = NULL;
        struct floe_config *cfg = NULL;
        struct enroll_settings s;
        const char *files[3];
        char until[32];
        int r;

        r = load_config(path, &cfg, &s);
        r = r ?: open_service(&s, &svc);
        files[0] = r >= 0 ? s.ca_file : NULL;
        files[1] = r >= 0 ? s.cert_file : NULL;
        files[2] = r >= 0 ? s.key_file : NULL;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(files); i++)
                if (access(files[i], R_OK) < 0)
                        r = log_error_errno(errno, "[broker] %s: cannot read it", files[i]);
        if (r >= 0)
                printf("%s: configuration valid (CA %s, device CA valid until %s, broker "
                       "%s:%" PRId64 ")\n",
                       path, s.ca_dir,
                       ca_format_time(enroll_service_issuer_not_after(svc), until, sizeof(until)),
                       s.host, s.port);
        enroll_service_free(svc);
        floe_config_free(cfg);
        return r < 0 ? 1 : 0;
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        const char *config = ENROLL_CONFIG_DEFAULT;
        struct enrolld *d = NULL;
        bool check = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        config = optarg;
                        break;
                case 'C':
                        check = true;
                        break;
                case 'V':
                        printf("floe-enrolld %s\n", FLOE_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        if (floe_log_open("floe-enrolld") < 0)
                log_warning("ignoring an invalid FLOE_LOG_* setting");
        if (check)
                return check_config(config);
        r = enrolld_new(config, &d);
        if (r < 0)
                return 1;
        r = enrolld_run(d);
        enrolld_free(d);
        return r;
}
