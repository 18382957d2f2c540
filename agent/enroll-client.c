/* SPDX-License-Identifier: Apache-2.0 */
/* Enrollment by claim over the claim listener (docs/enrollment.md, "Device side"). */
#include "enroll-client.h"

#include <errno.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "floe-alloc.h"
#include "floe-log.h"

enum cstate {
        C_IDLE,
        C_WAIT,       /* until the next attempt */
        C_CONNECTING, /* to the claim listener */
        C_SUBSCRIBING,
        C_ASKING, /* request sent, answer awaited */
        C_DONE,
};

struct agent_enroll_client {
        sd_event *event;
        struct agent_enroll_client_opts o;
        const struct agent_settings *s;
        struct agent_enroll_files files;
        struct floe_mqtt *mqtt;
        sd_event_source *timeout;
        sd_event_source *retry;
        sd_event_source *defer;
        enum cstate state;
        char claim[80];
        char peer[300];
        EVP_PKEY *key;
        char *request; /* holds the token: agent_enroll_secret_free */
        size_t request_len;
        struct agent_enroll_exchange x;
        unsigned attempt;
        uint8_t *answer;
        size_t answer_len;
        bool lost;
        struct agent_enroll_client_stats st;
        struct floe_ratelimit rl;
};

static void schedule_defer(struct agent_enroll_client *c);

static void set_error(struct agent_enroll_client *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void set_error(struct agent_enroll_client *c, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(c->st.last_error, sizeof(c->st.last_error), fmt, ap);
        va_end(ap);
}

/* The pending key, its CSR and the request; kept across attempts so that a retry is
 * the same request (floe-enrolld answers it with the same certificate). */
static int prepare(struct agent_enroll_client *c)
{
        _cleanup_free_ char *csr = NULL;
        bool reused = false;
        int r;

        if (c->request)
                return 0;
        if (!c->key) {
                r = agent_enroll_pending_key(&c->files, (enum agent_key_type)c->s->enroll_key_type,
                                             c->s->key_propq, &c->key, &reused);
                if (r < 0)
                        return log_error_errno(r, "enroll: device key %s (%s)", c->files.key_new,
                                               agent_key_type_name(c->s->enroll_key_type));
                log_info("enroll: %s device key %s (%s)", reused ? "using the pending" : "made a",
                         c->files.key_new, agent_key_type_name(c->s->enroll_key_type));
        }
        r = agent_enroll_csr(c->key, c->o.identity, c->s->key_propq, &csr);
        if (r < 0)
                return log_error_errno(r, "enroll: cannot make the CSR");
        r = agent_enroll_request(c->o.identity, csr, c->o.token, &c->request, &c->request_len);
        if (r < 0)
                return log_error_errno(r, "enroll: cannot make the request");
        return 0;
}

static void drop_request(struct agent_enroll_client *c, bool new_key)
{
        agent_enroll_secret_free(c->request);
        c->request = NULL;
        if (new_key) {
                EVP_PKEY_free(c->key);
                c->key = NULL;
                agent_enroll_remove(c->files.key_new);
        }
}

static void finish(struct agent_enroll_client *c, int error, const char *reason,
                   const struct agent_cert_info *info)
{
        struct agent_enroll_result res = {.error = error};

        c->state = C_DONE;
        if (c->mqtt)
                floe_mqtt_stop(c->mqtt);
        c->timeout = sd_event_source_disable_unref(c->timeout);
        c->retry = sd_event_source_disable_unref(c->retry);
        snprintf(res.reason, sizeof(res.reason), "%s", reason ? reason : "");
        snprintf(res.message, sizeof(res.message), "%s", c->st.last_error);
        if (info)
                res.info = *info;
        if (c->o.done)
                c->o.done(c->o.ud, &res);
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud);
static int on_retry(sd_event_source *s, uint64_t usec, void *ud);

static int arm(struct agent_enroll_client *c, sd_event_source **src, uint64_t delay,
               sd_event_time_handler_t fn)
{
        *src = sd_event_source_disable_unref(*src);
        return sd_event_add_time_relative(c->event, src, CLOCK_MONOTONIC, delay, 1000, fn, c);
}

/* The attempt is over without a certificate: try again after delay (one-shot: until
 * its deadline). */
static void again(struct agent_enroll_client *c, uint64_t delay)
{
        if (c->mqtt)
                floe_mqtt_stop(c->mqtt);
        floe_free(c->answer);
        c->answer = NULL;
        c->lost = false;
        c->state = C_WAIT;
        if (c->attempt < 64)
                c->attempt++;
        if (!c->o.oneshot)
                c->timeout = sd_event_source_disable_unref(c->timeout);
        if (arm(c, &c->retry, delay, on_retry) < 0)
                finish(c, -ENOMEM, "internal", NULL);
}

static void backoff(struct agent_enroll_client *c)
{
        again(c, agent_enroll_retry_delay(AGENT_ENROLL_NEXT_RETRY, c->attempt,
                                          c->s->enroll_retry_min_us, c->s->enroll_retry_max_us, 0,
                                          agent_enroll_random()));
}

static void attempt(struct agent_enroll_client *c)
{
        int r = prepare(c);

        if (r < 0) {
                set_error(c, "cannot prepare the request: %s", strerror(-r));
                if (c->o.oneshot)
                        finish(c, r, "internal", NULL);
                else
                        backoff(c);
                return;
        }
        r = agent_enroll_exchange_init(&c->x, c->claim);
        if (r == 0 && !c->o.oneshot)
                r = arm(c, &c->timeout, c->s->enroll_timeout_us, on_timeout);
        if (r < 0) {
                finish(c, r, "internal", NULL);
                return;
        }
        c->st.attempts++;
        c->state = C_CONNECTING;
        floe_mqtt_start(c->mqtt);
}

static int on_retry(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent_enroll_client *c = ud;

        (void)s;
        (void)usec;
        if (c->state == C_WAIT)
                attempt(c);
        return 0;
}

static int on_timeout(sd_event_source *s, uint64_t usec, void *ud)
{
        struct agent_enroll_client *c = ud;
        char t[32];

        (void)s;
        (void)usec;
        floe_format_duration(c->s->enroll_timeout_us, t, sizeof(t));
        if (c->state == C_ASKING || !c->st.last_error[0])
                set_error(c, "no answer from floe-enrolld within %s", t);
        else if (!strstr(c->st.last_error, "within"))
                set_error(c, "%.150s, for %s", c->st.last_error, t);
        if (c->o.oneshot) {
                finish(c, -ETIMEDOUT, "timeout", NULL);
                return 0;
        }
        log_ratelimit(&c->rl, LOG_WARNING, "enroll: %s; trying again", c->st.last_error);
        backoff(c);
        return 0;
}

static void refused(struct agent_enroll_client *c, const struct agent_enroll_answer *a)
{
        enum agent_enroll_next next = agent_enroll_reason_next(a->reason);
        uint64_t delay = agent_enroll_retry_delay(next, c->attempt, c->s->enroll_retry_min_us,
                                                  c->s->enroll_retry_max_us, a->retry_after_s,
                                                  agent_enroll_random());
        char t[32];

        c->st.refusals++;
        set_error(c, "%s: %s", a->reason, a->message[0] ? a->message : "(no message)");
        if (c->o.oneshot) {
                finish(c, -EBADMSG, a->reason, NULL);
                return;
        }
        floe_format_duration(delay - delay % 1000000, t, sizeof(t));
        if (next == AGENT_ENROLL_NEXT_RETRY || next == AGENT_ENROLL_NEXT_RETRY_AFTER)
                log_warning("enroll: floe-enrolld refused %s for now: %s; trying again in %s",
                            c->o.identity, c->st.last_error, t);
        else
                log_error("enroll: floe-enrolld refused %s: %s; an operator must act (trying "
                          "again in %s)",
                          c->o.identity, c->st.last_error, t);
        if (next == AGENT_ENROLL_NEXT_NEW_KEY)
                drop_request(c, true);
        again(c, delay);
}

static void handle_answer(struct agent_enroll_client *c)
{
        struct agent_enroll_answer a = {0};
        enum agent_cert_problem p = AGENT_CERT_OK;
        struct agent_cert_info info;
        _cleanup_free_ char *pem = NULL;
        size_t pem_len = 0;
        char why[200];
        int r;

        r = agent_enroll_answer_parse(c->answer, c->answer_len, &a, why, sizeof(why));
        floe_free(c->answer);
        c->answer = NULL;
        if (r < 0) {
                set_error(c, "unreadable answer: %s", r == -EBADMSG ? why : strerror(-r));
                goto retry;
        }
        if (!a.ok) {
                refused(c, &a);
                goto out;
        }
        r = agent_enroll_verify(a.pem, a.pem_len, c->key, c->o.identity, c->s->enroll_ca_file,
                                (int64_t)time(NULL), &p, &info, why, sizeof(why));
        if (r < 0) {
                c->st.refusals++;
                set_error(c, "the certificate in the answer is not ours to use: %s: %s",
                          r == -EBADMSG ? agent_cert_problem_name(p) : "error",
                          r == -EBADMSG ? why : strerror(-r));
                if (c->o.oneshot) {
                        finish(c, -EBADMSG, "bad-certificate", NULL);
                        goto out;
                }
                goto retry;
        }
        r = agent_enroll_pem_certs(a.pem, a.pem_len, &pem, &pem_len);
        r = r ?: agent_enroll_write_file(c->files.cert_new, pem, pem_len, 0644);
        r = r ?: agent_enroll_install(&c->files);
        if (r < 0) {
                set_error(c, "cannot install %s: %s", c->files.cert, strerror(-r));
                if (c->o.oneshot) {
                        finish(c, r, "internal", NULL);
                        goto out;
                }
                goto retry;
        }
        c->st.last_error[0] = '\0';
        log_info("enroll: installed %s as %s: serial %s%s", c->files.cert, info.identity,
                 info.serial, a.replay ? " (the answer to an earlier request)" : "");
        finish(c, 0, NULL, &info);
        goto out;
retry:
        if (c->o.oneshot) {
                finish(c, -EBADMSG, "bad-answer", NULL);
        } else {
                log_ratelimit(&c->rl, LOG_WARNING, "enroll: %s; trying again", c->st.last_error);
                backoff(c);
        }
out:
        agent_enroll_answer_clear(&a);
}

/* Answers and lost connections are handled here, outside libmosquitto's callbacks:
 * the handling stops the connection and may start another one. */
static int on_defer(sd_event_source *s, void *ud)
{
        struct agent_enroll_client *c = ud;

        (void)s;
        c->defer = sd_event_source_disable_unref(c->defer);
        if (c->answer && c->state == C_ASKING) {
                handle_answer(c);
        } else if (c->lost && (c->state == C_SUBSCRIBING || c->state == C_ASKING)) {
                c->lost = false;
                log_ratelimit(&c->rl, LOG_WARNING, "enroll: %s; trying again", c->st.last_error);
                backoff(c);
        }
        return 0;
}

static void schedule_defer(struct agent_enroll_client *c)
{
        if (c->defer)
                return;
        if (sd_event_add_defer(c->event, &c->defer, on_defer, c) < 0 ||
            sd_event_source_set_enabled(c->defer, SD_EVENT_ONESHOT) < 0)
                c->defer = sd_event_source_disable_unref(c->defer);
}

static void cb_connect(void *ud, int rc)
{
        struct agent_enroll_client *c = ud;

        if (rc != 0) {
                set_error(c, "the claim listener %s refused the connection: %s", c->peer,
                          mosquitto_reason_string(rc));
                return;
        }
        if (c->state != C_CONNECTING)
                return;
        log_debug("enroll: connected to %s as %s", c->peer, c->claim);
        c->state = C_SUBSCRIBING;
        if (agent_enroll_exchange_subscribe(&c->x, c->mqtt) < 0) {
                set_error(c, "cannot subscribe to the response topic");
                c->lost = true;
                schedule_defer(c);
        }
}

static void cb_connect_failed(void *ud, int rc)
{
        struct agent_enroll_client *c = ud;

        if (rc < 0x80)
                set_error(c, "cannot connect to the claim listener %s: %s", c->peer,
                          mosquitto_strerror(rc));
        log_ratelimit(&c->rl, LOG_WARNING, "enroll: %s", c->st.last_error);
}

static void cb_disconnect(void *ud, int rc)
{
        struct agent_enroll_client *c = ud;

        if (c->state != C_SUBSCRIBING && c->state != C_ASKING)
                return;
        /* a batch claim shares its client id: another device took the session over */
        set_error(c, "lost the connection to %s before the answer (%s)", c->peer,
                  rc ? mosquitto_strerror(rc) : "closed");
        c->lost = true;
        schedule_defer(c);
}

static void cb_subscribe(void *ud, int mid, int granted)
{
        struct agent_enroll_client *c = ud;
        uint32_t expiry = (uint32_t)(c->s->enroll_timeout_us / 1000000);

        if (c->state != C_SUBSCRIBING || mid != c->x.sub_mid)
                return;
        if (granted >= 0x80 ||
            agent_enroll_exchange_publish(&c->x, c->mqtt, c->request, c->request_len, expiry) < 0) {
                set_error(c,
                          "the claim listener refused the response topic or the request "
                          "(reason %d): check the broker's claim ACL",
                          granted);
                c->lost = true;
                schedule_defer(c);
                return;
        }
        c->state = C_ASKING;
}

static void cb_message(void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
        struct agent_enroll_client *c = ud;
        size_t n = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;

        if (c->state != C_ASKING || c->answer || !agent_enroll_exchange_match(&c->x, msg, props))
                return;
        if (n > AGENT_ENROLL_ANSWER_MAX)
                n = AGENT_ENROLL_ANSWER_MAX + 1; /* refused by the parser */
        c->answer = floe_malloc(n ? n : 1);
        if (!c->answer)
                return; /* the attempt times out and is tried again */
        memcpy(c->answer, msg->payload, n);
        c->answer_len = n;
        schedule_defer(c);
}

int agent_enroll_client_new(sd_event *e, const struct agent_enroll_client_opts *o,
                            struct agent_enroll_client **ret)
{
        static const struct floe_mqtt_callbacks cbs = {
                .on_connect = cb_connect,
                .on_disconnect = cb_disconnect,
                .on_message = cb_message,
                .on_subscribe = cb_subscribe,
                .on_connect_failed = cb_connect_failed,
        };
        const struct agent_settings *s = o->s;
        struct agent_enroll_client *c;
        struct floe_mqtt_opts mo = {
                .name = "enroll",
                .host = s->enroll_host,
                .port = (int)s->enroll_port,
                .keepalive_s = 30,
                .ca_file = s->enroll_ca_file,
                .cert_file = s->claim_cert,
                .key_file = s->claim_key,
                .backoff_min_us = s->enroll_retry_min_us,
                .backoff_max_us = s->enroll_retry_max_us,
        };
        int r;

        if (!s->enroll_claim || !o->identity)
                return -EINVAL;
        c = floe_calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(e);
        c->o = *o;
        c->s = s;
        c->rl = (struct floe_ratelimit)FLOE_RATELIMIT_INIT(60 * 1000000ULL, 5);
        snprintf(c->peer, sizeof(c->peer), "%s:%d", mo.host, mo.port);
        r = agent_enroll_files_init(&c->files, s->cert_file, s->key_file);
        if (r < 0)
                goto fail;
        /* the topic level is the claim certificate's CN (the broker's %u) */
        r = agent_cert_cn(s->claim_cert, c->claim, sizeof(c->claim));
        if (r == 0 &&
            (strncmp(c->claim, "claim-", 6) != 0 ||
             strspn(c->claim, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(c->claim)))
                r = -EBADMSG;
        if (r < 0) {
                log_error_errno(r, "enroll: %s: no claim certificate (CN claim-...)",
                                s->claim_cert);
                goto fail;
        }
        r = floe_mqtt_new(e, &mo, &cbs, c, &c->mqtt);
        if (r < 0) {
                log_error_errno(r, "enroll: claim listener %s, TLS files %s, %s, %s", c->peer,
                                mo.ca_file, mo.cert_file, mo.key_file);
                goto fail;
        }
        *ret = c;
        return 0;
fail:
        agent_enroll_client_free(c);
        return r;
}

struct agent_enroll_client *agent_enroll_client_free(struct agent_enroll_client *c)
{
        if (!c)
                return NULL;
        c->timeout = sd_event_source_disable_unref(c->timeout);
        c->retry = sd_event_source_disable_unref(c->retry);
        c->defer = sd_event_source_disable_unref(c->defer);
        floe_mqtt_free(c->mqtt);
        drop_request(c, false);
        EVP_PKEY_free(c->key);
        floe_free(c->answer);
        sd_event_unref(c->event);
        floe_free(c);
        return NULL;
}

int agent_enroll_client_start(struct agent_enroll_client *c)
{
        int r;

        log_info("enroll: requesting a certificate for %s as %s from %s (%s, key %s)",
                 c->o.identity, c->claim, c->peer, *c->o.token ? "token" : "allowlist",
                 agent_key_type_name(c->s->enroll_key_type));
        if (c->o.oneshot) {
                /* the key first (RSA takes a while): the timeout is for the answer */
                r = prepare(c);
                r = r ?: arm(c, &c->timeout, c->s->enroll_timeout_us, on_timeout);
                if (r < 0)
                        return r;
        }
        c->state = C_WAIT;
        if (c->o.start_delay_us)
                return arm(c, &c->retry, c->o.start_delay_us, on_retry);
        attempt(c);
        return 0;
}

void agent_enroll_client_stats(const struct agent_enroll_client *c,
                               struct agent_enroll_client_stats *ret)
{
        *ret = c->st;
}
