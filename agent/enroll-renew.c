/* SPDX-License-Identifier: Apache-2.0 */
/* The device certificate over the agent's life (docs/enrollment.md, "Device side"). */
#include "enroll-renew.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "enroll-client.h"
#include "floe-alloc.h"
#include "floe-log.h"

enum rstate {
        R_NONE,      /* no usable certificate, nothing to make one: the operator */
        R_ENROLLING, /* by claim; the uplink waits */
        R_VALID,     /* until the renewal time (or its retry) */
        R_REQUEST,   /* renewal asked over the uplink */
        R_SWITCH,    /* the uplink tries the staged pair */
};

static const char *const state_names[] = {
        [R_NONE] = "no-certificate", [R_ENROLLING] = "enrolling", [R_VALID] = "valid",
        [R_REQUEST] = "renewing",    [R_SWITCH] = "switching",
};

struct agent_renew {
        sd_event *event;
        const struct agent_settings *s;
        struct agent_uplink *u;
        void (*changed)(void *ud);
        void *ud;
        struct agent_enroll_files files;
        struct agent_enroll_client *client;
        char *token;
        sd_event_source *timer; /* renewal time, or the retry of a renewal or enrollment */
        sd_event_source *timeout;
        sd_event_source *defer;
        enum rstate state;
        bool due; /* the renewal time came while the uplink was down */
        bool failed;
        struct agent_cert_info cur;
        struct agent_cert_info staged;
        int64_t renew_at_us;
        unsigned attempt;
        EVP_PKEY *key; /* the pending key of a renewal */
        char *request;
        size_t request_len;
        struct agent_enroll_exchange x;
        uint8_t *answer;
        size_t answer_len;
        struct agent_renew_stats st;
};

static int64_t wall_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *utc(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
                snprintf(buf, size, "%lld", (long long)t);
        return buf;
}

static void set_error(struct agent_renew *r, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void set_error(struct agent_renew *r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->st.last_error, sizeof(r->st.last_error), fmt, ap);
        va_end(ap);
}

static void drop_request(struct agent_renew *r)
{
        struct floe_mqtt *m = agent_uplink_mqtt(r->u);

        /* the answer is no longer awaited on this connection */
        if (r->x.sub_mid >= 0 && m && floe_mqtt_connected(m))
                floe_mqtt_unsubscribe(m, r->x.res_topic);
        r->x.sub_mid = -1;
        agent_enroll_secret_free(r->request);
        r->request = NULL;
        EVP_PKEY_free(r->key);
        r->key = NULL;
        floe_free(r->answer);
        r->answer = NULL;
        r->timeout = sd_event_source_disable_unref(r->timeout);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud);

/* The renewal time of the certificate in use; not_before is how soon it may be. */
static void schedule(struct agent_renew *r, int64_t not_before_us)
{
        char a[32], b[32], c[32];
        int64_t at = agent_enroll_renew_time(r->cur.not_before, r->cur.not_after, r->s->renew_at,
                                             r->s->renew_jitter_us, agent_enroll_random());

        if (at < not_before_us) {
                log_warning("renew: certificate serial %s is due for renewal already (its "
                            "lifetime, %s to %s, is short): not before %s",
                            r->cur.serial, utc(r->cur.not_before, a, sizeof(a)),
                            utc(r->cur.not_after, b, sizeof(b)),
                            utc(not_before_us / 1000000, c, sizeof(c)));
                at = not_before_us;
        }
        r->state = R_VALID;
        r->due = false;
        r->renew_at_us = at;
        r->timer = sd_event_source_disable_unref(r->timer);
        if (sd_event_add_time(r->event, &r->timer, CLOCK_REALTIME, (uint64_t)at, 1000000, on_timer,
                              r) < 0)
                log_error("renew: cannot set the renewal timer");
        log_info("renew: certificate serial %s valid until %s; renewal at %s", r->cur.serial,
                 utc(r->cur.not_after, a, sizeof(a)), utc(at / 1000000, b, sizeof(b)));
}

/* A renewal failed: again after a backoff, but before the certificate runs out. */
static void retry_later(struct agent_renew *r, enum agent_enroll_next next, uint64_t retry_after,
                        int level)
{
        int64_t left = r->cur.not_after * 1000000 - wall_us();
        uint64_t delay = agent_enroll_retry_delay(next, r->attempt, r->s->enroll_retry_min_us,
                                                  r->s->enroll_retry_max_us, retry_after,
                                                  agent_enroll_random());
        char t[32];

        if (left > 0 && delay > (uint64_t)left / 2)
                delay = (uint64_t)left / 2 > r->s->enroll_retry_min_us ? (uint64_t)left / 2
                                                                       : r->s->enroll_retry_min_us;
        if (r->attempt < 64)
                r->attempt++;
        drop_request(r);
        r->st.renewal_failures++;
        r->state = R_VALID;
        r->due = false;
        r->renew_at_us = wall_us() + (int64_t)delay;
        r->timer = sd_event_source_disable_unref(r->timer);
        if (sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC, delay, 1000, on_timer,
                                       r) < 0)
                log_error("renew: cannot set the retry timer");
        log_full(level, "renew: %s; trying again in %s", r->st.last_error,
                 floe_format_duration(delay - delay % 1000, t, sizeof(t)));
}

/* ---- enrollment by claim ---- */

static void drop_client(struct agent_renew *r)
{
        struct agent_enroll_client_stats cs;

        if (!r->client)
                return;
        agent_enroll_client_stats(r->client, &cs);
        r->st.enrollment_attempts += cs.attempts;
        r->client = agent_enroll_client_free(r->client);
}

/* Enrollment cannot go on (its token, an internal error): again after a while. */
static void enroll_later(struct agent_renew *r)
{
        log_error("enroll: %s", r->st.last_error);
        r->state = R_NONE;
        r->timer = sd_event_source_disable_unref(r->timer);
        if (sd_event_add_time_relative(r->event, &r->timer, CLOCK_MONOTONIC,
                                       r->s->enroll_retry_max_us, 1000000, on_timer, r) < 0)
                log_error("enroll: cannot set the retry timer");
}

/* info is the installed pair's; staged: the uplink tries the staged pair first. */
static void use_certificate(struct agent_renew *r, const struct agent_cert_info *info,
                            bool reconnect, bool staged)
{
        int e;

        r->cur = *info;
        r->attempt = 0;
        schedule(r, 0);
        if (staged &&
            agent_uplink_set_tls_files(r->u, r->files.cert_new, r->files.key_new, false) == 0) {
                log_info("renew: trying the staged certificate serial %s first", r->staged.serial);
                r->state = R_SWITCH; /* before the connect: a failure at once reverts */
        }
        if (r->changed)
                r->changed(r->ud);
        if (!agent_uplink_started(r->u)) {
                e = agent_uplink_start(r->u);
                if (e < 0)
                        log_error_errno(e, "uplink: cannot start with %s, %s", r->s->cert_file,
                                        r->s->key_file);
        } else if (reconnect) {
                agent_uplink_set_tls_files(r->u, r->s->cert_file, r->s->key_file, true);
        }
}

static void on_enrolled(void *ud, const struct agent_enroll_result *res)
{
        struct agent_renew *r = ud;

        if (res->error < 0) {
                set_error(r, "enrollment stopped: %s", res->message);
                enroll_later(r);
                return;
        }
        r->st.enrollments++;
        r->st.last_error[0] = '\0';
        log_info("enroll: enrolled as %s (serial %s); connecting as the device", res->info.identity,
                 res->info.serial);
        use_certificate(r, &res->info, true, false);
}

static void start_enrollment(struct agent_renew *r)
{
        struct agent_enroll_client_opts o = {
                .s = r->s,
                .identity = r->s->enroll_identity,
                .done = on_enrolled,
                .ud = r,
                /* a batch of devices powered on together: spread their first requests */
                .start_delay_us = agent_enroll_random() % (r->s->enroll_retry_min_us + 1),
        };
        int e;

        drop_client(r);
        agent_enroll_secret_free(r->token);
        r->token = NULL;
        r->state = R_NONE;
        e = agent_enroll_token(r->s, &r->token);
        if (e < 0) {
                set_error(r, "[enroll] token_file %s: %s", r->s->enroll_token_file,
                          e == -EBADMSG ? "not a token" : strerror(-e));
                enroll_later(r);
                return;
        }
        o.token = r->token;
        e = agent_enroll_client_new(r->event, &o, &r->client);
        e = e ?: agent_enroll_client_start(r->client);
        if (e < 0) {
                set_error(r, "cannot start enrollment: %s", strerror(-e));
                enroll_later(r);
                return;
        }
        r->state = R_ENROLLING;
}

/* ---- renewal over the uplink ---- */

static void fail(struct agent_renew *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct agent_renew *r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(r->st.last_error, sizeof(r->st.last_error), fmt, ap);
        va_end(ap);
        retry_later(r, AGENT_ENROLL_NEXT_RETRY, 0, LOG_WARNING);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent_renew *r = ud;
        char t[32];

        (void)s;
        (void)usec;
        if (r->state == R_REQUEST)
                fail(r, "no answer to the renewal request within %s",
                     floe_format_duration(r->s->enroll_timeout_us, t, sizeof(t)));
        return 0;
}

static void ask(struct agent_renew *r)
{
        struct floe_mqtt *m = agent_uplink_mqtt(r->u);

        if (!m || !floe_mqtt_connected(m))
                return; /* on_connect asks */
        if (agent_enroll_exchange_subscribe(&r->x, m) < 0)
                fail(r, "cannot subscribe to %s", r->x.res_topic);
}

static void start_request(struct agent_renew *r)
{
        _cleanup_free_ char *csr = NULL;
        bool reused = false;
        int e;

        r->due = false;
        drop_request(r);
        e = agent_enroll_pending_key(&r->files, (enum agent_key_type)r->s->enroll_key_type,
                                     r->s->key_propq, &r->key, &reused);
        e = e ?: agent_enroll_csr(r->key, r->s->identity, r->s->key_propq, &csr);
        e = e ?: agent_enroll_request(r->s->identity, csr, NULL, &r->request, &r->request_len);
        e = e ?: agent_enroll_exchange_init(&r->x, r->s->identity);
        e = e
                    ?: sd_event_add_time_relative(r->event, &r->timeout, CLOCK_MONOTONIC,
                                                  r->s->enroll_timeout_us, 1000, on_timeout, r);
        if (e < 0) {
                fail(r, "cannot make the renewal request (key %s): %s", r->files.key_new,
                     strerror(-e));
                return;
        }
        log_info("renew: asking floe-enrolld for a new certificate (%s key %s)",
                 reused ? "pending" : "new", r->files.key_new);
        r->state = R_REQUEST;
        ask(r);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent_renew *r = ud;
        struct floe_mqtt *m = agent_uplink_mqtt(r->u);
        char t[32];

        (void)s;
        (void)usec;
        if (r->state == R_NONE && r->s->enroll_claim && r->s->enroll_auto) {
                start_enrollment(r);
                return 0;
        }
        if (r->state != R_VALID)
                return 0;
        if (wall_us() >= r->cur.not_after * 1000000) {
                set_error(r, "the device certificate (serial %s) expired at %s", r->cur.serial,
                          utc(r->cur.not_after, t, sizeof(t)));
                log_error("renew: %s%s", r->st.last_error,
                          r->s->enroll_claim && r->s->enroll_auto
                                  ? "; enrolling again with the claim"
                                  : "");
                if (r->s->enroll_claim && r->s->enroll_auto) {
                        start_enrollment(r);
                        return 0;
                }
        }
        if (!m || !floe_mqtt_connected(m)) {
                r->due = true; /* when the uplink connects */
                return 0;
        }
        start_request(r);
        return 0;
}

static void handle_answer(struct agent_renew *r)
{
        struct agent_enroll_answer a = {0};
        enum agent_cert_problem p = AGENT_CERT_OK;
        enum agent_enroll_next next;
        _cleanup_free_ char *pem = NULL;
        size_t pem_len = 0;
        bool permanent;
        char why[200];
        int e;

        e = agent_enroll_answer_parse(r->answer, r->answer_len, &a, why, sizeof(why));
        floe_free(r->answer);
        r->answer = NULL;
        if (e < 0) {
                fail(r, "unreadable answer to the renewal request: %s",
                     e == -EBADMSG ? why : strerror(-e));
                return;
        }
        if (!a.ok) {
                next = agent_enroll_reason_next(a.reason);
                permanent = next == AGENT_ENROLL_NEXT_REFUSED || next == AGENT_ENROLL_NEXT_NEW_KEY;
                set_error(r, "floe-enrolld refused the renewal: %s: %s%s", a.reason,
                          a.message[0] ? a.message : "(no message)",
                          permanent ? " (an operator must act)" : "");
                if (next == AGENT_ENROLL_NEXT_NEW_KEY)
                        agent_enroll_remove(r->files.key_new);
                retry_later(r, next, a.retry_after_s, permanent ? LOG_ERR : LOG_WARNING);
                goto out;
        }
        e = agent_enroll_verify(a.pem, a.pem_len, r->key, r->s->identity, r->s->enroll_ca_file,
                                (int64_t)time(NULL), &p, &r->staged, why, sizeof(why));
        if (e < 0) {
                fail(r, "the renewed certificate is not ours to use: %s: %s",
                     e == -EBADMSG ? agent_cert_problem_name(p) : "error",
                     e == -EBADMSG ? why : strerror(-e));
                goto out;
        }
        e = agent_enroll_pem_certs(a.pem, a.pem_len, &pem, &pem_len);
        e = e ?: agent_enroll_write_file(r->files.cert_new, pem, pem_len, 0644);
        if (e < 0) {
                fail(r, "cannot write %s: %s", r->files.cert_new, strerror(-e));
                goto out;
        }
        log_info("renew: received certificate serial %s (valid until %s); reconnecting with it",
                 r->staged.serial, utc(r->staged.not_after, why, sizeof(why)));
        drop_request(r);
        /* before the reconnect: a connect that fails at once reverts inside it */
        r->state = R_SWITCH;
        e = agent_uplink_set_tls_files(r->u, r->files.cert_new, r->files.key_new, true);
        if (e < 0 && r->state == R_SWITCH) {
                agent_enroll_discard(&r->files);
                fail(r, "cannot use %s, %s: %s", r->files.cert_new, r->files.key_new, strerror(-e));
        }
out:
        agent_enroll_answer_clear(&a);
}

/* The broker accepted the staged pair: it becomes the installed one. */
static void commit(struct agent_renew *r)
{
        char t[32];
        int e = agent_enroll_install(&r->files);

        r->st.renewals++;
        r->cur = r->staged;
        r->attempt = 0;
        if (e < 0) {
                /* the new pair works: keep using it where it is now (the install may have
                 * moved the key already); the next start finishes the install */
                set_error(r, "cannot install %s over %s: %s", r->files.cert_new, r->s->cert_file,
                          strerror(-e));
                log_error("renew: %s", r->st.last_error);
                agent_uplink_set_tls_files(
                        r->u,
                        access(r->files.cert_new, F_OK) == 0 ? r->files.cert_new : r->s->cert_file,
                        access(r->files.key_new, F_OK) == 0 ? r->files.key_new : r->s->key_file,
                        false);
        } else {
                agent_uplink_set_tls_files(r->u, r->s->cert_file, r->s->key_file, false);
                r->st.last_error[0] = '\0';
                log_info("renew: the broker accepted certificate serial %s (valid until %s); "
                         "installed as %s",
                         r->cur.serial, utc(r->cur.not_after, t, sizeof(t)), r->s->cert_file);
        }
        schedule(r, wall_us() + (int64_t)r->s->enroll_retry_min_us);
        if (r->changed)
                r->changed(r->ud);
}

/* The broker did not take the staged pair: back to the installed one. */
static void revert(struct agent_renew *r, int rc)
{
        agent_uplink_set_tls_files(r->u, r->s->cert_file, r->s->key_file, false);
        agent_enroll_discard(&r->files);
        set_error(r,
                  "the broker refused the renewed certificate (serial %s): %s; keeping serial %s",
                  r->staged.serial,
                  rc >= 0x80 ? mosquitto_reason_string(rc) : mosquitto_strerror(rc), r->cur.serial);
        retry_later(r, AGENT_ENROLL_NEXT_RETRY, 0, LOG_ERR);
}

static int on_defer(sd_event_source *s, void *ud)
{
        struct agent_renew *r = ud;

        (void)s;
        r->defer = sd_event_source_disable_unref(r->defer);
        if (r->state != R_REQUEST)
                return 0;
        if (r->answer)
                handle_answer(r);
        else if (r->failed)
                fail(r, "the broker refused the renewal subscription or request: check the "
                        "device ACL (floe/enroll/v1/<identity>/req and res/#)");
        r->failed = false;
        return 0;
}

static void schedule_defer(struct agent_renew *r)
{
        if (r->defer)
                return;
        if (sd_event_add_defer(r->event, &r->defer, on_defer, r) < 0 ||
            sd_event_source_set_enabled(r->defer, SD_EVENT_ONESHOT) < 0)
                r->defer = sd_event_source_disable_unref(r->defer);
}

static void hook_connect(void *ud)
{
        struct agent_renew *r = ud;

        if (r->state == R_SWITCH)
                commit(r);
        else if (r->state == R_REQUEST)
                ask(r); /* a new session: subscribe and ask again */
        else if (r->state == R_VALID && r->due)
                start_request(r);
}

static void hook_connect_failed(void *ud, int rc)
{
        struct agent_renew *r = ud;

        if (r->state == R_SWITCH)
                revert(r, rc);
}

static void hook_subscribe(void *ud, int mid, int granted)
{
        struct agent_renew *r = ud;
        struct floe_mqtt *m = agent_uplink_mqtt(r->u);
        uint32_t expiry = (uint32_t)(r->s->enroll_timeout_us / 1000000);

        if (r->state != R_REQUEST || mid != r->x.sub_mid || !m)
                return;
        if (granted >= 0x80 ||
            agent_enroll_exchange_publish(&r->x, m, r->request, r->request_len, expiry) < 0) {
                r->failed = true;
                schedule_defer(r);
        }
}

static void hook_message(void *ud, const struct mosquitto_message *msg,
                         const mosquitto_property *props)
{
        struct agent_renew *r = ud;
        size_t n = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

        if (r->state != R_REQUEST || r->answer || !agent_enroll_exchange_match(&r->x, msg, props))
                return;
        if (n > AGENT_ENROLL_ANSWER_MAX)
                n = AGENT_ENROLL_ANSWER_MAX + 1;
        r->answer = floe_malloc(n ? n : 1);
        if (!r->answer)
                return;
        memcpy(r->answer, msg->payload, n);
        r->answer_len = n;
        schedule_defer(r);
}

/* ---- the agent's side ---- */

int agent_renew_new(sd_event *e, const struct agent_settings *s, struct agent_uplink *u,
                    void (*changed)(void *ud), void *ud, struct agent_renew **ret)
{
        struct agent_renew *r = floe_calloc(1, sizeof(*r));
        int e2;

        if (!r)
                return -ENOMEM;
        e2 = agent_enroll_files_init(&r->files, s->cert_file, s->key_file);
        if (e2 < 0) {
                floe_free(r);
                return e2;
        }
        r->event = sd_event_ref(e);
        r->s = s;
        r->u = u;
        r->changed = changed;
        r->ud = ud;
        r->x.sub_mid = -1;
        agent_uplink_set_hooks(u, &(struct agent_uplink_hooks){
                                          .on_connect = hook_connect,
                                          .on_connect_failed = hook_connect_failed,
                                          .on_message = hook_message,
                                          .on_subscribe = hook_subscribe,
                                          .ud = r,
                                  });
        *ret = r;
        return 0;
}

struct agent_renew *agent_renew_free(struct agent_renew *r)
{
        if (!r)
                return NULL;
        agent_uplink_set_hooks(r->u, NULL);
        r->client = agent_enroll_client_free(r->client);
        drop_request(r);
        agent_enroll_secret_free(r->token);
        r->timer = sd_event_source_disable_unref(r->timer);
        r->defer = sd_event_source_disable_unref(r->defer);
        sd_event_unref(r->event);
        floe_free(r);
        return NULL;
}

int agent_renew_start(struct agent_renew *r)
{
        enum agent_cert_problem p = AGENT_CERT_MISSING;
        struct agent_cert_info info;
        bool staged = false;
        char why[200];
        int e;

        e = agent_enroll_provider_load(r->s->key_provider);
        if (e < 0)
                return log_error_errno(e, "[enroll] key_provider %s: cannot load it",
                                       r->s->key_provider);
        e = agent_enroll_recover(&r->files, r->s->key_propq, r->s->identity, r->s->enroll_ca_file,
                                 (int64_t)time(NULL), &staged, &p, &info, why, sizeof(why));
        if (e < 0 && e != -EBADMSG)
                return log_error_errno(e, "device certificate %s", r->s->cert_file);
        if (p == AGENT_CERT_NOT_YET_VALID) {
                /* the clock, not the certificate (a gateway up before NTP): enrolling
                 * again would not help, and connecting tells */
                log_warning("renew: the device certificate is not valid before %s, and the "
                            "clock says earlier: is the clock set? Using it anyway",
                            utc(info.not_before, why, sizeof(why)));
                p = AGENT_CERT_OK;
                staged = false;
        }
        if (p == AGENT_CERT_OK) {
                /* a staged pair is a renewal that had not connected when the agent stopped */
                if (staged)
                        staged = agent_enroll_check_files(r->files.cert_new, r->files.key_new,
                                                          r->s->key_propq, r->s->identity,
                                                          r->s->enroll_ca_file, (int64_t)time(NULL),
                                                          &p, &r->staged, NULL, 0) == 0;
                use_certificate(r, &info, false, staged);
                return 0;
        }
        log_warning("enroll: no usable device certificate: %s: %s", agent_cert_problem_name(p),
                    why);
        if (r->s->enroll_claim && r->s->enroll_auto) {
                start_enrollment(r);
                return 0;
        }
        set_error(r, "no usable device certificate (%s)", agent_cert_problem_name(p));
        log_error("enroll: %s and %s: run `floe-agent enroll`, then reload the agent",
                  r->st.last_error,
                  r->s->enroll_claim ? "[enroll] auto is off" : "no [enroll] claim_cert");
        r->state = R_NONE;
        return 0;
}

void agent_renew_reload(struct agent_renew *r)
{
        enum agent_cert_problem p = AGENT_CERT_MISSING;
        struct agent_cert_info info;
        char why[200];
        int e;

        e = agent_enroll_check_files(r->s->cert_file, r->s->key_file, r->s->key_propq,
                                     r->s->identity, r->s->enroll_ca_file, (int64_t)time(NULL), &p,
                                     &info, why, sizeof(why));
        if (e < 0 && e != -EBADMSG)
                p = AGENT_CERT_UNPARSABLE;
        if (r->state == R_SWITCH)
                return; /* the switch decides which pair stays */
        if (p != AGENT_CERT_OK) {
                log_warning("reload: device certificate %s: %s (%s)", r->s->cert_file,
                            agent_cert_problem_name(p), why);
                if (r->state == R_NONE && r->s->enroll_claim && r->s->enroll_auto)
                        start_enrollment(r);
                return;
        }
        if (r->state == R_NONE || r->state == R_ENROLLING) {
                drop_client(r);
                log_info("reload: using the device certificate on disk (serial %s)", info.serial);
                use_certificate(r, &info, true, false);
                return;
        }
        if (r->state == R_VALID && strcmp(info.serial, r->cur.serial) != 0) {
                r->cur = info;
                schedule(r, 0);
        }
        agent_uplink_reconnect(r->u);
}

void agent_renew_stats(const struct agent_renew *r, struct agent_renew_stats *ret)
{
        struct agent_enroll_client_stats cs = {0};

        *ret = r->st;
        ret->state = state_names[r->state];
        ret->renew_at_us = r->state >= R_VALID ? r->renew_at_us : 0;
        ret->not_after = r->state >= R_VALID ? r->cur.not_after : 0;
        ret->serial[0] = '\0';
        if (r->state >= R_VALID)
                memcpy(ret->serial, r->cur.serial, sizeof(ret->serial));
        if (r->client) {
                agent_enroll_client_stats(r->client, &cs);
                ret->enrollment_attempts += cs.attempts;
                if (r->state == R_ENROLLING && cs.last_error[0])
                        snprintf(ret->last_error, sizeof(ret->last_error), "%s", cs.last_error);
        }
}

int agent_renew_status_json(const struct agent_renew *r, char *buf, size_t size)
{
        struct agent_renew_stats st;
        int n;

        agent_renew_stats(r, &st);
        n = snprintf(buf, size,
                     ",\"cert_state\":\"%s\",\"cert_serial\":\"%s\",\"cert_renew_at_us\":%" PRId64
                     ",\"cert_renewals\":%" PRIu64 ",\"cert_renewal_failures\":%" PRIu64,
                     st.state, st.serial, st.renew_at_us, st.renewals, st.renewal_failures);
        return n > 0 && (size_t)n < size ? n : -ENOSPC;
}

void agent_renew_metrics(const struct agent_renew *r, struct floe_metrics *m)
{
        struct agent_renew_stats st;

        agent_renew_stats(r, &st);
        floe_metrics_family(m, "floe_agent_certificate_state", "gauge",
                            "1 for the state of the device certificate.");
        for (size_t i = 0; i < ELEMENTSOF(state_names); i++)
                floe_metrics_u64(m, "floe_agent_certificate_state",
                                 (const char *const[]){"state", state_names[i], NULL},
                                 strcmp(st.state, state_names[i]) == 0);
        if (st.renew_at_us) {
                floe_metrics_family(m, "floe_agent_certificate_renewal_timestamp_seconds", "gauge",
                                    "When the device certificate is renewed next.");
                floe_metrics_double(m, "floe_agent_certificate_renewal_timestamp_seconds", NULL,
                                    (double)st.renew_at_us / 1e6);
        }
        floe_metrics_family(m, "floe_agent_certificate_renewals_total", "counter",
                            "Renewed certificates the broker accepted.");
        floe_metrics_u64(m, "floe_agent_certificate_renewals_total", NULL, st.renewals);
        floe_metrics_family(m, "floe_agent_certificate_renewal_failures_total", "counter",
                            "Renewals that failed (refused, no answer, refused by the broker).");
        floe_metrics_u64(m, "floe_agent_certificate_renewal_failures_total", NULL,
                         st.renewal_failures);
        floe_metrics_family(m, "floe_agent_enrollments_total", "counter",
                            "Certificates installed by enrollment with the claim.");
        floe_metrics_u64(m, "floe_agent_enrollments_total", NULL, st.enrollments);
        floe_metrics_family(m, "floe_agent_enrollment_attempts_total", "counter",
                            "Enrollment requests sent (with retries).");
        floe_metrics_u64(m, "floe_agent_enrollment_attempts_total", NULL, st.enrollment_attempts);
}
