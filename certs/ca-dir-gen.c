/* SPDX-License-Identifier: Apache-2.0 */
/* The CA directory: generations of intermediates, and rotating them. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "ca-dir-internal.h"
#include "floe-alloc.h"

#define GEN_PREFIX "gen-"

void ca_gens_clear(struct ca_gens *g)
{
        for (size_t i = 0; i < g->n; i++)
                X509_free(g->v[i].cert);
        g->n = 0;
}

int ca_role_dir(const struct ca_dir *d, enum ca_role role, char *buf, size_t size)
{
        if (!ca_role_name(role))
                return -EINVAL;
        return ca_path(buf, size, d->path, ca_role_name(role), NULL);
}

int ca_gen_dir(const char *rdir, unsigned number, char *buf, size_t size)
{
        char name[32];

        snprintf(name, sizeof(name), GEN_PREFIX "%u", number);
        return ca_path(buf, size, rdir, name, NULL);
}

/* "gen-N" with N a decimal number from 1 without leading zeros; 0 if not. */
static unsigned gen_number(const char *name)
{
        const char *p = name + strlen(GEN_PREFIX);
        unsigned long v = 0;

        if (strncmp(name, GEN_PREFIX, strlen(GEN_PREFIX)) != 0 || *p < '1' || *p > '9')
                return 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9' || v > 100000000)
                        return 0;
                v = v * 10 + (unsigned long)(*p - '0');
        }
        return (unsigned)v;
}

/* The generation of a CA certificate: "<org> <role> CA N" is N, any other CN 1. */
static unsigned cn_generation(const X509 *x)
{
        char cn[CA_NAME_MAX + 1];
        const char *sp;
        size_t digits;

        if (ca_cert_cn(x, cn, sizeof(cn)) < 0)
                return 1;
        sp = strrchr(cn, ' ');
        if (!sp || sp - cn < 3 || strncmp(sp - 3, " CA", 3) != 0)
                return 1;
        digits = strspn(sp + 1, "0123456789");
        if (digits == 0 || digits > 9 || sp[1 + digits] || sp[1] == '0')
                return 1;
        return (unsigned)strtoul(sp + 1, NULL, 10);
}

static int cmp_desc(const void *a, const void *b)
{
        unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;

        return x < y ? 1 : x > y ? -1 : 0;
}

/* The numbers of DIR/<role>/gen-N, newest first. */
static int list_numbers(const char *rdir, unsigned *v, size_t max, size_t *ret_n)
{
        DIR *dir = opendir(rdir);
        struct dirent *de;
        size_t n = 0;
        int r = 0;

        if (!dir)
                return -errno;
        while ((de = readdir(dir))) {
                unsigned number = gen_number(de->d_name);

                if (number == 0)
                        continue;
                if (n == max) {
                        r = -E2BIG;
                        break;
                }
                v[n++] = number;
        }
        closedir(dir);
        if (r < 0)
                return r;
        qsort(v, n, sizeof(*v), cmp_desc);
        *ret_n = n;
        return 0;
}

struct live_scan {
        struct ca_gens *g;
        int64_t now;
        size_t pending;
};

static int scan_live(const struct registry_cert *c, void *userdata)
{
        struct live_scan *s = userdata;
        X509 *x = NULL;

        if (c->kind == CA_KIND_CA || c->not_after <= s->now || !c->pem)
                return 0;
        if (ca_pem_parse_cert(c->pem, strlen(c->pem), &x) < 0) {
                ERR_clear_error();
                return 0;
        }
        for (size_t i = 1; i < s->g->n; i++) {
                struct ca_gen *e = &s->g->v[i];

                if (e->candidate && !e->live && X509_check_issued(e->cert, x) == X509_V_OK) {
                        e->live = true;
                        s->pending--;
                        break;
                }
        }
        X509_free(x);
        return s->pending == 0 ? 1 : 0;
}

/* Whether the registry records the CA certificate as revoked. */
static int cert_revoked(struct registry *reg, const X509 *x, bool *ret)
{
        char serial[CA_SERIAL_HEX_MAX + 1];
        struct registry_cert rc = {0};
        int r;

        r = ca_serial_hex(X509_get0_serialNumber(x), serial);
        if (r < 0)
                return r;
        r = registry_cert_get(reg, serial, &rc);
        if (r == -ENOENT) {
                *ret = false;
                return 0;
        }
        if (r < 0)
                return r;
        *ret = rc.status == REGISTRY_REVOKED;
        registry_cert_clear(&rc);
        return 0;
}

int ca_gens_load(struct ca_dir *d, enum ca_role role, int64_t now, bool with_live,
                 struct ca_gens *g)
{
        struct registry_filter f = REGISTRY_FILTER_ALL;
        unsigned numbers[CA_GENERATIONS_MAX];
        char rdir[PATH_MAX], gdir[PATH_MAX], path[PATH_MAX];
        struct live_scan scan = {.g = g, .now = now};
        size_t n = 0;
        int r;

        g->n = 0;
        r = ca_role_dir(d, role, rdir, sizeof(rdir));
        if (r >= 0)
                r = ca_path(path, sizeof(path), rdir, "ca.pem", NULL);
        if (r >= 0)
                r = ca_pem_read_cert(path, &g->v[0].cert);
        if (r < 0)
                return r;
        g->n = 1;
        g->v[0].number = cn_generation(g->v[0].cert);
        g->v[0].live = true;
        g->max_number = g->v[0].number;
        r = list_numbers(rdir, numbers, ELEMENTSOF(numbers), &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                struct ca_gen *e = &g->v[g->n];
                int64_t nb, na;
                bool revoked = false;

                if (numbers[i] > g->max_number)
                        g->max_number = numbers[i];
                r = ca_gen_dir(rdir, numbers[i], gdir, sizeof(gdir));
                if (r >= 0)
                        r = ca_path(path, sizeof(path), gdir, "ca.pem", NULL);
                if (r >= 0)
                        r = ca_pem_read_cert(path, &e->cert);
                if (r == -ENOENT) {
                        r = 0; /* an emptied gen-N directory: that generation is gone */
                        continue;
                }
                if (r < 0)
                        break;
                /* The copy an interrupted rotation left of the current CA. */
                if (X509_cmp(e->cert, g->v[0].cert) == 0) {
                        X509_free(e->cert);
                        e->cert = NULL;
                        continue;
                }
                e->number = numbers[i];
                e->live = false;
                g->n++;
                r = ca_cert_times(e->cert, &nb, &na);
                if (r >= 0 && with_live)
                        r = cert_revoked(d->reg, e->cert, &revoked);
                e->candidate = r >= 0 && na > now && !revoked;
                scan.pending += e->candidate;
        }
        if (r >= 0 && with_live && scan.pending > 0) {
                f.issuer = (int)role;
                f.with_pem = true;
                r = registry_cert_foreach(d->reg, &f, scan_live, &scan);
        }
        if (r < 0) {
                ca_gens_clear(g);
                return r;
        }
        return 0;
}

/* -- rotate ------------------------------------------------------------------------------ */

/* The files of the current CA as they were, to keep and to put back on failure. */
static const char *const kept_files[] = {"ca.pem", "ca.key", "trust.pem", "crl.pem"};
#define KEPT_KEY 1
#define KEPT_CRL 3

struct kept {
        char *data[ELEMENTSOF(kept_files)];
        size_t len[ELEMENTSOF(kept_files)];
};

static void kept_clear(struct kept *k)
{
        for (size_t i = 0; i < ELEMENTSOF(kept_files); i++) {
                if (k->data[i])
                        OPENSSL_cleanse(k->data[i], k->len[i]);
                floe_free(k->data[i]);
                k->data[i] = NULL;
        }
}

static int kept_read(const char *rdir, struct kept *k)
{
        char path[PATH_MAX];
        int r = 0;

        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(kept_files); i++) {
                r = ca_path(path, sizeof(path), rdir, kept_files[i], NULL);
                if (r >= 0)
                        r = ca_file_read(path, CA_PEM_MAX, &k->data[i], &k->len[i]);
        }
        return r;
}

static mode_t kept_mode(size_t i)
{
        return i == KEPT_KEY ? 0600 : 0644;
}

/* Puts the kept files back (each atomically). */
static int kept_restore(const char *rdir, const struct kept *k)
{
        char path[PATH_MAX];
        int r = 0;

        for (size_t i = 0; i < ELEMENTSOF(kept_files); i++) {
                int q = ca_path(path, sizeof(path), rdir, kept_files[i], NULL);

                if (q >= 0)
                        q = ca_file_replace(path, k->data[i], k->len[i], kept_mode(i));
                if (q < 0 && r >= 0)
                        r = q;
        }
        return r;
}

/*
 * Keeps the current CA as DIR/<role>/gen-N: its certificate, key (0600) and
 * trust file, written into a temporary sibling and renamed into place.
 * *ret_made: false if an interrupted rotation left that very copy already.
 */
static int archive(const char *rdir, unsigned number, const struct kept *k, bool *ret_made)
{
        char dst[PATH_MAX], tmp[PATH_MAX], path[PATH_MAX];
        char *old = NULL;
        size_t len = 0;
        int r;

        r = ca_gen_dir(rdir, number, dst, sizeof(dst));
        if (r < 0)
                return r;
        if (ca_path(path, sizeof(path), dst, "ca.pem", NULL) >= 0 &&
            ca_file_read(path, CA_PEM_MAX, &old, &len) >= 0) {
                bool same = len == k->len[0] && memcmp(old, k->data[0], len) == 0;

                floe_free(old);
                if (!same)
                        return -EEXIST;
                *ret_made = false;
                return 0;
        }
        if (access(dst, F_OK) == 0)
                return -EEXIST;
        r = ca_path(tmp, sizeof(tmp), rdir, "." GEN_PREFIX "new-XXXXXX", NULL);
        if (r < 0)
                return r;
        if (!mkdtemp(tmp))
                return -errno;
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(kept_files); i++) {
                if (i == KEPT_CRL)
                        continue; /* the CRL is written by ca_dir_write_crls while live */
                r = ca_path(path, sizeof(path), tmp, kept_files[i], NULL);
                if (r >= 0)
                        r = ca_file_write_new(path, k->data[i], k->len[i], kept_mode(i));
        }
        if (r >= 0 && rename(tmp, dst) < 0)
                r = -errno;
        if (r >= 0)
                r = ca_file_sync_dir(dst);
        if (r < 0) {
                ca_remove_tree(tmp);
                return r;
        }
        *ret_made = true;
        return 0;
}

/* Replaces the current CA's key, certificate and trust file with the new ones. */
static int install(const char *rdir, EVP_PKEY *key, X509 *cert, X509 *root)
{
        X509 *chain[2] = {cert, root};
        char path[PATH_MAX], tmp[PATH_MAX] = "";
        char *pem = NULL;
        size_t len = 0;
        int r;

        r = ca_path(path, sizeof(path), rdir, "ca.key", NULL);
        if (r >= 0)
                r = ca_file_temp_name(path, tmp, sizeof(tmp));
        if (r >= 0)
                r = ca_key_write_new(tmp, key);
        if (r >= 0 && rename(tmp, path) < 0) {
                r = -errno;
                unlink(tmp);
        }
        if (r >= 0)
                r = ca_file_sync_dir(path);
        if (r >= 0)
                r = ca_path(path, sizeof(path), rdir, "ca.pem", NULL);
        if (r >= 0)
                r = ca_pem_certs(chain, 1, &pem, &len);
        if (r >= 0)
                r = ca_file_replace(path, pem, len, 0644);
        floe_free(pem);
        pem = NULL;
        if (r >= 0)
                r = ca_path(path, sizeof(path), rdir, "trust.pem", NULL);
        if (r >= 0)
                r = ca_pem_certs(chain, 2, &pem, &len);
        if (r >= 0)
                r = ca_file_replace(path, pem, len, 0644);
        floe_free(pem);
        return r;
}

/* The new CA's certificate, signed by the root. */
static int make_cert(const struct ca_dir *d, enum ca_role role, const struct ca_issuer *root,
                     unsigned number, EVP_PKEY *key, int64_t now, X509 **ret, char *cn,
                     size_t cn_size)
{
        struct ca_cert_req req;
        int64_t nb, na;
        int r;

        if (snprintf(cn, cn_size, "%s %s CA %u", d->settings.organization, ca_role_name(role),
                     number) >= (int)cn_size)
                return -ENAMETOOLONG;
        r = ca_name_check(CA_KIND_CA, cn);
        if (r < 0)
                return r;
        r = ca_cert_times(root->cert, &nb, &na);
        if (r < 0)
                return r;
        if (na <= now + 86400)
                return -ERANGE;
        req = (struct ca_cert_req){
                .kind = CA_KIND_CA,
                .role = role,
                .cn = cn,
                .org = d->settings.organization,
                .pubkey = key,
                .now = now,
                .validity_s = d->settings.intermediate_validity_s,
                .backdate_s = d->settings.backdate_s,
        };
        /* An intermediate never outlives the root. */
        if (now + (int64_t)req.validity_s > na)
                req.validity_s = (uint64_t)(na - now);
        return ca_issue(root, &req, ret);
}

int ca_dir_rotate(struct ca_dir *d, enum ca_role role, enum ca_key_type key_type, int64_t now,
                  struct ca_rotated *ret)
{
        struct ca_issuer *root = NULL, *cur = NULL;
        struct registry_cert rc = {0};
        struct ca_rotated out = {0};
        struct kept k = {0};
        struct ca_gens g = {0};
        char rdir[PATH_MAX], gdir[PATH_MAX];
        EVP_PKEY *key = NULL;
        X509 *x = NULL;
        bool made = false, tx = false, touched = false;
        uint64_t number;
        int64_t nb;
        size_t n_live = 0;
        int r;

        if ((role != CA_ROLE_DEVICE && role != CA_ROLE_SERVER) || now < 0 ||
            !ca_key_type_name(key_type))
                return -EINVAL;
        r = ca_dir_issuer(d, CA_ROLE_ROOT, &root);
        if (r < 0)
                return r; /* -ENOENT: the root key is offline */
        r = ca_dir_issuer(d, role, &cur);
        if (r == -ENOENT)
                r = -ENOKEY;
        if (r >= 0)
                r = ca_gens_load(d, role, now, false, &g);
        if (r >= 0 && g.n > CA_GENERATIONS_MAX)
                r = -E2BIG;
        if (r >= 0) {
                out.previous = g.v[0].number;
                out.generation = g.max_number + 1;
                r = ca_key_generate(key_type, &key);
        }
        if (r >= 0)
                r = make_cert(d, role, root, out.generation, key, now, &x, out.cn, sizeof(out.cn));
        if (r >= 0)
                r = ca_serial_hex(X509_get0_serialNumber(x), out.serial);
        if (r >= 0)
                r = ca_cert_times(x, &nb, &out.not_after);
        if (r >= 0)
                r = registry_cert_from_x509(x, CA_KIND_CA, CA_ROLE_ROOT, now, &rc);
        /* Keep the current CA before anything is replaced. */
        if (r >= 0)
                r = ca_role_dir(d, role, rdir, sizeof(rdir));
        if (r >= 0)
                r = kept_read(rdir, &k);
        if (r >= 0)
                r = archive(rdir, out.previous, &k, &made);
        if (r >= 0)
                r = registry_begin(d->reg);
        tx = r >= 0;
        if (r >= 0)
                r = registry_cert_add(d->reg, &rc);
        if (r >= 0) {
                touched = true;
                r = install(rdir, key, x, root->cert);
        }
        if (r >= 0)
                r = ca_dir_write_crls(d, role, now, 0, NULL, &number, &n_live);
        if (r >= 0)
                r = registry_commit(d->reg);
        if (r < 0 && tx)
                registry_rollback(d->reg);
        if (r < 0 && touched)
                kept_restore(rdir, &k);
        if (r < 0 && made && ca_gen_dir(rdir, out.previous, gdir, sizeof(gdir)) >= 0)
                ca_remove_tree(gdir);
        if (r >= 0) {
                out.live = n_live - 1;
                *ret = out;
        }
        kept_clear(&k);
        ca_gens_clear(&g);
        registry_cert_clear(&rc);
        X509_free(x);
        EVP_PKEY_free(key);
        ca_issuer_free(cur);
        ca_issuer_free(root);
        return r;
}
