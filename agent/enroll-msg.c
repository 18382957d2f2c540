/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment request, its answer and one exchange over MQTT (docs/enrollment.md). */
#include <errno.h>
#include <jansson.h>
#include <mqtt_protocol.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "enroll-client.h"
#include "floe-alloc.h"

/* ---- the request ---- */

/* JSON string body of s into out (NULL: only count); returns the length. */
static size_t json_escape(const char *s, char *out)
{
        static const char hex[] = "0123456789abcdef";
        size_t n = 0;

        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;
                char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 0;

                if (e) {
                        if (out) {
                                out[n] = '\\';
                                out[n + 1] = e;
                        }
                        n += 2;
                } else if (c < 0x20) {
                        if (out) {
                                memcpy(out + n, "\\u00", 4);
                                out[n + 4] = hex[c >> 4];
                                out[n + 5] = hex[c & 15];
                        }
                        n += 6;
                } else {
                        if (out)
                                out[n] = (char)c;
                        n++;
                }
        }
        return n;
}

static size_t put(char *out, size_t at, const char *s)
{
        size_t n = strlen(s);

        memcpy(out + at, s, n);
        return at + n;
}

static size_t put_field(char *out, size_t at, const char *key, const char *value)
{
        at = put(out, at, ",\"");
        at = put(out, at, key);
        at = put(out, at, "\":\"");
        at += json_escape(value, out + at);
        return put(out, at, "\"");
}

int agent_enroll_request(const char *identity, const char *csr, const char *token, char **ret,
                         size_t *ret_len)
{
        bool has_id = identity && *identity, has_token = token && *token;
        size_t n = 16 + 32 + json_escape(csr, NULL);
        char *out;
        size_t at;

        if (has_id)
                n += json_escape(identity, NULL);
        if (has_token)
                n += json_escape(token, NULL);
        out = floe_malloc(n + 1);
        if (!out)
                return -ENOMEM;
        at = put(out, 0, "{\"v\":1");
        if (has_id)
                at = put_field(out, at, "identity", identity);
        at = put_field(out, at, "csr", csr);
        if (has_token)
                at = put_field(out, at, "token", token);
        at = put(out, at, "}");
        out[at] = '\0';
        *ret = out;
        *ret_len = at;
        return 0;
}

/* ---- the answer ---- */

static int bad(char *why, size_t size, const char *msg)
{
        if (why && size)
                snprintf(why, size, "%s", msg);
        return -EBADMSG;
}

static const char *get_string(json_t *o, const char *key)
{
        json_t *v = json_object_get(o, key);

        return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Printable ASCII only: the message goes to logs and terminals. */
static void copy_printable(char *dst, size_t size, const char *src)
{
        size_t i = 0;

        for (; src && *src && i + 1 < size; src++, i++)
                dst[i] = *src >= 0x20 && *src < 0x7f ? *src : '?';
        dst[i] = '\0';
}

static int answer_ok(json_t *root, struct agent_enroll_answer *a, char *why, size_t size)
{
        const char *cert = get_string(root, "certificate"), *chain = get_string(root, "chain");
        size_t nc, nch;
        json_t *replay = json_object_get(root, "replay");

        if (!cert)
                return bad(why, size, "an ok answer without a certificate");
        nc = strlen(cert);
        nch = chain ? strlen(chain) : 0;
        if (nc + nch + 2 > AGENT_ENROLL_PEM_MAX)
                return bad(why, size, "certificate and chain too large");
        a->pem = floe_malloc(nc + nch + 2);
        if (!a->pem)
                return -ENOMEM;
        memcpy(a->pem, cert, nc);
        a->pem_len = nc;
        if (nc && cert[nc - 1] != '\n')
                a->pem[a->pem_len++] = '\n';
        if (nch)
                memcpy(a->pem + a->pem_len, chain, nch);
        a->pem_len += nch;
        a->pem[a->pem_len] = '\0';
        a->replay = json_is_true(replay);
        a->ok = true;
        return 0;
}

int agent_enroll_answer_parse(const void *data, size_t len, struct agent_enroll_answer *ret,
                              char *why, size_t why_size)
{
        struct agent_enroll_answer a = {0};
        const char *status, *reason;
        json_error_t jerr;
        json_t *root, *retry;
        int r;

        if (len > AGENT_ENROLL_ANSWER_MAX)
                return bad(why, why_size, "answer too large");
        root = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
        if (!root || !json_is_object(root)) {
                json_decref(root);
                return bad(why, why_size, "the answer is not a JSON object");
        }
        status = get_string(root, "status");
        if (status && strcmp(status, "ok") == 0) {
                r = answer_ok(root, &a, why, why_size);
        } else if (status && strcmp(status, "error") == 0) {
                reason = get_string(root, "reason");
                r = 0;
                if (!reason || !*reason || strlen(reason) >= sizeof(a.reason) ||
                    strspn(reason, "abcdefghijklmnopqrstuvwxyz-") != strlen(reason))
                        r = bad(why, why_size, "an error answer without a reason");
                else
                        memcpy(a.reason, reason, strlen(reason) + 1);
                copy_printable(a.message, sizeof(a.message), get_string(root, "message"));
                retry = json_object_get(root, "retry_after");
                if (json_is_integer(retry) && json_integer_value(retry) > 0)
                        a.retry_after_s = (uint64_t)json_integer_value(retry);
        } else {
                r = bad(why, why_size, "the answer has no status ok or error");
        }
        json_decref(root);
        if (r < 0) {
                agent_enroll_answer_clear(&a);
                return r;
        }
        *ret = a;
        return 0;
}

void agent_enroll_answer_clear(struct agent_enroll_answer *a)
{
        floe_free(a->pem);
        *a = (struct agent_enroll_answer){0};
}

enum agent_enroll_next agent_enroll_reason_next(const char *reason)
{
        static const char *const refused[] = {
                "bad-request",   "bad-identity",     "not-entitled",  "token-used",
                "token-expired", "already-enrolled", "claim-revoked", "claim-expired",
        };
        static const char *const new_key[] = {"bad-csr", "weak-key", "unsupported-key"};

        if (strcmp(reason, "rate-limited") == 0)
                return AGENT_ENROLL_NEXT_RETRY_AFTER;
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                if (strcmp(reason, refused[i]) == 0)
                        return AGENT_ENROLL_NEXT_REFUSED;
        for (size_t i = 0; i < ELEMENTSOF(new_key); i++)
                if (strcmp(reason, new_key[i]) == 0)
                        return AGENT_ENROLL_NEXT_NEW_KEY;
        return AGENT_ENROLL_NEXT_RETRY;
}

uint64_t agent_enroll_retry_delay(enum agent_enroll_next next, unsigned attempt,
                                  uint64_t retry_min_us, uint64_t retry_max_us,
                                  uint64_t retry_after_s, uint64_t random)
{
        switch (next) {
        case AGENT_ENROLL_NEXT_RETRY_AFTER:
                if (retry_after_s > 86400)
                        retry_after_s = 86400;
                /* a batch of devices refused together must not come back together */
                return retry_after_s * 1000000 + random % (retry_min_us + 1);
        case AGENT_ENROLL_NEXT_REFUSED:
        case AGENT_ENROLL_NEXT_NEW_KEY:
                return retry_max_us / 2 + random % (retry_max_us / 2 + 1);
        case AGENT_ENROLL_NEXT_RETRY:
        default:
                return floe_backoff_us(retry_min_us, retry_max_us, attempt, random);
        }
}

uint64_t agent_enroll_random(void)
{
        uint64_t r = 0;
        struct timespec ts;

        if (getrandom(&r, sizeof(r), GRND_NONBLOCK) == sizeof(r))
                return r;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ((uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec) * 0x9e3779b97f4a7c15ULL;
}

static bool token_ok(const char *t, size_t n)
{
        if (n == 0 || n > 64)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.",
                            t[i]))
                        return false;
        return true;
}

int agent_enroll_token(const struct agent_settings *s, char **ret)
{
        char buf[130];
        size_t n;
        FILE *f;
        char *t;

        if (!*s->enroll_token_file) {
                t = floe_strdup(s->enroll_token);
                if (!t)
                        return -ENOMEM;
                *ret = t;
                return 0;
        }
        f = fopen(s->enroll_token_file, "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        n = strcspn(buf, "\r\n");
        while (n && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
                n--;
        if (!token_ok(buf, n)) {
                OPENSSL_cleanse(buf, sizeof(buf));
                return -EBADMSG;
        }
        t = floe_strndup(buf, n);
        OPENSSL_cleanse(buf, sizeof(buf));
        if (!t)
                return -ENOMEM;
        *ret = t;
        return 0;
}

/* ---- one exchange ---- */

int agent_enroll_exchange_init(struct agent_enroll_exchange *x, const char *id)
{
        uint64_t a = agent_enroll_random(), b = agent_enroll_random();
        int n, m;

        memcpy(x->corr, &a, 8);
        memcpy(x->corr + 8, &b, 8);
        n = snprintf(x->req_topic, sizeof(x->req_topic), "floe/enroll/v1/%s/req", id);
        m = snprintf(x->res_topic, sizeof(x->res_topic), "floe/enroll/v1/%s/res/%016llx", id,
                     (unsigned long long)(agent_enroll_random()));
        if (n < 0 || m < 0 || (size_t)n >= sizeof(x->req_topic) ||
            (size_t)m >= sizeof(x->res_topic))
                return -ENAMETOOLONG;
        x->sub_mid = -1;
        return 0;
}

int agent_enroll_exchange_subscribe(struct agent_enroll_exchange *x, struct floe_mqtt *m)
{
        return floe_mqtt_subscribe_mid(m, x->res_topic, 1, &x->sub_mid);
}

int agent_enroll_exchange_publish(struct agent_enroll_exchange *x, struct floe_mqtt *m,
                                  const void *payload, size_t len, uint32_t expiry_s)
{
        mosquitto_property *props = NULL;
        int r = -ENOMEM;

        if (mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC, x->res_topic) ||
            mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, x->corr,
                                          sizeof(x->corr)) ||
            mosquitto_property_add_string(&props, MQTT_PROP_CONTENT_TYPE, "application/json") ||
            mosquitto_property_add_int32(&props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
                                         expiry_s ? expiry_s : 1))
                goto out;
        r = floe_mqtt_publish(m, x->req_topic, payload, len, 1, false, props, NULL);
out:
        mosquitto_property_free_all(&props);
        return r;
}

bool agent_enroll_exchange_match(const struct agent_enroll_exchange *x,
                                 const struct mosquitto_message *msg,
                                 const mosquitto_property *props)
{
        void *corr = NULL;
        uint16_t n = 0;
        bool same;

        if (!msg->topic || strcmp(msg->topic, x->res_topic) != 0)
                return false;
        if (!mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &n, false))
                return false;
        same = n == sizeof(x->corr) && memcmp(corr, x->corr, n) == 0;
        free(corr); /* libmosquitto's allocation */
        return same;
}
