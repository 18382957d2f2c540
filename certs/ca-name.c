/* SPDX-License-Identifier: Apache-2.0 */
/* Names: enum spellings, the identity grammar per kind, subjectAltName specs. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "ca.h"
#include "floe-alloc.h"
#include "floe-batch.h"

static const char *const role_names[] = {
        [CA_ROLE_ROOT] = "root",   [CA_ROLE_DEVICE] = "device",   [CA_ROLE_SERVER] = "server",
        [CA_ROLE_CLAIM] = "claim", [CA_ROLE_SERVICE] = "service",
};

static const char *const kind_names[] = {
        [CA_KIND_DEVICE] = "device",   [CA_KIND_CLAIM] = "claim", [CA_KIND_SERVER] = "server",
        [CA_KIND_SERVICE] = "service", [CA_KIND_CA] = "ca",
};

static const char *const key_type_names[] = {
        [CA_KEY_P256] = "p256",
        [CA_KEY_P384] = "p384",
        [CA_KEY_RSA3072] = "rsa3072",
};

static const char *const reason_names[] = {
        [CA_REASON_UNSPECIFIED] = "unspecified",
        [CA_REASON_KEY_COMPROMISE] = "keyCompromise",
        [CA_REASON_CA_COMPROMISE] = "CACompromise",
        [CA_REASON_AFFILIATION_CHANGED] = "affiliationChanged",
        [CA_REASON_SUPERSEDED] = "superseded",
        [CA_REASON_CESSATION_OF_OPERATION] = "cessationOfOperation",
        [CA_REASON_PRIVILEGE_WITHDRAWN] = "privilegeWithdrawn",
};

static const char *name_of(const char *const *names, size_t n, int v)
{
        return v >= 0 && (size_t)v < n ? names[v] : NULL;
}

static int from_name(const char *const *names, size_t n, const char *s, bool icase)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < n; i++)
                if (names[i] && (icase ? strcasecmp(names[i], s) : strcmp(names[i], s)) == 0)
                        return (int)i;
        return -EINVAL;
}

const char *ca_role_name(enum ca_role role)
{
        return name_of(role_names, ELEMENTSOF(role_names), role);
}

const char *ca_kind_name(enum ca_kind kind)
{
        return name_of(kind_names, ELEMENTSOF(kind_names), kind);
}

const char *ca_key_type_name(enum ca_key_type type)
{
        return name_of(key_type_names, ELEMENTSOF(key_type_names), type);
}

const char *ca_reason_name(enum ca_reason reason)
{
        return name_of(reason_names, ELEMENTSOF(reason_names), reason);
}

int ca_role_from_name(const char *s)
{
        return from_name(role_names, ELEMENTSOF(role_names), s, false);
}

int ca_kind_from_name(const char *s)
{
        return from_name(kind_names, ELEMENTSOF(kind_names), s, false);
}

int ca_key_type_from_name(const char *s)
{
        return from_name(key_type_names, ELEMENTSOF(key_type_names), s, true);
}

int ca_reason_from_name(const char *s)
{
        return from_name(reason_names, ELEMENTSOF(reason_names), s, true);
}

int ca_kind_issuer(enum ca_kind kind)
{
        switch (kind) {
        case CA_KIND_DEVICE:
                return CA_ROLE_DEVICE;
        case CA_KIND_CLAIM:
                return CA_ROLE_CLAIM;
        case CA_KIND_SERVER:
                return CA_ROLE_SERVER;
        case CA_KIND_SERVICE:
                return CA_ROLE_SERVICE;
        default:
                return -EINVAL;
        }
}

/* -- grammar ------------------------------------------------------------------ */

static bool is_lower_alnum(char c)
{
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* [a-z0-9][a-z0-9-]{0,max-1}: a reason, or NULL. */
static const char *label_problem(const char *s, size_t len, size_t max)
{
        if (len == 0)
                return "empty name part";
        if (len > max)
                return "name part too long";
        for (size_t i = 0; i < len; i++) {
                char c = s[i];

                if (c >= 'A' && c <= 'Z')
                        return "upper-case letters are not allowed";
                if (c == '/' || c == '+' || c == '#')
                        return "'/', '+' and '#' are not allowed (MQTT topic characters)";
                if (!is_lower_alnum(c) && c != '-')
                        return "only a-z, 0-9 and '-' are allowed";
                if (i == 0 && c == '-')
                        return "a name part must start with a-z or 0-9";
        }
        return NULL;
}

static const char *device_problem(const char *s, size_t len)
{
        const char *dot = memchr(s, '.', len), *p;

        if (len > CA_IDENTITY_MAX)
                return "identity longer than 127 bytes";
        if (!dot)
                return "an identity is <tenant>.<device>";
        if (memchr(dot + 1, '.', len - (size_t)(dot - s) - 1))
                return "an identity has exactly one '.'";
        p = label_problem(s, (size_t)(dot - s), 63);
        if (!p)
                p = label_problem(dot + 1, len - (size_t)(dot - s) - 1, 63);
        if (!p && !floe_identity_valid(s, len))
                p = "not a valid identity";
        return p;
}

static const char *claim_problem(const char *s, size_t len)
{
        size_t plen = strlen(CA_CLAIM_PREFIX);
        const char *p;

        if (len > CA_CLAIM_ID_MAX)
                return "claim name longer than 63 bytes";
        if (len < plen || memcmp(s, CA_CLAIM_PREFIX, plen) != 0)
                return "a claim name starts with \"claim-\"";
        p = label_problem(s + plen, len - plen, CA_CLAIM_ID_MAX - plen);
        return p;
}

static const char *service_problem(const char *s, size_t len)
{
        const char *p;

        if (len > CA_SERVICE_MAX)
                return "service name longer than 63 bytes";
        p = label_problem(s, len, CA_SERVICE_MAX);
        if (!p && len >= strlen(CA_CLAIM_PREFIX) && memcmp(s, CA_CLAIM_PREFIX, 6) == 0)
                p = "service names must not start with \"claim-\"";
        return p;
}

static const char *server_problem(const char *s, size_t len)
{
        size_t start = 0;

        if (len > CA_SERVER_MAX)
                return "DNS name longer than 253 bytes";
        for (size_t i = 0; i <= len; i++) {
                const char *p;

                if (i < len && s[i] != '.')
                        continue;
                p = label_problem(s + start, i - start, 63);
                if (p)
                        return p;
                if (s[i - 1] == '-')
                        return "a DNS label must not end with '-'";
                start = i + 1;
        }
        return NULL;
}

static const char *ca_cn_problem(const char *s, size_t len)
{
        if (len > 64)
                return "CA name longer than 64 bytes";
        for (size_t i = 0; i < len; i++)
                if (s[i] < 0x20 || s[i] > 0x7e || s[i] == '/' || s[i] == '+' || s[i] == '#')
                        return "CA names are printable ASCII without '/', '+' and '#'";
        return NULL;
}

const char *ca_name_problem(enum ca_kind kind, const char *name)
{
        size_t len;

        if (!name || !*name)
                return "empty name";
        /* Bound the scan: nothing valid is longer than CA_NAME_MAX. */
        len = strnlen(name, CA_NAME_MAX + 1);
        if (len > CA_NAME_MAX)
                return "name too long";
        /* The dangerous characters first, whatever else is wrong. */
        if (strpbrk(name, "/+#"))
                return "'/', '+' and '#' are not allowed (MQTT topic characters)";
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f)
                        return "control characters and non-ASCII bytes are not allowed";
        if (kind != CA_KIND_CA)
                for (size_t i = 0; i < len; i++)
                        if (name[i] >= 'A' && name[i] <= 'Z')
                                return "upper-case letters are not allowed";
        switch (kind) {
        case CA_KIND_DEVICE:
                return device_problem(name, len);
        case CA_KIND_CLAIM:
                return claim_problem(name, len);
        case CA_KIND_SERVICE:
                return service_problem(name, len);
        case CA_KIND_SERVER:
                return server_problem(name, len);
        case CA_KIND_CA:
                return ca_cn_problem(name, len);
        default:
                return "unknown certificate kind";
        }
}

int ca_name_check(enum ca_kind kind, const char *name)
{
        const char *p = ca_name_problem(kind, name);

        if (!p)
                return 0;
        return strstr(p, "long") ? -ENAMETOOLONG : -EINVAL;
}

int ca_identity_tenant(const char *identity, char *buf, size_t size)
{
        const char *dot;
        size_t len;

        if (ca_name_check(CA_KIND_DEVICE, identity) < 0)
                return -EINVAL;
        dot = strchr(identity, '.');
        len = (size_t)(dot - identity);
        if (len >= size)
                return -ENOBUFS;
        memcpy(buf, identity, len);
        buf[len] = '\0';
        return 0;
}

int ca_claim_cn(const char *id, char *buf, size_t size)
{
        char cn[CA_NAME_MAX + 16];
        size_t plen = strlen(CA_CLAIM_PREFIX);
        int n, r;

        if (!id)
                return -EINVAL;
        if (strncmp(id, CA_CLAIM_PREFIX, plen) == 0)
                n = snprintf(cn, sizeof(cn), "%s", id);
        else
                n = snprintf(cn, sizeof(cn), "%s%s", CA_CLAIM_PREFIX, id);
        if (n < 0 || (size_t)n >= sizeof(cn))
                return -ENAMETOOLONG;
        r = ca_name_check(CA_KIND_CLAIM, cn);
        if (r < 0)
                return r;
        if ((size_t)n >= size)
                return -ENOBUFS;
        memcpy(buf, cn, (size_t)n + 1);
        return 0;
}

/* -- subjectAltName specs --------------------------------------------------------- */

static int san_one(const char *item, size_t len, struct ca_san *ret)
{
        static const struct {
                const char *prefix;
                enum ca_san_type type;
        } types[] = {{"dns:", CA_SAN_DNS}, {"ip:", CA_SAN_IP}, {"uri:", CA_SAN_URI}};
        struct ca_san san = {0};
        const char *v = NULL;
        size_t vlen = 0;

        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                size_t plen = strlen(types[i].prefix);

                if (len > plen && strncasecmp(item, types[i].prefix, plen) == 0) {
                        san.type = types[i].type;
                        v = item + plen;
                        vlen = len - plen;
                        break;
                }
        }
        if (!v)
                return -EINVAL;
        if (vlen >= sizeof(san.value))
                return -ENAMETOOLONG;
        memcpy(san.value, v, vlen);
        san.value[vlen] = '\0';
        switch (san.type) {
        case CA_SAN_DNS:
                if (ca_name_check(CA_KIND_SERVER, san.value) < 0)
                        return -EINVAL;
                break;
        case CA_SAN_IP: {
                unsigned char addr[16];

                if (inet_pton(AF_INET, san.value, addr) != 1 &&
                    inet_pton(AF_INET6, san.value, addr) != 1)
                        return -EINVAL;
                break;
        }
        case CA_SAN_URI:
                if (!strchr(san.value, ':'))
                        return -EINVAL;
                for (const char *p = san.value; *p; p++)
                        if (*p <= 0x20 || *p > 0x7e || *p == '"' || *p == '\\')
                                return -EINVAL;
                break;
        }
        *ret = san;
        return 0;
}

int ca_san_parse(const char *spec, struct ca_san *ret, size_t max, size_t *ret_n)
{
        size_t n = 0;
        const char *p = spec;
        int r;

        if (!spec || !*spec)
                return -EINVAL;
        for (;;) {
                size_t len = strcspn(p, ",");

                if (len == 0)
                        return -EINVAL;
                if (n >= max)
                        return -E2BIG;
                r = san_one(p, len, &ret[n]);
                if (r < 0)
                        return r;
                n++;
                if (!p[len])
                        break;
                p += len + 1;
        }
        *ret_n = n;
        return 0;
}
