/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The agent as a client of floe-enrolld (docs/enrollment.md is normative):
 * the request and the answer (enroll-msg.c), one request/response exchange
 * over an MQTT v5 connection, and enrollment by claim over a connection of
 * its own to the claim listener (enroll-client.c), for the daemon (retrying
 * until it has a certificate) and for `floe-agent enroll` (one answer).
 */

#include <mosquitto.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "enroll-key.h"
#include "floe-mqtt.h"
#include "settings.h"

#define AGENT_ENROLL_REASON_MAX  32
#define AGENT_ENROLL_MESSAGE_MAX 200
#define AGENT_ENROLL_ANSWER_MAX  (96 << 10)

/* {"v":1,"identity":...,"csr":...,"token":...}; identity or token NULL or "" are left
 * out. *ret from floe_malloc; free it with agent_enroll_secret_free (the token). */
int agent_enroll_request(const char *identity, const char *csr, const char *token, char **ret,
                         size_t *ret_len);

struct agent_enroll_answer {
        bool ok;
        char reason[AGENT_ENROLL_REASON_MAX];   /* error: the server's reason name */
        char message[AGENT_ENROLL_MESSAGE_MAX]; /* error: printable ASCII */
        uint64_t retry_after_s;                 /* rate-limited */
        bool replay;
        char *pem; /* ok: the certificate, then the chain; floe_malloc */
        size_t pem_len;
};
/* A JSON answer; -EBADMSG with why for anything else. */
int agent_enroll_answer_parse(const void *data, size_t len, struct agent_enroll_answer *ret,
                              char *why, size_t why_size);
void agent_enroll_answer_clear(struct agent_enroll_answer *a);

/* What to do after a refusal. */
enum agent_enroll_next {
        AGENT_ENROLL_NEXT_RETRY,       /* internal, unknown: jittered exponential backoff */
        AGENT_ENROLL_NEXT_RETRY_AFTER, /* rate-limited: the server's retry_after */
        AGENT_ENROLL_NEXT_REFUSED,     /* an operator must act: retry only slowly */
        AGENT_ENROLL_NEXT_NEW_KEY,     /* the key or CSR was refused: slowly, with a new key */
};
enum agent_enroll_next agent_enroll_reason_next(const char *reason);
/* µs until the next try: full-jitter backoff (floe_backoff_us) by attempt, retry_after
 * plus up to retry_min of jitter, or (refused) between retry_max/2 and retry_max. */
uint64_t agent_enroll_retry_delay(enum agent_enroll_next next, unsigned attempt,
                                  uint64_t retry_min_us, uint64_t retry_max_us,
                                  uint64_t retry_after_s, uint64_t random);
uint64_t agent_enroll_random(void);

/* [enroll] token, or the first line of token_file; *ret is "" without one. */
int agent_enroll_token(const struct agent_settings *s, char **ret);

/* One request and its answer on a connection: floe/enroll/v1/<id>/req with response
 * topic floe/enroll/v1/<id>/res/<random nonce> and random correlation data. */
struct agent_enroll_exchange {
        char req_topic[192];
        char res_topic[224];
        uint8_t corr[16];
        int sub_mid; /* SUBACK awaited; -1 none */
};
int agent_enroll_exchange_init(struct agent_enroll_exchange *x, const char *id);
int agent_enroll_exchange_subscribe(struct agent_enroll_exchange *x, struct floe_mqtt *m);
int agent_enroll_exchange_publish(struct agent_enroll_exchange *x, struct floe_mqtt *m,
                                  const void *payload, size_t len, uint32_t expiry_s);
/* Whether msg answers x: its response topic and correlation data. */
bool agent_enroll_exchange_match(const struct agent_enroll_exchange *x,
                                 const struct mosquitto_message *msg,
                                 const mosquitto_property *props);

/* ---- enrollment by claim ---- */

struct agent_enroll_result {
        int error; /* 0 installed; -EBADMSG refused (reason); -ETIMEDOUT; another -errno */
        char reason[AGENT_ENROLL_REASON_MAX]; /* the server's, or "bad-certificate", "timeout" */
        char message[AGENT_ENROLL_MESSAGE_MAX + 64];
        struct agent_cert_info info; /* error 0 */
};

struct agent_enroll_client_opts {
        const struct agent_settings *s; /* [enroll], [uplink] cert_file and key_file */
        const char *identity;
        const char *token; /* borrowed; "" none */
        /* one-shot: the first answer ends it, and timeout bounds the whole run;
         * otherwise retried until a certificate is installed */
        bool oneshot;
        uint64_t start_delay_us; /* before the first attempt */
        void (*done)(void *ud, const struct agent_enroll_result *res);
        void *ud;
};

struct agent_enroll_client_stats {
        unsigned attempts;
        uint64_t refusals;
        char last_error[AGENT_ENROLL_MESSAGE_MAX + 64];
};

struct agent_enroll_client;

int agent_enroll_client_new(sd_event *e, const struct agent_enroll_client_opts *o,
                            struct agent_enroll_client **ret);
struct agent_enroll_client *agent_enroll_client_free(struct agent_enroll_client *c);
int agent_enroll_client_start(struct agent_enroll_client *c);
void agent_enroll_client_stats(const struct agent_enroll_client *c,
                               struct agent_enroll_client_stats *ret);

/* `floe-agent enroll`: runs until installed or refused; prints the outcome. Returns
 * the exit status. */
int agent_enroll_command(const char *config, const char *identity, const char *token, bool force);
