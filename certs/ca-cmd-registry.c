/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca revoke, crl and list. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "ca-cmd.h"

int ca_cmd_revoke(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"serial", required_argument, NULL, 's'},
                {"identity", required_argument, NULL, 'i'},
                {"reason", required_argument, NULL, 'r'},
                {0},
        };
        const char *serial_arg = NULL, *identity = NULL;
        char serial[CA_SERIAL_HEX_MAX + 1];
        enum ca_reason reason = CA_REASON_UNSPECIFIED;
        struct ca_dir *d = NULL;
        size_t n = 1;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 's':
                        serial_arg = optarg;
                        break;
                case 'i':
                        identity = optarg;
                        break;
                case 'r':
                        r = ca_reason_from_name(optarg);
                        if (r < 0)
                                return ca_cmd_bad_usage(
                                        "--reason: unspecified, keyCompromise, "
                                        "CACompromise, affiliationChanged, superseded, "
                                        "cessationOfOperation or privilegeWithdrawn");
                        reason = (enum ca_reason)r;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc || !serial_arg == !identity)
                return ca_cmd_bad_usage("revoke takes --serial HEX or --identity NAME");
        if (serial_arg && ca_serial_normalize(serial_arg, serial) < 0)
                return ca_cmd_bad_usage(
                        "--serial: expected a hexadecimal serial number, got \"%s\"", serial_arg);
        if (ca_cmd_open_dir(g, &d))
                return 1;
        if (serial_arg)
                r = ca_dir_revoke_serial(d, serial, reason, g->now);
        else
                r = registry_revoke_identity(ca_dir_registry(d), identity, reason, g->now, &n);
        ca_dir_close(d);
        if (r == -ENOENT)
                return ca_cmd_fail(0, "%s: no such %s", serial_arg ? serial : identity,
                                   serial_arg ? "certificate"
                                              : "identity with unrevoked, unexpired "
                                                "certificates");
        if (r == -EALREADY)
                return ca_cmd_fail(0, "%s: already revoked", serial);
        if (r == -EINVAL)
                return ca_cmd_fail(0, "%s: a self-signed CA cannot be revoked; replace it", serial);
        if (r < 0)
                return ca_cmd_fail(r, "revoke");
        printf("Revoked %zu certificate%s of %s (%s). Run floe-ca crl and reload the broker.\n", n,
               n == 1 ? "" : "s", serial_arg ? serial : identity, ca_reason_name(reason));
        return 0;
}

int ca_cmd_crl(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"ca", required_argument, NULL, 'a'},
                {"next-update", required_argument, NULL, 'n'},
                {"out", required_argument, NULL, 'O'},
                {0},
        };
        const char *out = NULL;
        uint64_t next = 0;
        int only = -1, c, r, status = 0;
        struct ca_dir *d = NULL;
        struct stat st;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        only = ca_role_from_name(optarg);
                        if (only < 0)
                                return ca_cmd_bad_usage(
                                        "--ca: root, device, server, claim or service");
                        break;
                case 'n':
                        if (ca_cmd_parse_seconds("--next-update", optarg, &next))
                                return 2;
                        break;
                case 'O':
                        out = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc)
                return ca_cmd_bad_usage("crl takes no arguments");
        /* Else a missing --out would read as a missing key (-ENOENT) below. */
        if (out && (stat(out, &st) < 0 || !S_ISDIR(st.st_mode)))
                return ca_cmd_fail(0, "--out %s: not a directory", out);
        if (ca_cmd_open_dir(g, &d))
                return 1;
        if (!next)
                next = ca_dir_settings(d)->crl_next_update_s;
        for (int role = 0; role < _CA_ROLE_MAX; role++) {
                uint64_t number;
                size_t gens = 1;
                char when[32];

                if (only >= 0 && role != only)
                        continue;
                r = ca_dir_write_crls(d, (enum ca_role)role, g->now, next, out, &number, &gens);
                if (r == -ENOENT && only < 0) {
                        fprintf(stderr, "floe-ca: %s CA: key not present, CRL not renewed\n",
                                ca_role_name((enum ca_role)role));
                        continue;
                }
                if (r == -ENOKEY) {
                        status = ca_cmd_fail(0,
                                             "%s CA: the key of an earlier generation "
                                             "(gen-N/ca.key) is missing: its last CRL stays in "
                                             "crl.pem until it expires, the others were renewed",
                                             ca_role_name((enum ca_role)role));
                        continue;
                }
                if (r < 0) {
                        status = ca_cmd_fail(0, "%s CA: cannot write its CRL: %s",
                                             ca_role_name((enum ca_role)role),
                                             ca_cmd_role_problem(r) ?: strerror(-r));
                        continue;
                }
                printf("%-8s CRL number %" PRIu64 ", next update %s",
                       ca_role_name((enum ca_role)role), number,
                       ca_format_time(g->now + (int64_t)next, when, sizeof(when)));
                if (gens > 1)
                        printf(" (and the CRL%s of %zu earlier generation%s)", gens > 2 ? "s" : "",
                               gens - 1, gens > 2 ? "s" : "");
                putchar('\n');
        }
        ca_dir_close(d);
        return status;
}

struct list_ctx {
        int64_t now;
        json_t *array; /* --json */
        size_t n;
};

static int list_one(const struct registry_cert *c, void *userdata)
{
        struct list_ctx *l = userdata;
        char na[32];
        json_t *o = NULL;
        int r;

        l->n++;
        if (l->array) {
                r = registry_cert_json(c, l->now, &o);
                if (r < 0)
                        return r;
                return json_array_append_new(l->array, o) < 0 ? -ENOMEM : 0;
        }
        printf("%-40s %-7s %-34s %-7s %s\n", c->identity, ca_kind_name(c->kind), c->serial,
               registry_status_name(registry_cert_status(c, l->now)),
               ca_format_time(c->not_after, na, sizeof(na)));
        return 0;
}

int ca_cmd_list(const struct ca_cmd_globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'j'},
                {"identity", required_argument, NULL, 'i'},
                {"kind", required_argument, NULL, 'k'},
                {0},
        };
        struct registry_filter f = REGISTRY_FILTER_ALL;
        struct list_ctx l = {.now = g->now};
        struct ca_dir *d = NULL;
        bool json = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'i':
                        f.identity = optarg;
                        break;
                case 'k':
                        f.kind = ca_kind_from_name(optarg);
                        if (f.kind < 0)
                                return ca_cmd_bad_usage(
                                        "--kind: device, claim, server, service or ca");
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc)
                return ca_cmd_bad_usage("list takes no arguments");
        if (ca_cmd_open_dir(g, &d))
                return 1;
        if (json && !(l.array = json_array())) {
                ca_dir_close(d);
                return ca_cmd_fail(-ENOMEM, "list");
        }
        if (!json)
                printf("%-40s %-7s %-34s %-7s %s\n", "IDENTITY", "KIND", "SERIAL", "STATUS",
                       "NOT AFTER");
        r = registry_cert_foreach(ca_dir_registry(d), &f, list_one, &l);
        ca_dir_close(d);
        if (r >= 0 && json) {
                r = json_dumpf(l.array, stdout, JSON_INDENT(2)) < 0 ? -EIO : 0;
                fputc('\n', stdout);
        }
        json_decref(l.array);
        if (r < 0)
                return ca_cmd_fail(r, "list");
        return 0;
}
