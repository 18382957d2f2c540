/* SPDX-License-Identifier: Apache-2.0 */
/* CA settings: defaults and DIR/floe-ca.conf. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "ca-dir.h"
#include "floe-alloc.h"

#define DAY       (86400ULL)
#define MINUTE    (60ULL)
#define US        1000000ULL
#define YEARS_MAX (100 * 366 * DAY)

void ca_settings_default(struct ca_settings *s)
{
        *s = (struct ca_settings){
                .key_type = CA_KEY_P256,
                .organization = "floe",
                .backdate_s = 5 * MINUTE,
                .root_validity_s = 20 * 365 * DAY,
                .intermediate_validity_s = 10 * 365 * DAY,
                .validity_s =
                        {
                                [CA_KIND_DEVICE] = 90 * DAY,
                                [CA_KIND_CLAIM] = 365 * DAY,
                                [CA_KIND_SERVER] = 397 * DAY,
                                [CA_KIND_SERVICE] = 397 * DAY,
                        },
                .token_validity_s = 90 * DAY,
                .crl_next_update_s = 7 * DAY,
        };
}

static const struct floe_config_key known[] = {
        {"ca", "key_type"},    {"ca", "organization"},       {"ca", "backdate"},
        {"validity", "root"},  {"validity", "intermediate"}, {"validity", "device"},
        {"validity", "claim"}, {"validity", "server"},       {"validity", "service"},
        {"validity", "token"}, {"crl", "next_update"},       {NULL, NULL},
};

static int get_seconds(const struct floe_config *cfg, const char *section, const char *key,
                       uint64_t min_s, uint64_t max_s, uint64_t *v, struct floe_config_error *err)
{
        uint64_t us;
        int r;

        r = floe_config_get_duration(cfg, section, key, *v * US, min_s * US, max_s * US, &us, err);
        if (r < 0)
                return r;
        if (us % US)
                return floe_config_key_error(cfg, section, key, -EINVAL, err,
                                             "must be whole seconds");
        *v = us / US;
        return 0;
}

int ca_settings_apply(const struct floe_config *cfg, struct ca_settings *out,
                      struct floe_config_error *err)
{
        static const char *const key_types[] = {"p256", "p384", "rsa3072", NULL};
        struct ca_settings s = *out;
        const char *org;
        int kt, r;

        r = floe_config_check_known(cfg, known, err);
        if (r < 0)
                return r;
        r = floe_config_get_enum(cfg, "ca", "key_type", key_types, s.key_type, &kt, err);
        if (r < 0)
                return r;
        s.key_type = (enum ca_key_type)kt;
        floe_config_get_string(cfg, "ca", "organization", s.organization, &org);
        if (strlen(org) >= sizeof(s.organization) || !*org || ca_name_check(CA_KIND_CA, org) < 0)
                return floe_config_key_error(cfg, "ca", "organization", -EINVAL, err,
                                             "1..64 printable ASCII bytes without '/', '+', '#'");
        if (org != s.organization)
                memmove(s.organization, org, strlen(org) + 1);
        r = get_seconds(cfg, "ca", "backdate", 0, DAY, &s.backdate_s, err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "root", DAY, YEARS_MAX, &s.root_validity_s, err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "intermediate", DAY, YEARS_MAX,
                                &s.intermediate_validity_s, err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "device", 1, YEARS_MAX,
                                &s.validity_s[CA_KIND_DEVICE], err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "claim", 1, YEARS_MAX,
                                &s.validity_s[CA_KIND_CLAIM], err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "server", 1, YEARS_MAX,
                                &s.validity_s[CA_KIND_SERVER], err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "service", 1, YEARS_MAX,
                                &s.validity_s[CA_KIND_SERVICE], err);
        if (r >= 0)
                r = get_seconds(cfg, "validity", "token", 60, YEARS_MAX, &s.token_validity_s, err);
        if (r >= 0)
                r = get_seconds(cfg, "crl", "next_update", 60, 366 * DAY, &s.crl_next_update_s,
                                err);
        if (r < 0)
                return r;
        *out = s;
        return 0;
}

int ca_settings_format(const struct ca_settings *s, char **ret)
{
        char b[9][64];
        char *text;
        int n;

        text = floe_malloc(2048);
        if (!text)
                return -ENOMEM;
        n = snprintf(text, 2048,
                     "# floe-ca settings (docs/floe-ca.md). Written by floe-ca init; durations\n"
                     "# take units: 90d, 12h, 5min.\n"
                     "[ca]\n"
                     "key_type = %s\n"
                     "organization = %s\n"
                     "backdate = %s\n"
                     "\n"
                     "[validity]\n"
                     "root = %s\n"
                     "intermediate = %s\n"
                     "device = %s\n"
                     "claim = %s\n"
                     "server = %s\n"
                     "service = %s\n"
                     "token = %s\n"
                     "\n"
                     "[crl]\n"
                     "next_update = %s\n",
                     ca_key_type_name(s->key_type), s->organization,
                     floe_format_duration(s->backdate_s * US, b[0], sizeof(b[0])),
                     floe_format_duration(s->root_validity_s * US, b[1], sizeof(b[1])),
                     floe_format_duration(s->intermediate_validity_s * US, b[2], sizeof(b[2])),
                     floe_format_duration(s->validity_s[CA_KIND_DEVICE] * US, b[3], sizeof(b[3])),
                     floe_format_duration(s->validity_s[CA_KIND_CLAIM] * US, b[4], sizeof(b[4])),
                     floe_format_duration(s->validity_s[CA_KIND_SERVER] * US, b[5], sizeof(b[5])),
                     floe_format_duration(s->validity_s[CA_KIND_SERVICE] * US, b[6], sizeof(b[6])),
                     floe_format_duration(s->token_validity_s * US, b[7], sizeof(b[7])),
                     floe_format_duration(s->crl_next_update_s * US, b[8], sizeof(b[8])));
        if (n < 0 || n >= 2048) {
                floe_free(text);
                return -ENOBUFS;
        }
        *ret = text;
        return 0;
}
