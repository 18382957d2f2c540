/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca: the operator's certificate authority tool (docs/floe-ca.md). */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include "ca-broker.h"
#include "ca-dir.h"
#include "floe-alloc.h"
#include "floe-config.h"

#ifndef FLOE_VERSION
#define FLOE_VERSION "0.1.0"
#endif

#define MAX_SAN    32
#define MAX_TOKENS 100000

struct globals {
        const char *dir;
        const char *config;
        int64_t now;
};

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: floe-ca [--dir DIR] [--config FILE] COMMAND [OPTIONS]\n"
                "The CA directory is DIR (or $FLOE_CA_DIR); its settings DIR/floe-ca.conf.\n"
                "\n"
                "Commands:\n"
                "  init [--key-type p256|p384|rsa3072] [--organization ORG]\n"
                "       [--root-validity D] [--intermediate-validity D] [--crl-next-update D]\n"
                "  issue-server NAME [--san dns:NAME,ip:ADDR,...] [--validity D] [--csr FILE]\n"
                "       [--out DIR]                 broker certificate (serverAuth)\n"
                "  issue-server NAME --client ...   service identity (clientAuth, service CA);\n"
                "                                   same as issue-service NAME\n"
                "  issue-device IDENTITY [--validity D] [--csr FILE] [--out DIR]\n"
                "  issue-claim ID [--tenant T] [--allow ID,...] [--allow-file FILE] [--reusable]\n"
                "       [--tokens N] [--tokens-for ID,...] [--token-validity D]\n"
                "       [--tokens-out FILE] [--validity D] [--csr FILE] [--out DIR]\n"
                "  revoke --serial HEX | --identity NAME [--reason REASON]\n"
                "  crl [--ca ROLE] [--next-update D] [--out DIR]\n"
                "  list [--json] [--identity NAME] [--kind KIND]\n"
                "  broker-config --out DIR [--hostname H,...] [--ports DEVICE,CLAIM,SERVICE]\n"
                "       [--bind ADDR] [--service-bind ADDR] [--install-dir PATH] [--user USER]\n"
                "       [--uploader NAME] [--enrolld NAME]\n"
                "Durations take units: 90d, 12h, 30min, 45s.\n");
}

static int fail(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* "floe-ca: <message><suffix>" on stderr. */
static void say(const char *suffix, const char *fmt, va_list ap)
{
        fputs("floe-ca: ", stderr);
        vfprintf(stderr, fmt, ap);
        fprintf(stderr, "%s\n", suffix);
}

/* The message and ": <strerror>" if r is not 0; returns the exit status 1. */
static int fail(int r, const char *fmt, ...)
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

/* A usage error: exit status 2. */
static int bad_usage(const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        say(" (floe-ca --help)", fmt, ap);
        va_end(ap);
        return 2;
}

static int parse_seconds(const char *opt, const char *s, uint64_t *ret)
{
        uint64_t us;

        if (floe_parse_duration(s, &us) < 0 || us < 1000000 || us % 1000000)
                return bad_usage("%s: expected a duration of whole seconds like 90d or 12h, "
                                 "got \"%s\"",
                                 opt, s);
        *ret = us / 1000000;
        return 0;
}

static int open_dir(const struct globals *g, struct ca_dir **ret)
{
        struct floe_config_error err = {0};
        char msg[600];
        int r;

        r = ca_dir_open(g->dir, g->config, ret, &err);
        if (r == -ENOENT && !err.msg[0])
                return fail(0, "%s is not a CA directory (run floe-ca init)", g->dir);
        if (r == -EPROTO)
                return fail(0, "%s: registry written by a newer floe-ca", g->dir);
        if (r < 0 && err.msg[0])
                return fail(0, "%s", floe_config_error_format(&err, msg, sizeof(msg)));
        if (r < 0)
                return fail(r, "%s", g->dir);
        return 0;
}

static const char *role_problem(int r)
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

/* -- init ---------------------------------------------------------------------------- */

static int cmd_init(const struct globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"key-type", required_argument, NULL, 'k'},
                {"organization", required_argument, NULL, 'o'},
                {"root-validity", required_argument, NULL, 'R'},
                {"intermediate-validity", required_argument, NULL, 'I'},
                {"crl-next-update", required_argument, NULL, 'N'},
                {0},
        };
        struct ca_settings s;
        int c, r;

        ca_settings_default(&s);
        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'k':
                        r = ca_key_type_from_name(optarg);
                        if (r < 0)
                                return bad_usage("--key-type: p256, p384 or rsa3072");
                        s.key_type = (enum ca_key_type)r;
                        break;
                case 'o':
                        if (strlen(optarg) >= sizeof(s.organization) ||
                            ca_name_check(CA_KIND_CA, optarg) < 0)
                                return bad_usage("--organization: %s",
                                                 ca_name_problem(CA_KIND_CA, optarg) ?: "too long");
                        memcpy(s.organization, optarg, strlen(optarg) + 1);
                        break;
                case 'R':
                        if (parse_seconds("--root-validity", optarg, &s.root_validity_s))
                                return 2;
                        break;
                case 'I':
                        if (parse_seconds("--intermediate-validity", optarg,
                                          &s.intermediate_validity_s))
                                return 2;
                        break;
                case 'N':
                        if (parse_seconds("--crl-next-update", optarg, &s.crl_next_update_s))
                                return 2;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc)
                return bad_usage("init takes no arguments");
        if (s.intermediate_validity_s > s.root_validity_s)
                s.intermediate_validity_s = s.root_validity_s;
        r = ca_dir_init(g->dir, &s, g->now);
        if (r == -EEXIST)
                return fail(0, "%s exists and is not empty: refusing to overwrite a CA", g->dir);
        if (r < 0)
                return fail(r, "init %s", g->dir);
        printf("CA directory %s created (%s keys): root, device, server, claim and service CAs.\n"
               "Keep %s/root/ca.key offline; it is needed again only to re-issue the\n"
               "intermediates or the root CRL.\n",
               g->dir, ca_key_type_name(s.key_type), g->dir);
        return 0;
}

/* -- issue ---------------------------------------------------------------------------- */

static void print_issued(const char *what, const char *name, const struct ca_issued *out)
{
        char when[32];

        printf("%s certificate for %s\n", what, name);
        printf("  serial     %s\n", out->serial);
        printf("  not after  %s\n", ca_format_time(out->not_after, when, sizeof(when)));
        if (*out->key_path)
                printf("  key        %s\n", out->key_path);
        printf("  cert       %s\n", out->cert_path);
        printf("  chain      %s\n", out->chain_path);
}

static int issue_error(int r, enum ca_kind kind, const char *name)
{
        const char *p = ca_name_problem(kind, name);

        if (p)
                return fail(0, "%s: invalid %s: %s", name,
                            kind == CA_KIND_DEVICE   ? "device identity"
                            : kind == CA_KIND_CLAIM  ? "claim name"
                            : kind == CA_KIND_SERVER ? "server DNS name"
                                                     : "service name",
                            p);
        if (r == -EEXIST)
                return fail(0, "%s: output files exist already; refusing to overwrite them", name);
        if (r == -ERANGE)
                return fail(0,
                            "%s: the certificate would outlive its CA; use a shorter "
                            "--validity",
                            name);
        if (r == -EPROTONOSUPPORT)
                return fail(0, "%s: key type not accepted (EC P-256, P-384, RSA 2048-8192)", name);
        if (role_problem(r))
                return fail(0, "%s: cannot use the %s CA: %s", name,
                            ca_role_name((enum ca_role)ca_kind_issuer(kind)), role_problem(r));
        return fail(r, "%s: cannot issue", name);
}

/* Options shared by the issue-* commands. */
struct issue_args {
        struct ca_issue_opts o;
        struct ca_san san[MAX_SAN];
        bool client;
};

static int issue_common_opt(int c, struct issue_args *a)
{
        int r;

        switch (c) {
        case 'v':
                return parse_seconds("--validity", optarg, &a->o.validity_s);
        case 'C':
                a->o.csr_path = optarg;
                return 0;
        case 'O':
                a->o.out_dir = optarg;
                return 0;
        case 's':
                r = ca_san_parse(optarg, a->san, MAX_SAN, &a->o.n_san);
                if (r < 0)
                        return bad_usage("--san: expected dns:NAME, ip:ADDRESS or uri:URI "
                                         "separated by commas, got \"%s\"",
                                         optarg);
                a->o.san = a->san;
                return 0;
        case 'c':
                a->client = true;
                return 0;
        default:
                return 2;
        }
}

static int cmd_issue(const struct globals *g, int argc, char **argv, enum ca_kind kind)
{
        static const struct option opts[] = {
                {"validity", required_argument, NULL, 'v'}, {"csr", required_argument, NULL, 'C'},
                {"out", required_argument, NULL, 'O'},      {"san", required_argument, NULL, 's'},
                {"client", no_argument, NULL, 'c'},         {0},
        };
        struct issue_args a = {.o = {.kind = kind, .now = g->now}};
        struct ca_issued out;
        struct ca_dir *d = NULL;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                if ((c == 's' || c == 'c') && kind != CA_KIND_SERVER)
                        return bad_usage("--san and --client are options of issue-server");
                if (issue_common_opt(c, &a))
                        return 2;
        }
        if (optind + 1 != argc)
                return bad_usage("%s takes one NAME", argv[0]);
        if (a.client) {
                if (a.o.n_san > 0)
                        return bad_usage("a service identity (--client) has no --san");
                a.o.kind = CA_KIND_SERVICE;
        }
        a.o.name = argv[optind];
        if (ca_name_problem(a.o.kind, a.o.name))
                return issue_error(-EINVAL, a.o.kind, a.o.name);
        if (open_dir(g, &d))
                return 1;
        r = ca_dir_issue(d, &a.o, &out);
        ca_dir_close(d);
        if (r < 0)
                return issue_error(r, a.o.kind, a.o.name);
        print_issued(a.o.kind == CA_KIND_SERVER    ? "Server"
                     : a.o.kind == CA_KIND_SERVICE ? "Service"
                                                   : "Device",
                     a.o.name, &out);
        return 0;
}

static int cmd_issue_server(const struct globals *g, int argc, char **argv)
{
        return cmd_issue(g, argc, argv, CA_KIND_SERVER);
}

static int cmd_issue_service(const struct globals *g, int argc, char **argv)
{
        return cmd_issue(g, argc, argv, CA_KIND_SERVICE);
}

static int cmd_issue_device(const struct globals *g, int argc, char **argv)
{
        return cmd_issue(g, argc, argv, CA_KIND_DEVICE);
}

/* -- issue-claim -------------------------------------------------------------------------- */

static int write_tokens(const char *path, const struct ca_claim_token *t, size_t n,
                        const char *tenant)
{
        char *text = NULL;
        size_t len = 0;
        int r;

        r = ca_claim_tokens_format(t, n, tenant, &text, &len);
        if (r < 0)
                return r;
        r = path ? ca_file_write_new(path, text, len, 0600)
                 : (fwrite(text, 1, len, stdout) == len ? 0 : -EIO);
        OPENSSL_cleanse(text, len);
        floe_free(text);
        return r;
}

struct claim_args {
        struct ca_claim_opts o;
        struct ca_names allow, tokens_for;
        const char *tokens_out;
};

/* 0, or the exit status for a bad option. */
static int claim_option(int c, struct claim_args *a)
{
        uint64_t v;
        int r = 0;

        switch (c) {
        case 't':
                a->o.tenant = optarg;
                break;
        case 'a':
                r = ca_names_add_csv(&a->allow, optarg);
                break;
        case 'A':
                r = ca_names_add_file(&a->allow, optarg);
                break;
        case 'r':
                a->o.reusable = true;
                break;
        case 'n':
                if (floe_parse_uint64(optarg, &v) < 0 || v == 0 || v > MAX_TOKENS)
                        return bad_usage("--tokens: a count from 1 to %d", MAX_TOKENS);
                a->o.n_tokens = (size_t)v;
                break;
        case 'f':
                r = ca_names_add_csv(&a->tokens_for, optarg);
                break;
        case 'T':
                return parse_seconds("--token-validity", optarg, &a->o.token_validity_s);
        case 'o':
                a->tokens_out = optarg;
                break;
        case 'v':
                return parse_seconds("--validity", optarg, &a->o.validity_s);
        case 'C':
                a->o.csr_path = optarg;
                break;
        case 'O':
                a->o.out_dir = optarg;
                break;
        default:
                return 2;
        }
        return r < 0 ? fail(r, "%s", optarg) : 0;
}

static int cmd_issue_claim(const struct globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"tenant", required_argument, NULL, 't'},
                {"allow", required_argument, NULL, 'a'},
                {"allow-file", required_argument, NULL, 'A'},
                {"reusable", no_argument, NULL, 'r'},
                {"tokens", required_argument, NULL, 'n'},
                {"tokens-for", required_argument, NULL, 'f'},
                {"token-validity", required_argument, NULL, 'T'},
                {"tokens-out", required_argument, NULL, 'o'},
                {"validity", required_argument, NULL, 'v'},
                {"csr", required_argument, NULL, 'C'},
                {"out", required_argument, NULL, 'O'},
                {0},
        };
        struct claim_args a = {.o = {.now = g->now}};
        struct ca_claim_token *tokens = NULL;
        char cn[CA_CLAIM_ID_MAX + 1] = "";
        struct ca_issued out;
        struct ca_dir *d = NULL;
        size_t n_tokens = 0;
        int c, r, status = 0;

        while (status == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1)
                status = claim_option(c, &a);
        if (status == 0 && optind + 1 != argc)
                status = bad_usage("issue-claim takes one claim ID");
        if (status == 0) {
                a.o.id = argv[optind];
                a.o.allow = (const char *const *)a.allow.v;
                a.o.n_allow = a.allow.n;
                a.o.tokens_for = (const char *const *)a.tokens_for.v;
                a.o.n_tokens_for = a.tokens_for.n;
                if (ca_claim_opts_problem(&a.o))
                        status = fail(0, "%s: %s", a.o.id, ca_claim_opts_problem(&a.o));
                else if (a.tokens_out && access(a.tokens_out, F_OK) == 0)
                        status = fail(0, "%s exists: refusing to overwrite it", a.tokens_out);
                else if (ca_claim_cn(a.o.id, cn, sizeof(cn)) < 0 || open_dir(g, &d))
                        status = 1;
        }
        if (status == 0) {
                struct registry_claim existing;

                r = registry_claim_get(ca_dir_registry(d), cn, &existing);
                if (r == 0)
                        status = fail(0, "claim %s exists already", cn);
        }
        if (status == 0) {
                r = ca_dir_issue_claim(d, &a.o, &out, &tokens, &n_tokens);
                if (r < 0)
                        status = issue_error(r, CA_KIND_CLAIM, cn);
        }
        d = ca_dir_close(d);
        if (status == 0) {
                print_issued("Claim", cn, &out);
                printf("  tenant     %s\n", a.o.tenant && *a.o.tenant ? a.o.tenant : "(any)");
                printf("  allowlist  %zu identit%s%s\n", a.allow.n, a.allow.n == 1 ? "y" : "ies",
                       a.o.reusable ? " (reusable)" : "");
        }
        if (status == 0 && n_tokens > 0) {
                printf("  tokens     %zu, shown once%s%s\n", n_tokens,
                       a.tokens_out ? " in " : " below:", a.tokens_out ? a.tokens_out : "");
                fflush(stdout);
                r = write_tokens(a.tokens_out, tokens, n_tokens, a.o.tenant);
                if (r < 0)
                        status = fail(r, "cannot write the tokens; revoke claim %s", cn);
        }
        ca_claim_tokens_free(tokens, n_tokens);
        ca_names_clear(&a.allow);
        ca_names_clear(&a.tokens_for);
        return status;
}

/* -- revoke, crl --------------------------------------------------------------------------- */

static int cmd_revoke(const struct globals *g, int argc, char **argv)
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
                                return bad_usage("--reason: unspecified, keyCompromise, "
                                                 "CACompromise, affiliationChanged, superseded, "
                                                 "cessationOfOperation or privilegeWithdrawn");
                        reason = (enum ca_reason)r;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc || !serial_arg == !identity)
                return bad_usage("revoke takes --serial HEX or --identity NAME");
        if (serial_arg && ca_serial_normalize(serial_arg, serial) < 0)
                return bad_usage("--serial: expected a hexadecimal serial number, got \"%s\"",
                                 serial_arg);
        if (open_dir(g, &d))
                return 1;
        if (serial_arg)
                r = ca_dir_revoke_serial(d, serial, reason, g->now);
        else
                r = registry_revoke_identity(ca_dir_registry(d), identity, reason, g->now, &n);
        ca_dir_close(d);
        if (r == -ENOENT)
                return fail(0, "%s: no such %s", serial_arg ? serial : identity,
                            serial_arg ? "certificate"
                                       : "identity with unrevoked, unexpired "
                                         "certificates");
        if (r == -EALREADY)
                return fail(0, "%s: already revoked", serial);
        if (r == -EINVAL)
                return fail(0, "%s: a self-signed CA cannot be revoked; replace it", serial);
        if (r < 0)
                return fail(r, "revoke");
        printf("Revoked %zu certificate%s of %s (%s). Run floe-ca crl and reload the broker.\n", n,
               n == 1 ? "" : "s", serial_arg ? serial : identity, ca_reason_name(reason));
        return 0;
}

static int cmd_crl(const struct globals *g, int argc, char **argv)
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

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'a':
                        only = ca_role_from_name(optarg);
                        if (only < 0)
                                return bad_usage("--ca: root, device, server, claim or service");
                        break;
                case 'n':
                        if (parse_seconds("--next-update", optarg, &next))
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
                return bad_usage("crl takes no arguments");
        if (open_dir(g, &d))
                return 1;
        if (!next)
                next = ca_dir_settings(d)->crl_next_update_s;
        for (int role = 0; role < _CA_ROLE_MAX; role++) {
                uint64_t number;
                char when[32];

                if (only >= 0 && role != only)
                        continue;
                r = ca_dir_write_crl(d, (enum ca_role)role, g->now, next, out, &number);
                if (r == -ENOENT && only < 0) {
                        fprintf(stderr, "floe-ca: %s CA: key not present, CRL not renewed\n",
                                ca_role_name((enum ca_role)role));
                        continue;
                }
                if (r < 0) {
                        status = fail(0, "%s CA: cannot write its CRL: %s",
                                      ca_role_name((enum ca_role)role),
                                      role_problem(r) ?: strerror(-r));
                        continue;
                }
                printf("%-8s CRL number %" PRIu64 ", next update %s\n",
                       ca_role_name((enum ca_role)role), number,
                       ca_format_time(g->now + (int64_t)next, when, sizeof(when)));
        }
        ca_dir_close(d);
        return status;
}

/* -- list ------------------------------------------------------------------------------------ */

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

static int cmd_list(const struct globals *g, int argc, char **argv)
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
                                return bad_usage("--kind: device, claim, server, service or ca");
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc)
                return bad_usage("list takes no arguments");
        if (open_dir(g, &d))
                return 1;
        if (json && !(l.array = json_array())) {
                ca_dir_close(d);
                return fail(-ENOMEM, "list");
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
                return fail(r, "list");
        return 0;
}

/* -- broker-config --------------------------------------------------------------------------- */

static int cmd_broker_config(const struct globals *g, int argc, char **argv)
{
        static const struct option opts[] = {
                {"out", required_argument, NULL, 'O'},
                {"hostname", required_argument, NULL, 'H'},
                {"ports", required_argument, NULL, 'p'},
                {"bind", required_argument, NULL, 'b'},
                {"service-bind", required_argument, NULL, 'B'},
                {"install-dir", required_argument, NULL, 'I'},
                {"user", required_argument, NULL, 'u'},
                {"uploader", required_argument, NULL, 'U'},
                {"enrolld", required_argument, NULL, 'E'},
                {0},
        };
        struct ca_broker_opts o = {.now = g->now};
        struct ca_dir *d = NULL;
        int c, r, issued = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                switch (c) {
                case 'O':
                        o.out_dir = optarg;
                        break;
                case 'H':
                        o.hostnames = optarg;
                        break;
                case 'p':
                        if (ca_broker_parse_ports(optarg, &o) < 0)
                                return bad_usage("--ports: DEVICE,CLAIM,SERVICE, e.g. "
                                                 "8883,8884,8885");
                        break;
                case 'b':
                        o.bind = optarg;
                        break;
                case 'B':
                        o.service_bind = optarg;
                        break;
                case 'I':
                        o.install_dir = optarg;
                        break;
                case 'u':
                        o.user = optarg;
                        break;
                case 'U':
                        o.uploader = optarg;
                        break;
                case 'E':
                        o.enrolld = optarg;
                        break;
                default:
                        return 2;
                }
        }
        if (optind != argc || !o.out_dir)
                return bad_usage("broker-config takes --out DIR and no arguments");
        if (open_dir(g, &d))
                return 1;
        r = ca_broker_config_write(d, &o, &issued);
        ca_dir_close(d);
        if (r == -EDESTADDRREQ)
                return fail(0, "%s has no broker certificate yet: give --hostname", o.out_dir);
        if (r == -EINVAL)
                return fail(0, "broker-config: invalid --hostname, --install-dir, --bind, "
                               "--service-bind, --user, --uploader or --enrolld (names are lower "
                               "case, paths absolute, no spaces or '#')");
        if (r < 0)
                return fail(r, "broker-config %s", o.out_dir);
        printf("Broker configuration written to %s/%s%s.\n"
               "mosquitto must be able to read %s/%s.key (chgrp mosquitto, chmod 0640).\n"
               "After floe-ca crl --out %s, send mosquitto SIGHUP to load the new CRLs.\n",
               o.out_dir, CA_BROKER_CONF, issued ? " with a new broker certificate" : "", o.out_dir,
               CA_BROKER_CERT_STEM, o.out_dir);
        return 0;
}

/* -- main ------------------------------------------------------------------------------------- */

static const struct {
        const char *name;
        int (*fn)(const struct globals *g, int argc, char **argv);
} commands[] = {
        {"init", cmd_init},
        {"issue-server", cmd_issue_server},
        {"issue-service", cmd_issue_service},
        {"issue-device", cmd_issue_device},
        {"issue-claim", cmd_issue_claim},
        {"revoke", cmd_revoke},
        {"crl", cmd_crl},
        {"list", cmd_list},
        {"broker-config", cmd_broker_config},
};

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"dir", required_argument, NULL, 'd'},
                {"config", required_argument, NULL, 'c'},
                {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        struct globals g = {.dir = getenv("FLOE_CA_DIR")};
        int c;

        while ((c = getopt_long(argc, argv, "+d:c:h", opts, NULL)) != -1) {
                switch (c) {
                case 'd':
                        g.dir = optarg;
                        break;
                case 'c':
                        g.config = optarg;
                        break;
                case 'V':
                        printf("floe-ca %s\n", FLOE_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        if (!g.dir || !*g.dir)
                return bad_usage("no CA directory: give --dir DIR or set FLOE_CA_DIR");
        g.now = (int64_t)time(NULL);
        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                if (strcmp(argv[optind], commands[i].name) == 0) {
                        int sub_argc = argc - optind;
                        char **sub_argv = argv + optind;

                        optind = 0; /* glibc: restart option parsing */
                        return commands[i].fn(&g, sub_argc, sub_argv);
                }
        }
        return bad_usage("unknown command \"%s\"", argv[optind]);
}
