/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * One MQTT v5 connection driven by a daemon's sd-event loop: libmosquitto
 * without its own thread or loop. Reconnects with capped full-jitter
 * exponential backoff. Used by floe-agent for the local broker (ingest) and
 * the central broker (uplink, mutual TLS), and by floe-enrolld.
 *
 * Logs at debug only: callers log connections, refusals and losses from
 * on_connect / on_disconnect, naming the peer with floe_mqtt_peer().
 */

#include <mosquitto.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

struct floe_mqtt_opts {
        const char *name; /* for logs: "local", "uplink" */
        const char *host;
        int port;
        const char *client_id; /* NULL: the broker assigns (or the certificate decides) */
        int keepalive_s;
        /* A persistent session needs the v5 Session Expiry property, which
         * libmosquitto 2.0 sends only from its blocking connect: use it only
         * for loopback brokers, where connecting cannot hang. */
        bool persistent;
        uint32_t session_expiry_s;
        /* mutual TLS: all three set, or none */
        const char *ca_file;
        const char *cert_file;
        const char *key_file;
        uint64_t backoff_min_us;
        uint64_t backoff_max_us;
        uint16_t receive_max; /* incoming QoS>0 in flight */
        uint16_t send_max;    /* outgoing QoS>0 in flight */
        /* A connect attempt without CONNACK by then is given up and retried (a peer that
         * drops packets instead of refusing: a firewall, an address of the name that does
         * not answer); 0: 30 s. */
        uint64_t connect_timeout_us;
        /* Plain connections: read the socket through floe_mqtt_read()'s buffer. */
        bool buffered_reads;
};

struct floe_mqtt_callbacks {
        /* rc is the CONNACK reason code; 0 = connected */
        void (*on_connect)(void *ud, int rc);
        void (*on_disconnect)(void *ud, int rc);
        void (*on_message)(void *ud, const struct mosquitto_message *msg,
                           const mosquitto_property *props);
        /* PUBACK for our QoS 1 publish `mid`, with the v5 reason code */
        void (*on_publish)(void *ud, int mid, int reason);
        /* SUBACK: the granted QoS of the first filter, or a v5 reason code >= 0x80 */
        void (*on_subscribe)(void *ud, int mid, int granted);
        /* A connect attempt failed before CONNACK success (network, TLS handshake, the
         * broker refused the certificate, CONNACK refusal): rc is a MOSQ_ERR_* or the
         * CONNACK reason code. Called before the next attempt is scheduled. */
        void (*on_connect_failed)(void *ud, int rc);
};

struct floe_mqtt;

/*
 * libmosquitto reads each packet with three or four read() calls (type, length, the rest).
 * A program that defines read() as a call of this function lets a connection with
 * buffered_reads take its packets from one buffer, refilled by one system call for many
 * packets; every other read() goes to the kernel unchanged. Without such a definition,
 * buffered_reads does nothing.
 */
ssize_t floe_mqtt_read(int fd, void *buf, size_t n);

int floe_mqtt_new(sd_event *e, const struct floe_mqtt_opts *o, const struct floe_mqtt_callbacks *cb,
                  void *ud, struct floe_mqtt **ret);
struct floe_mqtt *floe_mqtt_free(struct floe_mqtt *m);

/* Connect now (and keep reconnecting until stopped). */
int floe_mqtt_start(struct floe_mqtt *m);
/* Send DISCONNECT and stop reconnecting. */
void floe_mqtt_stop(struct floe_mqtt *m);
/* Drop the connection and reconnect at once, re-reading TLS files. */
void floe_mqtt_reconnect(struct floe_mqtt *m);

bool floe_mqtt_connected(const struct floe_mqtt *m);
/* "<name> <host>:<port>", for the caller's log lines. */
const char *floe_mqtt_peer(const struct floe_mqtt *m);
struct mosquitto *floe_mqtt_handle(struct floe_mqtt *m);

/* props: v5 properties, borrowed; may be NULL. */
int floe_mqtt_publish(struct floe_mqtt *m, const char *topic, const void *data, size_t len, int qos,
                      bool retain, const mosquitto_property *props, int *ret_mid);
int floe_mqtt_subscribe(struct floe_mqtt *m, const char *topic, int qos);
/* The same, giving the message id the SUBACK (on_subscribe) will carry. */
int floe_mqtt_subscribe_mid(struct floe_mqtt *m, const char *topic, int qos, int *ret_mid);
int floe_mqtt_unsubscribe(struct floe_mqtt *m, const char *topic);
/* Other client certificate and key files (borrowed: they must outlive m), used from
 * the next connect on; the current connection is not touched. Both files must exist. */
int floe_mqtt_set_tls_files(struct floe_mqtt *m, const char *cert_file, const char *key_file);

struct floe_mqtt_stats {
        uint64_t connects;
        uint64_t connect_failures;
        uint64_t disconnects;
        uint64_t next_retry_us; /* monotonic; 0 when connected */
        int last_rc;
};
void floe_mqtt_stats(const struct floe_mqtt *m, struct floe_mqtt_stats *ret);

/* Full jitter: uniform in [0, min(max, min_us << attempt)], at least 1 ms. */
uint64_t floe_backoff_us(uint64_t min_us, uint64_t max_us, unsigned attempt, uint64_t random);
