/* SPDX-License-Identifier: Apache-2.0 */
/* The mosquitto configuration of the central broker. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ca-broker.h"
#include "ca-dir-internal.h"
#include "floe-alloc.h"
#include "floe-config.h"

#define MAX_HOSTNAMES 16

struct sbuf {
        char *p;
        size_t len, cap;
        int err;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
        va_list ap;
        int n;

        if (b->err)
                return;
        for (;;) {
                size_t avail = b->cap - b->len;

                va_start(ap, fmt);
                n = vsnprintf(b->p ? b->p + b->len : NULL, avail, fmt, ap);
                va_end(ap);
                if (n < 0) {
                        b->err = -EINVAL;
                        return;
                }
                if ((size_t)n < avail) {
                        b->len += (size_t)n;
                        return;
                }
                size_t cap = (b->cap ? b->cap : 1024) * 2 + (size_t)n;
                char *p = floe_realloc(b->p, cap);

                if (!p) {
                        b->err = -ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
}

static int sb_take(struct sbuf *b, char **ret)
{
        if (b->err || !b->p) {
                floe_free(b->p);
                return b->err ? b->err : -EINVAL;
        }
        *ret = b->p;
        return 0;
}

int ca_broker_acl(const char *listener, const struct ca_broker_opts *o, char **ret)
{
        const char *uploader = o->uploader ? o->uploader : "floe-uploader";
        const char *enrolld = o->enrolld ? o->enrolld : "floe-enrolld";
        struct sbuf b = {0};

        if (ca_name_check(CA_KIND_SERVICE, uploader) < 0 ||
            ca_name_check(CA_KIND_SERVICE, enrolld) < 0)
                return -EINVAL;
        sb_printf(&b,
                  "# mosquitto ACL of the floe %s listener, written by floe-ca broker-config.\n"
                  "# Username = certificate CN (use_identity_as_username); DESIGN.md, \"Identity\n"
                  "# and topics\". mosquitto checks reads when it delivers a message, against\n"
                  "# the ACL of the listener the receiving client is connected to.\n",
                  listener);
        if (strcmp(listener, "device") == 0) {
                sb_printf(&b, "# Devices: username = client id = CN = <tenant>.<device>.\n"
                              "pattern write floe/v1/%%u/batch\n"
                              "pattern read floe/v1/%%u/ack\n"
                              "pattern write floe/v1/%%u/status\n"
                              "# Certificate renewal over the device connection (floe-enrolld).\n"
                              "pattern write floe/enroll/v1/%%u/req\n"
                              "pattern read floe/enroll/v1/%%u/res/#\n");
        } else if (strcmp(listener, "claim") == 0) {
                sb_printf(&b, "# Claims: username = client id = CN = claim-<id>. Enrollment only;\n"
                              "# res/# also matches .../res itself.\n"
                              "pattern write floe/enroll/v1/%%u/req\n"
                              "pattern read floe/enroll/v1/%%u/res/#\n");
        } else if (strcmp(listener, "service") == 0) {
                sb_printf(&b,
                          "# Services: username = CN of a service certificate.\n"
                          "user %s\n"
                          "topic read floe/v1/+/batch\n"
                          "topic read floe/v1/+/status\n"
                          "topic write floe/v1/+/ack\n"
                          "\n"
                          "user %s\n"
                          "topic read floe/enroll/v1/+/req\n"
                          "topic write floe/enroll/v1/+/res/#\n",
                          uploader, enrolld);
        } else {
                floe_free(b.p);
                return -EINVAL;
        }
        return sb_take(&b, ret);
}

static void listener_common(struct sbuf *b, const char *dir, const char *ca, const char *crl,
                            const char *acl)
{
        sb_printf(b,
                  "protocol mqtt\n"
                  "allow_anonymous false\n"
                  "certfile %s/%s.chain.pem\n"
                  "keyfile %s/%s.key\n"
                  "cafile %s/%s\n"
                  "crlfile %s/%s\n"
                  "require_certificate true\n"
                  "use_identity_as_username true\n"
                  "tls_version tlsv1.2\n"
                  "acl_file %s/%s\n",
                  dir, CA_BROKER_CERT_STEM, dir, CA_BROKER_CERT_STEM, dir, ca, dir, crl, dir, acl);
}

static int config_text(const struct ca_broker_opts *o, const char *dir, char **ret)
{
        struct sbuf b = {0};
        const char *bind = o->bind ? o->bind : "";
        const char *sbind = o->service_bind ? o->service_bind : "127.0.0.1";

        sb_printf(&b, "# mosquitto configuration of the floe central broker, written by\n"
                      "# floe-ca broker-config: regenerate rather than edit (docs/floe-ca.md).\n"
                      "# Usable on its own (mosquitto -c) or as /etc/mosquitto/conf.d/floe.conf.\n"
                      "#\n"
                      "# Every listener has its own allow_anonymous, acl_file and trust anchor\n"
                      "# (per_listener_settings must come before the listeners).\n"
                      "per_listener_settings true\n"
                      "# Global: no Nagle delay on small messages such as enrollment answers.\n"
                      "set_tcp_nodelay true\n"
                      "# Global: the uploaders' shared subscription is sent a whole fleet's\n"
                      "# unacknowledged batches (agents x [uplink] inflight); mosquitto's default\n"
                      "# of 1000 queued messages per client would drop the rest until the agents\n"
                      "# resend them.\n"
                      "max_queued_messages 1000000\n");
        if (o->user)
                sb_printf(&b, "user %s\n", o->user);
        sb_printf(&b,
                  "\n# Device listener: devices with a certificate of the device CA. The CN\n"
                  "# becomes the username and the client id, so a device cannot choose\n"
                  "# another's id or session. tls_version is the minimum.\n"
                  "listener %u%s%s\n",
                  o->device_port ? o->device_port : 8883, *bind ? " " : "", bind);
        listener_common(&b, dir, "device-ca.pem", "device.crl.pem", "acl-device.conf");
        sb_printf(&b, "use_username_as_clientid true\n");
        sb_printf(&b,
                  "\n# Claim listener: first enrollment with a claim certificate; trusts the\n"
                  "# claim CA only and allows nothing but the enrollment topics.\n"
                  "listener %u%s%s\n",
                  o->claim_port ? o->claim_port : 8884, *bind ? " " : "", bind);
        listener_common(&b, dir, "claim-ca.pem", "claim.crl.pem", "acl-claim.conf");
        sb_printf(&b, "use_username_as_clientid true\n");
        sb_printf(&b,
                  "\n# Service listener (loopback): floe-uploader and floe-enrolld with\n"
                  "# certificates of the service CA. Services choose their client ids, so\n"
                  "# several instances can share one certificate.\n"
                  "listener %u %s\n",
                  o->service_port ? o->service_port : 8885, sbind);
        listener_common(&b, dir, "service-ca.pem", "service.crl.pem", "acl-service.conf");
        sb_printf(&b, "use_username_as_clientid false\n");
        return sb_take(&b, ret);
}

static int copy_file(const char *from, const char *to)
{
        char *data = NULL;
        size_t len = 0;
        int r;

        r = ca_file_read(from, 4 * 1024 * 1024, &data, &len);
        if (r < 0)
                return r;
        r = ca_file_replace(to, data, len, 0644);
        floe_free(data);
        return r;
}

static int write_text(const char *dir, const char *name, const char *text)
{
        char path[PATH_MAX];
        int r = ca_path(path, sizeof(path), dir, name, NULL);

        return r < 0 ? r : ca_file_replace(path, text, strlen(text), 0644);
}

static int server_cert(struct ca_dir *d, const struct ca_broker_opts *o, int *issued)
{
        struct ca_san san[MAX_HOSTNAMES + 2];
        char name[CA_SERVER_MAX + 1] = "";
        struct ca_issue_opts io;
        struct ca_issued out;
        size_t n = 0;
        char path[PATH_MAX];
        struct stat st;
        const char *p;
        int r;

        r = ca_path(path, sizeof(path), o->out_dir, CA_BROKER_CERT_STEM ".chain.pem", NULL);
        if (r < 0)
                return r;
        if (lstat(path, &st) == 0) {
                *issued = 0;
                return 0;
        }
        if (!o->hostnames || !*o->hostnames)
                return -EDESTADDRREQ; /* no certificate yet and no name to make one for */
        for (p = o->hostnames; *p && n < MAX_HOSTNAMES;) {
                size_t len = strcspn(p, ",");
                unsigned char addr[16];

                if (len == 0 || len >= sizeof(san[n].value))
                        return -EINVAL;
                memcpy(san[n].value, p, len);
                san[n].value[len] = '\0';
                if (inet_pton(AF_INET, san[n].value, addr) == 1 ||
                    inet_pton(AF_INET6, san[n].value, addr) == 1) {
                        san[n].type = CA_SAN_IP;
                } else {
                        san[n].type = CA_SAN_DNS;
                        if (ca_name_check(CA_KIND_SERVER, san[n].value) < 0)
                                return -EINVAL;
                        if (!*name)
                                memcpy(name, san[n].value, len + 1);
                }
                n++;
                p += len + (p[len] == ',');
        }
        if (*p)
                return -E2BIG;
        /* The service listener is reached as 127.0.0.1 or localhost. */
        san[n++] = (struct ca_san){.type = CA_SAN_IP, .value = "127.0.0.1"};
        if (strcmp(name, "localhost") != 0)
                san[n++] = (struct ca_san){.type = CA_SAN_DNS, .value = "localhost"};
        if (!*name)
                memcpy(name, "localhost", sizeof("localhost"));
        io = (struct ca_issue_opts){
                .kind = CA_KIND_SERVER,
                .name = name,
                .san = san,
                .n_san = n,
                .out_dir = o->out_dir,
                .file_stem = CA_BROKER_CERT_STEM,
                .now = o->now,
        };
        r = ca_dir_issue(d, &io, &out);
        if (r < 0)
                return r;
        *issued = 1;
        return 0;
}

int ca_broker_config_write(struct ca_dir *d, const struct ca_broker_opts *o, int *ret_issued)
{
        static const struct {
                enum ca_role role;
                const char *from;
                const char *to;
        } copies[] = {
                {CA_ROLE_ROOT, "ca.pem", "root-ca.pem"},
                {CA_ROLE_DEVICE, "crl.pem", "device.crl.pem"},
                {CA_ROLE_CLAIM, "crl.pem", "claim.crl.pem"},
                {CA_ROLE_SERVICE, "crl.pem", "service.crl.pem"},
        };
        /* A listener's cafile: its CA up to the anchor, and live earlier generations. */
        static const struct {
                enum ca_role role;
                const char *to;
        } trusts[] = {
                {CA_ROLE_DEVICE, "device-ca.pem"},
                {CA_ROLE_CLAIM, "claim-ca.pem"},
                {CA_ROLE_SERVICE, "service-ca.pem"},
        };
        static const char *const acls[] = {"device", "claim", "service"};
        const char *words[] = {o->bind, o->service_bind, o->user};
        char install[PATH_MAX], from[PATH_MAX], to[PATH_MAX], name[32];
        char *text = NULL;
        int issued = 0, r;

        if (!o->out_dir || !*o->out_dir)
                return -EINVAL;
        /* Words of mosquitto.conf: no quoting there, a space, '#' or newline would change
         * the configuration. */
        for (size_t i = 0; i < ELEMENTSOF(words); i++)
                if (words[i] && (!*words[i] || strpbrk(words[i], " \t\r\n#")))
                        return -EINVAL;
        if (mkdir(o->out_dir, 0700) < 0 && errno != EEXIST)
                return -errno;
        if (o->install_dir) {
                if (o->install_dir[0] != '/' || strlen(o->install_dir) >= sizeof(install))
                        return -EINVAL;
                memcpy(install, o->install_dir, strlen(o->install_dir) + 1);
        } else if (!realpath(o->out_dir, install)) {
                return -errno;
        }
        /* mosquitto.conf has no quoting: a path with spaces or '#' would not parse. */
        if (strpbrk(install, " \t\r\n#"))
                return -EINVAL;
        r = server_cert(d, o, &issued);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(copies); i++) {
                r = ca_dir_role_file(d, copies[i].role, copies[i].from, from, sizeof(from));
                if (r >= 0)
                        r = ca_path(to, sizeof(to), o->out_dir, copies[i].to, NULL);
                if (r >= 0)
                        r = copy_file(from, to);
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(trusts); i++) {
                size_t len = 0;

                r = ca_dir_trust_bundle(d, trusts[i].role, o->now, &text, &len);
                if (r >= 0)
                        r = ca_path(to, sizeof(to), o->out_dir, trusts[i].to, NULL);
                if (r >= 0)
                        r = ca_file_replace(to, text, len, 0644);
                floe_free(text);
                text = NULL;
        }
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(acls); i++) {
                r = ca_broker_acl(acls[i], o, &text);
                snprintf(name, sizeof(name), "acl-%s.conf", acls[i]);
                if (r >= 0)
                        r = write_text(o->out_dir, name, text);
                floe_free(text);
                text = NULL;
        }
        if (r >= 0)
                r = config_text(o, install, &text);
        if (r >= 0)
                r = write_text(o->out_dir, CA_BROKER_CONF, text);
        floe_free(text);
        if (r >= 0 && ret_issued)
                *ret_issued = issued;
        return r;
}

static int parse_port(const char *s, size_t len, uint16_t *ret)
{
        char buf[8];
        uint64_t v;

        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = '\0';
        if (floe_parse_uint64(buf, &v) < 0 || v == 0 || v > 65535)
                return -EINVAL;
        *ret = (uint16_t)v;
        return 0;
}

int ca_broker_parse_ports(const char *s, struct ca_broker_opts *o)
{
        uint16_t ports[3];
        size_t i = 0;

        for (;;) {
                size_t len = strcspn(s, ",");

                if (i == 3 || parse_port(s, len, &ports[i++]) < 0)
                        return -EINVAL;
                if (!s[len])
                        break;
                s += len + 1;
        }
        if (i != 3)
                return -EINVAL;
        o->device_port = ports[0];
        o->claim_port = ports[1];
        o->service_port = ports[2];
        return 0;
}
