/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdint.h>

#include "ca-dir.h"

/*
 * The central mosquitto broker's configuration (mosquitto 2.0, as in Debian
 * bookworm), written by `floe-ca broker-config`. docs/floe-ca.md explains it.
 *
 * Three TLS listeners, per_listener_settings true, each with its own trust
 * anchor, CRL and ACL file:
 *   device   (8883)  cafile root + device CA; CN -> username -> client id;
 *                    acl-device.conf confines a device to floe/v1/<its CN>/...
 *   claim    (8884)  cafile claim CA only; acl-claim.conf allows only
 *                    floe/enroll/v1/<claim CN>/req (write) and .../res (read)
 *   service  (8885, loopback)  cafile service CA only; acl-service.conf
 *                    grants the uploader and the enrollment daemon their topics
 */

struct ca_broker_opts {
        const char *out_dir;      /* written into (created 0700 if missing) */
        const char *install_dir;  /* where out_dir's files will be on the broker host;
                                   * NULL: the absolute path of out_dir */
        const char *hostnames;    /* "broker.example.com,10.0.0.5": the broker's server
                                   * certificate, made if out_dir has none yet */
        const char *bind;         /* address of the device and claim listeners; NULL: all */
        const char *service_bind; /* NULL: 127.0.0.1 */
        uint16_t device_port;     /* 0: 8883 */
        uint16_t claim_port;      /* 0: 8884 */
        uint16_t service_port;    /* 0: 8885 */
        const char *user;         /* a "user" line (whom mosquitto runs as); NULL: none */
        const char *uploader;     /* service CN of the uploader; NULL: floe-uploader */
        const char *enrolld;      /* service CN of the enrollment daemon; NULL: floe-enrolld */
        int64_t now;
};

#define CA_BROKER_CONF      "mosquitto.conf"
#define CA_BROKER_CERT_STEM "broker"

/*
 * Writes OUT/mosquitto.conf, OUT/acl-{device,claim,service}.conf, the trust
 * files OUT/{root,device,claim,service}-ca.pem, the current CRLs
 * OUT/{device,claim,service}.crl.pem and, unless OUT/broker.chain.pem
 * exists, the broker's server certificate OUT/broker.{key,pem,chain.pem}
 * (ret_issued: 1 if it was made now). Configuration, ACL, trust and CRL files
 * are replaced atomically; the key is never overwritten.
 */
int ca_broker_config_write(struct ca_dir *d, const struct ca_broker_opts *o, int *ret_issued);

/* The ACL file text for a listener: "device", "claim" or "service". */
int ca_broker_acl(const char *listener, const struct ca_broker_opts *o, char **ret);

/* "DEVICE,CLAIM,SERVICE" port numbers (1..65535) into o; -EINVAL. */
int ca_broker_parse_ports(const char *s, struct ca_broker_opts *o);
