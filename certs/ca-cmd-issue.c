/* SPDX-License-Identifier: Apache-2.0 */
/* floe-ca issue-server, issue-service, issue-device, issue-claim. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ca-cmd.h"
#include "floe-alloc.h"
#include "floe-config.h"

#define MAX_SAN    32
#define MAX_TOKENS 100000

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
                return ca_cmd_fail(0, "%s: invalid %s: %s", name,
                                   kind == CA_KIND_DEVICE   ? "device identity"
                                   : kind == CA_KIND_CLAIM  ? "claim name"
                                   : kind == CA_KIND_SERVER ? "server DNS name"
                                                            : "service name",
                                   p);
        if (r == -EEXIST)
                return ca_cmd_fail(0, "%s: output files exist already; refusing to overwrite them",
                                   name);
        if (r == -ERANGE)
                return ca_cmd_fail(0,
                                   "%s: the certificate would outlive its CA; use a shorter "
                                   "--validity",
                                   name);
        if (r == -EPROTONOSUPPORT)
                return ca_cmd_fail(0, "%s: key type not accepted (EC P-256, P-384, RSA 2048-8192)",
                                   name);
        if (ca_cmd_role_problem(r))
                return ca_cmd_fail(0, "%s: cannot use the %s CA: %s", name,
                                   ca_role_name((enum ca_role)ca_kind_issuer(kind)),
                                   ca_cmd_role_problem(r));
        return ca_cmd_fail(r, "%s: cannot issue", name);
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
                return ca_cmd_parse_seconds("--validity", optarg, &a->o.validity_s);
        case 'C':
                a->o.csr_path = optarg;
                return 0;
        case 'O':
                a->o.out_dir = optarg;
                return 0;
        case 's':
                r = ca_san_parse(optarg, a->san, MAX_SAN, &a->o.n_san);
                if (r < 0)
                        return ca_cmd_bad_usage("--san: expected dns:NAME, ip:ADDRESS or uri:URI "
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

static int issue(const struct ca_cmd_globals *g, int argc, char **argv, enum ca_kind kind)
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
                        return ca_cmd_bad_usage("--san and --client are options of issue-server");
                if (issue_common_opt(c, &a))
                        return 2;
        }
        if (optind + 1 != argc)
                return ca_cmd_bad_usage("%s takes one NAME", argv[0]);
        if (a.client) {
                if (a.o.n_san > 0)
                        return ca_cmd_bad_usage("a service identity (--client) has no --san");
                a.o.kind = CA_KIND_SERVICE;
        }
        a.o.name = argv[optind];
        if (ca_name_problem(a.o.kind, a.o.name))
                return issue_error(-EINVAL, a.o.kind, a.o.name);
        if (ca_cmd_open_dir(g, &d))
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

int ca_cmd_issue_server(const struct ca_cmd_globals *g, int argc, char **argv)
{
        return issue(g, argc, argv, CA_KIND_SERVER);
}

int ca_cmd_issue_service(const struct ca_cmd_globals *g, int argc, char **argv)
{
        return issue(g, argc, argv, CA_KIND_SERVICE);
}

int ca_cmd_issue_device(const struct ca_cmd_globals *g, int argc, char **argv)
{
        return issue(g, argc, argv, CA_KIND_DEVICE);
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
                        return ca_cmd_bad_usage("--tokens: a count from 1 to %d", MAX_TOKENS);
                a->o.n_tokens = (size_t)v;
                break;
        case 'f':
                r = ca_names_add_csv(&a->tokens_for, optarg);
                break;
        case 'T':
                return ca_cmd_parse_seconds("--token-validity", optarg, &a->o.token_validity_s);
        case 'o':
                a->tokens_out = optarg;
                break;
        case 'v':
                return ca_cmd_parse_seconds("--validity", optarg, &a->o.validity_s);
        case 'C':
                a->o.csr_path = optarg;
                break;
        case 'O':
                a->o.out_dir = optarg;
                break;
        default:
                return 2;
        }
        return r < 0 ? ca_cmd_fail(r, "%s", optarg) : 0;
}

int ca_cmd_issue_claim(const struct ca_cmd_globals *g, int argc, char **argv)
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
                status = ca_cmd_bad_usage("issue-claim takes one claim ID");
        if (status == 0) {
                a.o.id = argv[optind];
                a.o.allow = (const char *const *)a.allow.v;
                a.o.n_allow = a.allow.n;
                a.o.tokens_for = (const char *const *)a.tokens_for.v;
                a.o.n_tokens_for = a.tokens_for.n;
                if (ca_claim_opts_problem(&a.o))
                        status = ca_cmd_fail(0, "%s: %s", a.o.id, ca_claim_opts_problem(&a.o));
                else if (a.tokens_out && access(a.tokens_out, F_OK) == 0)
                        status =
                                ca_cmd_fail(0, "%s exists: refusing to overwrite it", a.tokens_out);
                else if (ca_claim_cn(a.o.id, cn, sizeof(cn)) < 0 || ca_cmd_open_dir(g, &d))
                        status = 1;
        }
        if (status == 0) {
                struct registry_claim existing;

                r = registry_claim_get(ca_dir_registry(d), cn, &existing);
                if (r == 0)
                        status = ca_cmd_fail(0, "claim %s exists already", cn);
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
                        status = ca_cmd_fail(r, "cannot write the tokens; revoke claim %s", cn);
        }
        ca_claim_tokens_free(tokens, n_tokens);
        ca_names_clear(&a.allow);
        ca_names_clear(&a.tokens_for);
        return status;
}
