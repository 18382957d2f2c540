/* SPDX-License-Identifier: Apache-2.0 */
/* Claim certificates with their entitlements and one-time tokens. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "ca-dir-internal.h"
#include "floe-alloc.h"

#define CLAIM_LIST_MAX 100000

static bool in_tenant(const char *tenant, const char *identity)
{
        size_t len = tenant ? strlen(tenant) : 0;

        return len == 0 || (strncmp(identity, tenant, len) == 0 && identity[len] == '.');
}

const char *ca_claim_opts_problem(const struct ca_claim_opts *o)
{
        char cn[CA_CLAIM_ID_MAX + 1], probe[CA_IDENTITY_MAX + 2];

        if (ca_claim_cn(o->id, cn, sizeof(cn)) < 0)
                return "invalid claim id: [a-z0-9][a-z0-9-]*, at most 57 bytes after \"claim-\"";
        if (o->tenant && *o->tenant &&
            (strlen(o->tenant) > 63 ||
             snprintf(probe, sizeof(probe), "%s.x", o->tenant) >= (int)sizeof(probe) ||
             ca_name_check(CA_KIND_DEVICE, probe) < 0))
                return "invalid tenant: [a-z0-9][a-z0-9-]{0,62}";
        if (o->n_allow > CLAIM_LIST_MAX || o->n_tokens > CLAIM_LIST_MAX ||
            o->n_tokens_for > CLAIM_LIST_MAX)
                return "too many entitlements or tokens for one claim (100000)";
        if (o->n_tokens > 0 && (!o->tenant || !*o->tenant))
                return "tokens for any identity need --tenant";
        for (size_t i = 0; i < o->n_allow + o->n_tokens_for; i++) {
                const char *id = i < o->n_allow ? o->allow[i] : o->tokens_for[i - o->n_allow];

                if (ca_name_check(CA_KIND_DEVICE, id) < 0)
                        return "invalid device identity in the allowlist or --tokens-for";
                if (!in_tenant(o->tenant, id))
                        return "an identity in the allowlist or --tokens-for is outside the "
                               "claim's tenant";
        }
        return NULL;
}

struct ca_claim_token *ca_claim_tokens_free(struct ca_claim_token *tokens, size_t n)
{
        if (!tokens)
                return NULL;
        OPENSSL_cleanse(tokens, n * sizeof(*tokens));
        floe_free(tokens);
        return NULL;
}

struct claim_ctx {
        const struct ca_claim_opts *o;
        const char *cn;
        uint64_t token_validity_s;
        struct ca_claim_token *tokens;
        size_t n_tokens;
};

/* Runs inside the transaction that records the claim certificate. */
static int claim_hook(struct registry *reg, X509 *cert, void *userdata)
{
        struct claim_ctx *c = userdata;
        const struct ca_claim_opts *o = c->o;
        struct registry_claim rc = {.created_at = o->now};
        int64_t nb, na, token_expiry;
        int r;

        r = ca_cert_times(cert, &nb, &na);
        if (r < 0)
                return r;
        memcpy(rc.claim_id, c->cn, strlen(c->cn) + 1);
        snprintf(rc.tenant, sizeof(rc.tenant), "%s", o->tenant ? o->tenant : "");
        rc.expires_at = na;
        r = registry_claim_add(reg, &rc);
        for (size_t i = 0; r >= 0 && i < o->n_allow; i++) {
                r = registry_entitlement_add(reg, c->cn, o->allow[i], o->reusable, o->now);
                if (r == -EEXIST)
                        r = 0; /* listed twice */
        }
        token_expiry = o->now + (int64_t)c->token_validity_s;
        if (token_expiry > na)
                token_expiry = na;
        for (size_t i = 0; r >= 0 && i < c->n_tokens; i++) {
                struct ca_claim_token *t = &c->tokens[i];

                r = registry_token_generate(t->token, sizeof(t->token));
                if (r >= 0)
                        r = registry_token_add(reg, c->cn, t->token,
                                               *t->identity ? t->identity : NULL, token_expiry,
                                               o->now);
        }
        return r;
}

int ca_dir_issue_claim(struct ca_dir *d, const struct ca_claim_opts *o, struct ca_issued *ret,
                       struct ca_claim_token **ret_tokens, size_t *ret_n_tokens)
{
        char cn[CA_CLAIM_ID_MAX + 1];
        struct claim_ctx c = {.o = o, .cn = cn};
        struct ca_issue_opts io;
        struct ca_issued out;
        int r;

        if (ca_claim_opts_problem(o))
                return -EINVAL;
        r = ca_claim_cn(o->id, cn, sizeof(cn));
        if (r < 0)
                return r;
        c.token_validity_s =
                o->token_validity_s ? o->token_validity_s : d->settings.token_validity_s;
        c.n_tokens = o->n_tokens + o->n_tokens_for;
        if (c.n_tokens > 0) {
                c.tokens = floe_calloc(c.n_tokens, sizeof(*c.tokens));
                if (!c.tokens)
                        return -ENOMEM;
                for (size_t i = 0; i < o->n_tokens_for; i++)
                        memcpy(c.tokens[o->n_tokens + i].identity, o->tokens_for[i],
                               strlen(o->tokens_for[i]) + 1);
        }
        io = (struct ca_issue_opts){
                .kind = CA_KIND_CLAIM,
                .name = cn,
                .validity_s = o->validity_s,
                .csr_path = o->csr_path,
                .out_dir = o->out_dir,
                .now = o->now,
                .hook = claim_hook,
                .userdata = &c,
        };
        r = ca_dir_issue(d, &io, &out);
        if (r < 0) {
                ca_claim_tokens_free(c.tokens, c.n_tokens);
                return r;
        }
        *ret = out;
        *ret_tokens = c.tokens;
        *ret_n_tokens = c.n_tokens;
        return 0;
}

int ca_claim_tokens_format(const struct ca_claim_token *t, size_t n, const char *tenant, char **ret,
                           size_t *ret_len)
{
        size_t cap, len = 0;
        char *text;

        if (n > CLAIM_LIST_MAX)
                return -E2BIG;
        cap = n * (REGISTRY_TOKEN_LEN + CA_IDENTITY_MAX + 8) + 1;
        text = floe_malloc(cap);
        if (!text)
                return -ENOMEM;
        text[0] = '\0';
        for (size_t i = 0; i < n; i++) {
                int k = snprintf(text + len, cap - len, "%s %s%s\n", t[i].token,
                                 *t[i].identity ? t[i].identity
                                 : tenant       ? tenant
                                                : "",
                                 *t[i].identity ? "" : ".*");

                if (k < 0 || (size_t)k >= cap - len) {
                        OPENSSL_cleanse(text, cap);
                        floe_free(text);
                        return -ENOBUFS;
                }
                len += (size_t)k;
        }
        *ret = text;
        *ret_len = len;
        return 0;
}

void ca_names_clear(struct ca_names *l)
{
        for (size_t i = 0; i < l->n; i++)
                floe_free(l->v[i]);
        floe_free(l->v);
        *l = (struct ca_names){0};
}

static int names_add(struct ca_names *l, const char *s, size_t len)
{
        char *copy;

        if (l->n >= CLAIM_LIST_MAX)
                return -E2BIG;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 16;
                char **v = floe_reallocarray(l->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                l->v = v;
                l->cap = cap;
        }
        copy = floe_strndup(s, len);
        if (!copy)
                return -ENOMEM;
        l->v[l->n++] = copy;
        return 0;
}

int ca_names_add_csv(struct ca_names *l, const char *csv)
{
        for (;;) {
                size_t len = strcspn(csv, ",");
                int r;

                if (len > 0) {
                        r = names_add(l, csv, len);
                        if (r < 0)
                                return r;
                }
                if (!csv[len])
                        return 0;
                csv += len + 1;
        }
}

int ca_names_add_file(struct ca_names *l, const char *path)
{
        char *text = NULL, *p;
        size_t len = 0;
        int r;

        r = ca_file_read(path, 16 * 1024 * 1024, &text, &len);
        if (r < 0)
                return r;
        for (p = text; r >= 0 && *p;) {
                size_t n = strcspn(p, "\n"), skip = n + (p[n] == '\n');
                char *line = p;

                while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
                        n--;
                while (n > 0 && (*line == ' ' || *line == '\t')) {
                        line++;
                        n--;
                }
                if (n > 0 && *line != '#')
                        r = names_add(l, line, n);
                p += skip;
        }
        floe_free(text);
        return r;
}
