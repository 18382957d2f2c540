/* SPDX-License-Identifier: Apache-2.0 */
/* floe-enrolld's configuration file. */
#include "enroll-settings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const struct floe_config_key known[] = {
        {"enrolld", "ca_dir"},
        {"enrolld", "ca_config"},
        {"enrolld", "validity"},
        {"broker", "host"},
        {"broker", "port"},
        {"broker", "ca_file"},
        {"broker", "cert_file"},
        {"broker", "key_file"},
        {"broker", "client_id"},
        {"broker", "share_group"},
        {"broker", "keepalive"},
        {"broker", "backoff_min"},
        {"broker", "backoff_max"},
        {"broker", "inflight"},
        {"broker", "response_expiry"},
        {"limits", "max_payload"},
        {"limits", "rate_window"},
        {"limits", "claim_rate"},
        {"limits", "renew_rate"},
        {"limits", "renew_replay"},
        {"limits", "rsa_min_bits"},
        {NULL, NULL},
};

#define SEC 1000000ULL

/* A path under the CA directory unless the key sets one. */
static int path_default(const struct floe_config *cfg, const char *key, const char *dir,
                        const char *rel, char *buf, size_t size, const char **ret,
                        struct floe_config_error *err)
{
        floe_config_get_string(cfg, "broker", key, "", ret);
        if (**ret)
                return 0;
        if (snprintf(buf, size, "%s/%s", dir, rel) >= (int)size)
                return floe_config_key_error(cfg, "enrolld", "ca_dir", -ENAMETOOLONG, err,
                                             "path too long");
        *ret = buf;
        return 0;
}

/* Names that go into topics and client ids: one topic level, no wildcards. */
static bool topic_level_ok(const char *s)
{
        if (!*s || strlen(s) > 64)
                return false;
        for (; *s; s++)
                if (*s == '/' || *s == '+' || *s == '#' || (unsigned char)*s <= ' ' ||
                    (unsigned char)*s >= 0x7f)
                        return false;
        return true;
}

static int load_broker(const struct floe_config *cfg, struct enroll_settings *s,
                       struct floe_config_error *err)
{
        int r;

        floe_config_get_string(cfg, "broker", "host", "localhost", &s->host);
        floe_config_get_string(cfg, "broker", "client_id", "", &s->client_id);
        floe_config_get_string(cfg, "broker", "share_group", "floe-enrolld", &s->share_group);
        if (!*s->client_id)
                s->client_id = NULL;
        else if (!topic_level_ok(s->client_id))
                return floe_config_key_error(cfg, "broker", "client_id", -EINVAL, err,
                                             "1..64 printable characters without / + #");
        if (!topic_level_ok(s->share_group))
                return floe_config_key_error(cfg, "broker", "share_group", -EINVAL, err,
                                             "1..64 printable characters without / + #");
        r = path_default(cfg, "ca_file", s->ca_dir, "root/ca.pem", s->ca_file_buf,
                         sizeof(s->ca_file_buf), &s->ca_file, err);
        r = r
                    ?: path_default(cfg, "cert_file", s->ca_dir, "issued/floe-enrolld.chain.pem",
                                    s->cert_file_buf, sizeof(s->cert_file_buf), &s->cert_file, err);
        r = r
                    ?: path_default(cfg, "key_file", s->ca_dir, "issued/floe-enrolld.key",
                                    s->key_file_buf, sizeof(s->key_file_buf), &s->key_file, err);
        r = r ?: floe_config_get_int64(cfg, "broker", "port", 8885, 1, 65535, &s->port, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "keepalive", 30 * SEC, 5 * SEC,
                                                65535 * SEC, &s->keepalive_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "backoff_min", SEC, 1000, 3600 * SEC,
                                                &s->backoff_min_us, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "backoff_max", 60 * SEC, 1000,
                                                86400 * SEC, &s->backoff_max_us, err);
        r = r ?: floe_config_get_uint64(cfg, "broker", "inflight", 32, 1, 1024, &s->inflight, err);
        r = r
                    ?: floe_config_get_duration(cfg, "broker", "response_expiry", 300 * SEC, SEC,
                                                86400 * SEC, &s->response_expiry_us, err);
        if (r < 0)
                return r;
        if (s->backoff_min_us > s->backoff_max_us)
                return floe_config_key_error(cfg, "broker", "backoff_min", -ERANGE, err,
                                             "larger than backoff_max");
        return 0;
}

static int load_limits(const struct floe_config *cfg, struct enroll_policy *p,
                       struct floe_config_error *err)
{
        uint64_t validity = 0, window = 0, replay = 0, size = 0, bits = 0;
        int r;

        r = floe_config_get_duration(cfg, "enrolld", "validity", 0, 60 * SEC, 3650 * 86400 * SEC,
                                     &validity, err);
        r = r
                    ?: floe_config_get_size(cfg, "limits", "max_payload", p->max_payload, 1024,
                                            ENROLL_PAYLOAD_MAX, &size, err);
        r = r
                    ?: floe_config_get_duration(cfg, "limits", "rate_window",
                                                p->rate_window_s * SEC, SEC, 86400 * SEC, &window,
                                                err);
        r = r
                    ?: floe_config_get_uint64(cfg, "limits", "claim_rate", p->claim_rate_limit, 1,
                                              1000000000, &p->claim_rate_limit, err);
        r = r
                    ?: floe_config_get_uint64(cfg, "limits", "renew_rate", p->renew_rate_limit, 1,
                                              1000000000, &p->renew_rate_limit, err);
        r = r
                    ?: floe_config_get_duration(cfg, "limits", "renew_replay",
                                                p->renew_replay_s * SEC, 0, 86400 * SEC, &replay,
                                                err);
        r = r
                    ?: floe_config_get_uint64(cfg, "limits", "rsa_min_bits", p->rsa_min_bits, 2048,
                                              8192, &bits, err);
        if (r < 0)
                return r;
        if (window % SEC)
                return floe_config_key_error(cfg, "limits", "rate_window", -EINVAL, err,
                                             "must be whole seconds");
        p->validity_s = validity / SEC;
        p->max_payload = (size_t)size;
        p->rate_window_s = window / SEC;
        p->renew_replay_s = replay / SEC;
        p->rsa_min_bits = (unsigned)bits;
        return 0;
}

int enroll_settings_load(const struct floe_config *cfg, struct enroll_settings *ret,
                         struct floe_config_error *err)
{
        struct enroll_settings s = {0};
        int r;

        r = floe_config_check_known(cfg, known, err);
        if (r < 0)
                return r;
        floe_config_get_string(cfg, "enrolld", "ca_dir", ENROLL_CA_DIR_DEFAULT, &s.ca_dir);
        floe_config_get_string(cfg, "enrolld", "ca_config", "", &s.ca_config);
        if (!*s.ca_dir)
                return floe_config_key_error(cfg, "enrolld", "ca_dir", -EINVAL, err, "empty");
        if (!*s.ca_config)
                s.ca_config = NULL;
        enroll_policy_default(&s.policy);
        r = load_broker(cfg, &s, err);
        r = r ?: load_limits(cfg, &s.policy, err);
        if (r < 0)
                return r;
        *ret = s;
        /* the derived paths point into the copy */
        if (s.ca_file == s.ca_file_buf)
                ret->ca_file = ret->ca_file_buf;
        if (s.cert_file == s.cert_file_buf)
                ret->cert_file = ret->cert_file_buf;
        if (s.key_file == s.key_file_buf)
                ret->key_file = ret->key_file_buf;
        return 0;
}

int enroll_config_load(const char *path, struct floe_config **ret_cfg, struct enroll_settings *ret,
                       struct floe_config_error *err)
{
        struct floe_config *cfg = NULL;
        int r;

        r = floe_config_load_daemon(path, &cfg, err);
        if (r >= 0)
                r = enroll_settings_load(cfg, ret, err);
        if (r < 0) {
                floe_config_free(cfg);
                return r;
        }
        *ret_cfg = cfg;
        return 0;
}
