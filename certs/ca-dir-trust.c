/* SPDX-License-Identifier: Apache-2.0 */
/* The CA directory: what verifiers load, CRLs and trust bundles, for every live generation. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca-dir-internal.h"
#include "floe-alloc.h"

struct revoked_list {
        struct ca_revoked *v;
        size_t *gen; /* index into gens of the issuing generation, per entry */
        size_t n, cap;
        int64_t now;
        const struct ca_gens *g;
        bool assign; /* several live generations: find each certificate's issuer */
};

/* The live generation that issued a certificate (an index into gens); 0, the
 * current CA, if the PEM does not parse; -ESRCH if no live generation did. */
static int issuing_gen(const struct revoked_list *l, const char *pem, size_t *ret)
{
        X509 *x = NULL;
        int r = -ESRCH;

        if (!pem || ca_pem_parse_cert(pem, strlen(pem), &x) < 0) {
                ERR_clear_error();
                *ret = 0;
                return 0;
        }
        for (size_t i = 0; i < l->g->n; i++) {
                if (l->g->v[i].live && X509_check_issued(l->g->v[i].cert, x) == X509_V_OK) {
                        *ret = i;
                        r = 0;
                        break;
                }
        }
        X509_free(x);
        return r;
}

static int collect_revoked(const struct registry_cert *c, void *userdata)
{
        struct revoked_list *l = userdata;
        size_t gen = 0;

        /* Expired certificates leave the CRL (RFC 5280 3.3 allows it). */
        if (c->not_after <= l->now)
                return 0;
        if (l->assign && issuing_gen(l, c->pem, &gen) < 0)
                return 0;
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : 64;
                struct ca_revoked *v = floe_reallocarray(l->v, cap, sizeof(*v));
                size_t *gv;

                if (!v)
                        return -ENOMEM;
                l->v = v;
                gv = floe_reallocarray(l->gen, cap, sizeof(*gv));
                if (!gv)
                        return -ENOMEM;
                l->gen = gv;
                l->cap = cap;
        }
        l->v[l->n] = (struct ca_revoked){.revoked_at = c->revoked_at, .reason = c->reason};
        memcpy(l->v[l->n].serial, c->serial, sizeof(c->serial));
        l->gen[l->n] = gen;
        l->n++;
        return 0;
}

struct text {
        char *p;
        size_t len;
};

static int text_append(struct text *t, const char *s, size_t len)
{
        char *p = floe_realloc(t->p, t->len + len + 1);

        if (!p)
                return -ENOMEM;
        memcpy(p + t->len, s, len);
        t->len += len;
        p[t->len] = '\0';
        t->p = p;
        return 0;
}

/* The signers of the live generations' CRLs, indexed like g. An earlier
 * generation whose key is gone gets none (*ret_missing). */
static int load_signers(struct ca_dir *d, enum ca_role role, const struct ca_gens *g,
                        struct ca_issuer **is, bool *ret_missing)
{
        char rdir[PATH_MAX], path[PATH_MAX];
        bool missing = false;
        int r;

        r = ca_dir_issuer(d, role, &is[0]);
        if (r >= 0)
                r = ca_role_dir(d, role, rdir, sizeof(rdir));
        for (size_t i = 1; r >= 0 && i < g->n; i++) {
                if (!g->v[i].live)
                        continue;
                r = ca_gen_dir(rdir, g->v[i].number, path, sizeof(path));
                if (r >= 0)
                        r = ca_issuer_load_from(path, role, &is[i]);
                if (r == -ENOENT) {
                        missing = true;
                        r = 0;
                }
        }
        if (r >= 0)
                *ret_missing = missing;
        return r;
}

/* The CRL an earlier generation got last, for one that can sign no new one. */
static int last_crl(const char *rdir, unsigned number, char **ret, size_t *ret_len)
{
        char gdir[PATH_MAX], path[PATH_MAX];
        int r;

        r = ca_gen_dir(rdir, number, gdir, sizeof(gdir));
        if (r >= 0)
                r = ca_path(path, sizeof(path), gdir, "crl.pem", NULL);
        if (r >= 0)
                r = ca_file_read(path, CA_PEM_MAX, ret, ret_len);
        return r == -ENOENT ? 0 : r;
}

/* One generation's CRL as PEM, with the next CRL number. */
static int build_crl(struct ca_dir *d, const struct ca_issuer *is, const struct revoked_list *l,
                     size_t gen, struct ca_revoked *buf, int64_t now, uint64_t next_update_s,
                     char **ret, size_t *ret_len, uint64_t *ret_number)
{
        X509_CRL *crl = NULL;
        uint64_t number = 0;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < l->n; i++)
                if (l->gen[i] == gen)
                        buf[n++] = l->v[i];
        r = registry_crl_next(d->reg, is->role, now, now + (int64_t)next_update_s, &number);
        if (r >= 0)
                r = ca_crl_build(is, buf, n, number, now, next_update_s, &crl);
        if (r >= 0)
                r = ca_pem_crl(crl, ret, ret_len);
        X509_CRL_free(crl);
        if (r >= 0)
                *ret_number = number;
        return r;
}

int ca_dir_write_crls(struct ca_dir *d, enum ca_role role, int64_t now, uint64_t next_update_s,
                      const char *copy_dir, uint64_t *ret_number, size_t *ret_generations)
{
        struct registry_filter f = REGISTRY_FILTER_ALL;
        struct ca_issuer *signers[CA_GENERATIONS_MAX + 1] = {NULL};
        struct revoked_list list = {.now = now};
        struct ca_revoked *buf = NULL;
        struct text all = {0};
        struct ca_gens g = {0};
        char rdir[PATH_MAX], gdir[PATH_MAX], path[PATH_MAX], name[32];
        uint64_t number = 0, first = 0;
        size_t n_live = 0;
        bool missing = false;
        int r;

        if (!ca_role_name(role) || now < 0)
                return -EINVAL;
        if (next_update_s == 0)
                next_update_s = d->settings.crl_next_update_s;
        r = ca_gens_load(d, role, now, true, &g);
        if (r < 0)
                return r;
        for (size_t i = 0; i < g.n; i++)
                n_live += g.v[i].live;
        r = load_signers(d, role, &g, signers, &missing);
        list.g = &g;
        list.assign = n_live > 1;
        f.issuer = (int)role;
        f.revoked_only = true;
        f.with_pem = list.assign;
        if (r >= 0)
                r = registry_cert_foreach(d->reg, &f, collect_revoked, &list);
        if (r >= 0 && list.n > 0 && !(buf = floe_reallocarray(NULL, list.n, sizeof(*buf))))
                r = -ENOMEM;
        if (r >= 0)
                r = ca_role_dir(d, role, rdir, sizeof(rdir));
        for (size_t i = 0; r >= 0 && i < g.n; i++) {
                char *pem = NULL;
                size_t len = 0;

                if (!g.v[i].live)
                        continue;
                /* Without its key an earlier generation keeps its last CRL until it expires;
                 * the others are renewed all the same. */
                if (!signers[i]) {
                        r = last_crl(rdir, g.v[i].number, &pem, &len);
                        if (r >= 0 && pem)
                                r = text_append(&all, pem, len);
                        floe_free(pem);
                        continue;
                }
                r = build_crl(d, signers[i], &list, i, buf, now, next_update_s, &pem, &len,
                              &number);
                if (r >= 0 && i == 0)
                        first = number;
                /* An earlier generation keeps its own CRL too, for openssl crl and verify. */
                if (r >= 0 && i > 0)
                        r = ca_gen_dir(rdir, g.v[i].number, gdir, sizeof(gdir));
                if (r >= 0 && i > 0)
                        r = ca_path(path, sizeof(path), gdir, "crl.pem", NULL);
                if (r >= 0 && i > 0)
                        r = ca_file_replace(path, pem, len, 0644);
                if (r >= 0)
                        r = text_append(&all, pem, len);
                floe_free(pem);
        }
        if (r >= 0)
                r = ca_path(path, sizeof(path), rdir, "crl.pem", NULL);
        if (r >= 0)
                r = ca_file_replace(path, all.p, all.len, 0644);
        if (r >= 0 && copy_dir) {
                snprintf(name, sizeof(name), "%s.crl.pem", ca_role_name(role));
                r = ca_path(path, sizeof(path), copy_dir, name, NULL);
                if (r >= 0)
                        r = ca_file_replace(path, all.p, all.len, 0644);
        }
        if (r >= 0 && missing)
                r = -ENOKEY;
        if (r >= 0) {
                *ret_number = first;
                if (ret_generations)
                        *ret_generations = n_live;
        }
        for (size_t i = 0; i < ELEMENTSOF(signers); i++)
                ca_issuer_free(signers[i]);
        floe_free(all.p);
        floe_free(buf);
        floe_free(list.v);
        floe_free(list.gen);
        ca_gens_clear(&g);
        return r;
}

int ca_dir_write_crl(struct ca_dir *d, enum ca_role role, int64_t now, uint64_t next_update_s,
                     const char *copy_dir, uint64_t *ret_number)
{
        return ca_dir_write_crls(d, role, now, next_update_s, copy_dir, ret_number, NULL);
}

/* -- trust ------------------------------------------------------------------------------ */

int ca_dir_trust_bundle(struct ca_dir *d, enum ca_role role, int64_t now, char **ret,
                        size_t *ret_len)
{
        struct text t = {0};
        struct ca_gens g = {0};
        char path[PATH_MAX];
        char *pem = NULL;
        size_t len = 0;
        int r;

        r = ca_dir_role_file(d, role, "trust.pem", path, sizeof(path));
        if (r >= 0)
                r = ca_file_read(path, CA_PEM_MAX, &t.p, &t.len);
        if (r >= 0)
                r = ca_gens_load(d, role, now, true, &g);
        for (size_t i = 1; r >= 0 && i < g.n; i++) {
                if (!g.v[i].live)
                        continue;
                r = ca_pem_certs(&g.v[i].cert, 1, &pem, &len);
                if (r >= 0)
                        r = text_append(&t, pem, len);
                floe_free(pem);
                pem = NULL;
        }
        ca_gens_clear(&g);
        if (r < 0) {
                floe_free(t.p);
                return r;
        }
        *ret = t.p;
        *ret_len = t.len;
        return 0;
}
