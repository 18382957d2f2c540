/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The command line every floe daemon shares:
 *
 *   NAME [--config FILE]                   run
 *   NAME --check-config [--config FILE]
 *   NAME COMMAND [--config FILE]           one of the daemon's commands ("status")
 *   NAME --version | --help
 *
 * plus options of the daemon's own (extra, handled by on_option), and the logging set-up and
 * configuration error report that go with it. Used by floe-uploader; floe-agent and
 * floe-enrolld have the same interface.
 */

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#include "floe-config.h"

struct floe_daemon_cli {
        const char *name; /* "floe-uploader": --version prints "<name> <version>" */
        const char *version;
        const char *config_default;
        void (*usage)(FILE *f);
        /* positional commands allowed (NULL-terminated; NULL: none) */
        const char *const *commands;
        /* more long options (ended by a zero entry; NULL: none); their val must not be 'c',
         * 'C', 'V' or 'h'. on_option gets val and optarg: 0, or a negative errno for a usage
         * error. */
        const struct option *extra;
        int (*on_option)(void *ud, int val, const char *arg);
        void *ud;
};

struct floe_daemon_args {
        const char *config;  /* --config, else config_default */
        bool check;          /* --check-config */
        const char *command; /* a positional command, NULL to run */
};

enum {
        FLOE_DAEMON_RUN = 0,  /* go on with *ret */
        FLOE_DAEMON_EXIT = 1, /* --version or --help was printed: exit 0 */
};

/* FLOE_DAEMON_RUN, FLOE_DAEMON_EXIT, or -EINVAL after printing the usage to stderr (exit 2).
 * --check-config together with a command is a usage error. */
int floe_daemon_parse(const struct floe_daemon_cli *cli, int argc, char **argv,
                      struct floe_daemon_args *ret);

/* floe_log_open(ident), warning about an invalid FLOE_LOG_* setting. */
void floe_daemon_log_open(const char *ident);

/* Logs a configuration error as "FILE:LINE: message" (err's message, else strerror(r)) at
 * LOG_ERR; returns r. */
int floe_daemon_config_error(int r, const struct floe_config_error *err);
