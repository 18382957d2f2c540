/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-daemon.h"

#include <errno.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-log.h"

#define EXTRA_MAX 32

int floe_daemon_parse(const struct floe_daemon_cli *cli, int argc, char **argv,
                      struct floe_daemon_args *ret)
{
        static const struct option common[] = {
                {"config", required_argument, NULL, 'c'},
                {"check-config", no_argument, NULL, 'C'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
        };
        struct option opts[ELEMENTSOF(common) + EXTRA_MAX + 1];
        struct floe_daemon_args a = {.config = cli->config_default};
        size_t n = 0;
        int c;

        for (; n < ELEMENTSOF(common); n++)
                opts[n] = common[n];
        for (const struct option *o = cli->extra; o && o->name && n < ELEMENTSOF(opts) - 1; o++)
                opts[n++] = *o;
        opts[n] = (struct option){0};
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c':
                        a.config = optarg;
                        break;
                case 'C':
                        a.check = true;
                        break;
                case 'V':
                        printf("%s %s\n", cli->name, cli->version);
                        return FLOE_DAEMON_EXIT;
                case 'h':
                        cli->usage(stdout);
                        return FLOE_DAEMON_EXIT;
                default:
                        if (c != '?' && cli->on_option && cli->on_option(cli->ud, c, optarg) == 0)
                                break;
                        cli->usage(stderr);
                        return -EINVAL;
                }
        }
        if (optind < argc) {
                bool known = false;

                for (const char *const *k = cli->commands; k && *k && !known; k++)
                        known = strcmp(*k, argv[optind]) == 0;
                if (!known || optind + 1 != argc || a.check) {
                        cli->usage(stderr);
                        return -EINVAL;
                }
                a.command = argv[optind];
        }
        *ret = a;
        return FLOE_DAEMON_RUN;
}

void floe_daemon_log_open(const char *ident)
{
        if (floe_log_open(ident) < 0)
                log_warning("ignoring an invalid FLOE_LOG_* setting");
}

int floe_daemon_config_error(int r, const struct floe_config_error *err)
{
        struct floe_config_error e = err ? *err : (struct floe_config_error){0};
        char msg[600];

        if (!e.msg[0])
                snprintf(e.msg, sizeof(e.msg), "%s", strerror(r < 0 ? -r : r));
        log_error("%s", floe_config_error_format(&e, msg, sizeof(msg)));
        return r;
}
