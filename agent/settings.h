/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* floe-agent's configuration: /etc/floe/agent.conf and agent.conf.d/ (docs/agent.md). */

#include <stdbool.h>
#include <stdint.h>

#include "floe-config.h"
#include "pipeline.h"

#define AGENT_CONFIG_DEFAULT "/etc/floe/agent.conf"

/* [enroll] key_type: the device key the agent makes. */
enum agent_key_type {
        AGENT_KEY_P256,
        AGENT_KEY_P384,
        AGENT_KEY_RSA3072,
        _AGENT_KEY_TYPE_MAX,
};

struct agent_settings {
        /* [agent] */
        char identity[128];
        const char *state_dir;
        const char *board;
        uint64_t tick_us;
        /* [local] */
        bool local_enabled;
        const char *local_host;
        int64_t local_port;
        const char *local_topics; /* comma-separated */
        const char *local_prefix;
        const char *local_client_id;
        uint64_t local_session_expiry_us;
        uint64_t max_payload;
        /* [uplink] */
        bool uplink_enabled;
        const char *uplink_host;
        int64_t uplink_port;
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        uint64_t keepalive_us;
        uint64_t inflight;
        uint64_t ack_timeout_us;
        uint64_t backoff_min_us;
        uint64_t backoff_max_us;
        uint64_t bandwidth;
        uint64_t status_interval_us;
        /* [ring] */
        const char *ring_path; /* default <state_dir>/ring */
        uint64_t ring_size;
        int ring_sync;
        uint64_t ring_sync_interval_us;
        /* [window] */
        uint64_t window_us;
        uint64_t grace_us;
        uint64_t max_future_us;
        uint64_t max_series;
        /* [batch] */
        enum agent_ship ship;
        uint64_t batch_max_events;
        uint64_t batch_max_bytes;
        uint64_t batch_max_age_us;
        int64_t level;
        /* [outbox] */
        const char *outbox_dir; /* default <state_dir>/outbox */
        uint64_t outbox_max_bytes;
        uint64_t outbox_segment_bytes;
        int outbox_policy;
        int outbox_sync;
        /* [metrics] */
        const char *metrics_file; /* default <state_dir>/floe-agent.prom */
        uint64_t metrics_interval_us;
        /* [enroll] (docs/enrollment.md, "Device side") */
        bool enroll_enabled; /* the section exists: enrollment and renewal */
        bool enroll_claim;   /* claim_cert and claim_key: it can enroll by claim */
        bool enroll_auto;
        const char *claim_cert;
        const char *claim_key;
        const char *enroll_host; /* default [uplink] host */
        int64_t enroll_port;
        const char *enroll_ca_file; /* the pinned root; default [uplink] ca_file */
        char enroll_identity[128];  /* the identity to request: the agent's */
        const char *enroll_token;   /* "" if none */
        const char *enroll_token_file;
        int enroll_key_type; /* enum agent_key_type */
        const char *key_provider;
        const char *key_propq;
        uint64_t enroll_timeout_us;
        uint64_t enroll_retry_min_us;
        uint64_t enroll_retry_max_us;
        double renew_at;
        uint64_t renew_jitter_us;
        /* the device certificate is missing or unreadable and [enroll] can make one */
        bool cert_missing;
        /* derived paths live here */
        char ring_path_buf[4096];
        char outbox_dir_buf[4096];
        char metrics_file_buf[4096];
        char rejected_dir_buf[4096];
        char cert_file_buf[4096];
        char key_file_buf[4096];
};

/*
 * Reads and checks every setting (unknown keys, types, ranges, and that the
 * TLS files are given together); the identity comes from the configuration
 * or, when empty, from the device certificate's CN. Borrowed strings point
 * into cfg.
 */
int agent_settings_load(const struct floe_config *cfg, struct agent_settings *ret,
                        struct floe_config_error *err);

/* Days until the certificate's notAfter (negative when expired), or a
 * negative errno in ret's place: returns 0 or -errno. */
int agent_cert_days_left(const char *path, double *ret_days);
/* The certificate's subject CN, for the identity. */
int agent_cert_cn(const char *path, char *buf, size_t size);
/* "p256", "p384", "rsa3072"; NULL out of range. */
const char *agent_key_type_name(int type);
