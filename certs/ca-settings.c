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

#define SETTINGS_TEXT_MAX (2048 + CA_REGISTRY_LOCATION_MAX)

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
        {"validity", "token"}, {"crl", "next_update"},       {"registry", "location"},
        {NULL, NULL},
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
        const char *org, *location;
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
        floe_config_get_string(cfg, "registry", "location", s.registry, &location);
        if (*location && ca_registry_location_problem(location))
                return floe_config_key_error(cfg, "registry", "location", -EINVAL, err, "%s",
                                             ca_registry_location_problem(location));
        if (location != s.registry)
                memmove(s.registry, location, strlen(location) + 1);
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

        if (*s->registry && ca_registry_location_problem(s->registry))
                return -EINVAL;
        text = floe_malloc(SETTINGS_TEXT_MAX);
        if (!text)
                return -ENOMEM;
        n = snprintf(text, SETTINGS_TEXT_MAX,
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
                     "next_update = %s\n"
                     "\n"
                     "[registry]\n"
                     "%s%s\n",
                     ca_key_type_name(s->key_type), s->organization,
                     floe_format_duration(s->backdate_s * US, b[0], sizeof(b[0])),
                     floe_format_duration(s->root_validity_s * US, b[1], sizeof(b[1])),
                     floe_format_duration(s->intermediate_validity_s * US, b[2], sizeof(b[2])),
                     floe_format_duration(s->validity_s[CA_KIND_DEVICE] * US, b[3], sizeof(b[3])),
                     floe_format_duration(s->validity_s[CA_KIND_CLAIM] * US, b[4], sizeof(b[4])),
                     floe_format_duration(s->validity_s[CA_KIND_SERVER] * US, b[5], sizeof(b[5])),
                     floe_format_duration(s->validity_s[CA_KIND_SERVICE] * US, b[6], sizeof(b[6])),
                     floe_format_duration(s->token_validity_s * US, b[7], sizeof(b[7])),
                     floe_format_duration(s->crl_next_update_s * US, b[8], sizeof(b[8])),
                     *s->registry ? "location = " : "# location = (unset: registry.db here)",
                     s->registry);
        if (n < 0 || n >= SETTINGS_TEXT_MAX) {
                floe_free(text);
                return -ENOBUFS;
        }
        *ret = text;
        return 0;
}

/* -- the registry location ------------------------------------------------------------ */

static bool has_prefix(const char *s, const char *prefix)
{
        return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_postgres(const char *s)
{
        return has_prefix(s, "postgresql:") || has_prefix(s, "postgres:");
}

const char *ca_registry_location_problem(const char *s)
{
        size_t len = s ? strlen(s) : 0, scheme;

        if (len == 0)
                return "empty";
        if (len > CA_REGISTRY_LOCATION_MAX)
                return "longer than 1023 bytes";
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return "control characters are not allowed";
        if (s[0] == ' ' || s[len - 1] == ' ' || s[0] == '"')
                return "leading or trailing blanks and a leading '\"' are not allowed";
        if (is_postgres(s))
                return NULL;
        if (has_prefix(s, "sqlite:"))
                return s[7] ? NULL : "sqlite: needs a file name";
        /* Another "scheme:" is a mistake rather than a file name (write sqlite:NAME). */
        scheme = strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
        if (scheme > 0 && s[scheme] == ':' && s[0] >= 'a' && s[0] <= 'z')
                return "expected a file path, sqlite:PATH, postgresql://... or postgres://...";
        return NULL;
}

int ca_registry_location(const char *dir, const char *setting, char *buf, size_t size,
                         bool *ret_file)
{
        const char *path = setting;
        int n;

        if (!dir || !*dir || !setting)
                return -EINVAL;
        if (*setting && ca_registry_location_problem(setting))
                return -EINVAL;
        if (*setting && is_postgres(setting)) {
                n = snprintf(buf, size, "%s", setting);
                if (n < 0 || (size_t)n >= size)
                        return -ENAMETOOLONG;
                *ret_file = false;
                return 0;
        }
        if (!*path)
                path = CA_REGISTRY_FILE;
        else if (has_prefix(path, "sqlite:"))
                path += 7;
        /* registry_open() takes a plain path as SQLite. */
        n = path[0] == '/' ? snprintf(buf, size, "%s", path)
                           : snprintf(buf, size, "%s/%s", dir, path);
        if (n < 0 || (size_t)n >= size)
                return -ENAMETOOLONG;
        *ret_file = true;
        return 0;
}
