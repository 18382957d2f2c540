/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The uplink: sends the outbox's unacknowledged batches to the central
 * broker over mutual TLS, byte-identical on every resend, and drops them
 * from the outbox when the uploader acknowledges them (DESIGN.md, exactly
 * once; docs/wire-format.md §9).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "floe-mqtt.h"

struct agent_outbox;

struct agent_uplink_opts {
        const char *identity;
        struct floe_mqtt_opts mqtt;
        uint32_t inflight;       /* batches sent and not yet acknowledged */
        uint64_t ack_timeout_us; /* resend a batch unacknowledged this long */
        uint64_t bandwidth;      /* bytes/s for batches, 0 = unlimited */
        uint64_t status_interval_us;
        const char *rejected_dir; /* batches the uploader rejected go here */
        size_t max_frame;
        /* Fills the retained status document (JSON); returns its length or < 0. */
        int (*status)(void *ud, char *buf, size_t size);
        void *status_ud;
        /* The connection (and its TLS files) is made at agent_uplink_start(), not at
         * agent_uplink_new(): the device certificate may not exist yet (enrollment). */
        bool lazy_connect;
};

/* What else runs over the uplink's connection (certificate renewal). Messages on
 * topics other than the ack topic go to on_message. */
struct agent_uplink_hooks {
        void (*on_connect)(void *ud);                /* CONNACK success */
        void (*on_connect_failed)(void *ud, int rc); /* an attempt failed: TLS, refusal, network */
        void (*on_disconnect)(void *ud);
        void (*on_message)(void *ud, const struct mosquitto_message *msg,
                           const mosquitto_property *props);
        void (*on_subscribe)(void *ud, int mid, int granted);
        void *ud;
};

struct agent_uplink_stats {
        uint64_t sent;
        uint64_t resent;
        uint64_t bytes_sent;
        uint64_t acked;
        uint64_t duplicates;
        uint64_t rejected;
        uint64_t puback_errors; /* v5 reason codes >= 0x80, e.g. 135 not authorized */
        uint64_t bad_acks;
        int last_puback_reason;
        int64_t last_ack_us; /* wall clock, 0 = never */
        uint32_t inflight;
        bool connected;
};

struct agent_uplink;

int agent_uplink_new(sd_event *e, const struct agent_uplink_opts *o, struct agent_outbox *ob,
                     struct agent_uplink **ret);
struct agent_uplink *agent_uplink_free(struct agent_uplink *u);

int agent_uplink_start(struct agent_uplink *u);
void agent_uplink_stop(struct agent_uplink *u);
/* A batch was appended to the outbox. */
void agent_uplink_kick(struct agent_uplink *u);
/* Certificates changed on disk (SIGHUP): reconnect with them. */
void agent_uplink_reconnect(struct agent_uplink *u);
void agent_uplink_stats(const struct agent_uplink *u, struct agent_uplink_stats *ret);
/* NULL until the connection exists (lazy_connect). */
struct floe_mqtt *agent_uplink_mqtt(struct agent_uplink *u);
bool agent_uplink_started(const struct agent_uplink *u);
void agent_uplink_set_hooks(struct agent_uplink *u, const struct agent_uplink_hooks *h);
/* Connect with other certificate and key files from now on (borrowed: they must outlive
 * the uplink or the next call); reconnect: drop the connection and connect at once. */
int agent_uplink_set_tls_files(struct agent_uplink *u, const char *cert_file, const char *key_file,
                               bool reconnect);
