/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The commands of floe-ca (certs/floe-ca.c has main and the dispatch table;
 * docs/floe-ca.md documents them). Command code prints to stdout and stderr:
 * it is the CLI's, linked from libcerts.a only into floe-ca.
 *
 * A command returns the process exit status: 0 success, 1 failure (the
 * message printed says why), 2 bad usage. Its argv[0] is the command name;
 * options are parsed with getopt_long from optind 0.
 */

#include <stdint.h>

#include "ca-dir.h"

struct ca_cmd_globals {
        const char *dir;    /* the CA directory */
        const char *config; /* --config FILE, or NULL: DIR/floe-ca.conf */
        int64_t now;
};

typedef int (*ca_cmd_fn)(const struct ca_cmd_globals *g, int argc, char **argv);

int ca_cmd_init(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_rotate(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_issue_server(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_issue_service(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_issue_device(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_issue_claim(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_revoke(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_crl(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_list(const struct ca_cmd_globals *g, int argc, char **argv);
int ca_cmd_broker_config(const struct ca_cmd_globals *g, int argc, char **argv);

/* Shared helpers (ca-cmd.c). */

/* "floe-ca: <message>" and ": <strerror>" if r is not 0, on stderr; returns 1. */
int ca_cmd_fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "floe-ca: <message> (floe-ca --help)" on stderr; returns 2. */
int ca_cmd_bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A duration option of whole seconds into *ret: 0, or the exit status 2. */
int ca_cmd_parse_seconds(const char *opt, const char *s, uint64_t *ret);
/* Opens the CA directory: 0, or the exit status 1 after saying why. */
int ca_cmd_open_dir(const struct ca_cmd_globals *g, struct ca_dir **ret);
/* Why a CA could not be used (its key absent, readable by others, ...), or NULL. */
const char *ca_cmd_role_problem(int r);
/* Why a registry location could not be opened (never prints the location: a
 * PostgreSQL one may hold a password), or NULL for errors strerror explains. */
const char *ca_cmd_registry_problem(int r);
