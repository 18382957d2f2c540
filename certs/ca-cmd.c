/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca: messages, option helpers and opening the CA directory. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ca-cmd.h"
#include "floe-config.h"

/* "floe-ca: <message><suffix>" on stderr. */
static void say(const char *suffix, const char *fmt, va_list ap)
{
        fputs("floe-ca: ", stderr);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "%s\n", suffix);
}

int ca_cmd_fail(int r, const char *fmt, ...)
{
        char suffix[128] = "";
        va_list ap;

        if (r)
                snprintf(suffix, sizeof(suffix), ": %s", strerror(r < 0 ? -r : r));
        va_start(ap, fmt);
        say(suffix, fmt, ap);
        va_end(ap);
        return 1;
}

int ca_cmd_bad_usage(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(" (floe-ca --help)", fmt, ap);
        va_end(ap);
        return 2;
}

int ca_cmd_parse_seconds(const char *opt, const char *s, uint64_t *ret)
{
        uint64_t us;

        if (floe_parse_duration(s, &us) < 0 || us < 1000000 || us % 1000000)
                return ca_cmd_bad_usage("%s: expected a duration of whole seconds like 90d or "
                                        "12h, got \"%s\"",
                                        opt, s);
        *ret = us / 1000000;
        return 0;
}

const char *ca_cmd_registry_problem(int r)
{
        switch (r) {
        case -EPROTONOSUPPORT:
                return "this floe-ca cannot use a PostgreSQL registry (no PostgreSQL backend "
                       "in this build); see [registry] location in floe-ca.conf";
        case -EPROTO:
                return "registry written by a newer floe-ca";
        default:
                return NULL;
        }
}

int ca_cmd_open_dir(const struct ca_cmd_globals *g, struct ca_dir **ret)
{
        struct floe_config_error err = {0};
        char msg[600];
        int r;

        r = ca_dir_open(g->dir, g->config, ret, &err);
        if (r == -ENOENT && !err.msg[0])
                return ca_cmd_fail(0, "%s is not a CA directory (run floe-ca init)", g->dir);
        if (r < 0 && ca_cmd_registry_problem(r))
                return ca_cmd_fail(0, "%s: %s", g->dir, ca_cmd_registry_problem(r));
        if (r < 0 && err.msg[0])
                return ca_cmd_fail(0, "%s", floe_config_error_format(&err, msg, sizeof(msg)));
        if (r < 0)
                return ca_cmd_fail(r, "%s", g->dir);
        return 0;
}

const char *ca_cmd_role_problem(int r)
{
        switch (r) {
        case -ENOENT:
                return "its key is not in the CA directory (kept offline?)";
        case -EPERM:
                return "its key file may be read by group or others: chmod 0600";
        case -EBADMSG:
                return "its certificate or key is unreadable or they do not match";
        default:
                return NULL;
        }
}
