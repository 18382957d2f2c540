/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * floe-enrolld's MQTT v5 connection to the broker's service listener, driven
 * by the daemon's sd-event loop: libmosquitto without its own thread or loop,
 * mutual TLS, clean sessions, reconnects with capped full-jitter exponential
 * backoff. (The same integration as agent/mqtt.c, which floe-enrolld does not
 * link; publishing here carries MQTT v5 properties.)
 */

#include <mosquitto.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

struct enroll_mqtt_opts {
        const char *name; /* for logs */
        const char *host;
        int port;
        const char *client_id; /* NULL: the broker assigns (or the certificate decides) */
        int keepalive_s;
        /* mutual TLS: all three set, or none */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        uint64_t backoff_min_us;
        uint64_t backoff_max_us;
        uint16_t receive_max; /* incoming QoS>0 in flight */
        uint16_t send_max;    /* outgoing QoS>0 in flight */
};

struct enroll_mqtt_callbacks {
        /* rc is the CONNACK reason code; 0 = connected */
        void (*on_connect)(void *ud, int rc);
        void (*on_disconnect)(void *ud, int rc);
        void (*on_message)(void *ud, const struct mosquitto_message *msg,
                           const mosquitto_property *props);
        /* PUBACK for our QoS 1 publish `mid`, with the v5 reason code */
        void (*on_publish)(void *ud, int mid, int reason);
        /* SUBACK: the granted QoS of the first filter, or a v5 reason code >= 0x80 */
        void (*on_subscribe)(void *ud, int mid, int granted);
};

struct enroll_mqtt;

int enroll_mqtt_new(sd_event *e, const struct enroll_mqtt_opts *o,
                    const struct enroll_mqtt_callbacks *cb, void *ud, struct enroll_mqtt **ret);
struct enroll_mqtt *enroll_mqtt_free(struct enroll_mqtt *m);

/* Connect now (and keep reconnecting until stopped). */
int enroll_mqtt_start(struct enroll_mqtt *m);
/* Send DISCONNECT and stop reconnecting. */
void enroll_mqtt_stop(struct enroll_mqtt *m);
/* Drop the connection and reconnect at once, re-reading TLS files. */
void enroll_mqtt_reconnect(struct enroll_mqtt *m);

bool enroll_mqtt_connected(const struct enroll_mqtt *m);
struct mosquitto *enroll_mqtt_handle(struct enroll_mqtt *m);

/* QoS 1 publish with v5 properties (borrowed; may be NULL). */
int enroll_mqtt_publish(struct enroll_mqtt *m, const char *topic, const void *data, size_t len,
                        const mosquitto_property *props, int *ret_mid);
int enroll_mqtt_subscribe(struct enroll_mqtt *m, const char *topic, int qos);

struct enroll_mqtt_stats {
        uint64_t connects;
        uint64_t connect_failures;
        uint64_t disconnects;
        uint64_t next_retry_us; /* monotonic; 0 when connected */
        int last_rc;
};
void enroll_mqtt_stats(const struct enroll_mqtt *m, struct enroll_mqtt_stats *ret);

/* Full jitter: uniform in [0, min(max, min_us << attempt)], at least 1 ms. */
uint64_t enroll_backoff_us(uint64_t min_us, uint64_t max_us, unsigned attempt, uint64_t random);
