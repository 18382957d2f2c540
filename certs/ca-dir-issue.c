/* SPDX-License-Identifier: Apache-2.0 */
/* The CA directory: issuing leaves, revoking. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include "ca-dir-internal.h"
#include "floe-alloc.h"

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

static int out_paths(const struct ca_dir *d, const struct ca_issue_opts *o, struct ca_issued *out)
{
        const char *stem = o->file_stem ? o->file_stem : o->name;
        char dir[PATH_MAX], name[CA_NAME_MAX + 16];
        int r;

        if (!*stem || strlen(stem) > CA_NAME_MAX || strchr(stem, '/'))
                return -EINVAL;

        if (o->out_dir)
                r = snprintf(dir, sizeof(dir), "%s", o->out_dir) < (int)sizeof(dir) ? 0
                                                                                    : -ENAMETOOLONG;
        else
                r = ca_path(dir, sizeof(dir), d->path, CA_ISSUED_DIR, NULL);
        if (r < 0)
                return r;
        if (!o->csr_path) {
                snprintf(name, sizeof(name), "%s.key", stem);
                r = ca_path(out->key_path, sizeof(out->key_path), dir, name, NULL);
                if (r < 0)
                        return r;
        }
        snprintf(name, sizeof(name), "%s.pem", stem);
        r = ca_path(out->cert_path, sizeof(out->cert_path), dir, name, NULL);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s.chain.pem", stem);
        return ca_path(out->chain_path, sizeof(out->chain_path), dir, name, NULL);
}

/* Removes what an issue wrote when it is undone. */
struct written {
        const char *paths[3];
        size_t n;
};

static int write_new(struct written *w, const char *path, const char *data, size_t len, mode_t mode)
{
        int r = ca_file_write_new(path, data, len, mode);

        if (r >= 0)
                w->paths[w->n++] = path;
        return r;
}

/*
 * The files and the registry row appear together: key, certificate and chain
 * are written inside the registry transaction and removed again if it does
 * not commit, so a file set exists exactly when the certificate is recorded.
 */
static int record(struct ca_dir *d, const struct ca_issue_opts *o, X509 *x, X509 *issuer_cert,
                  EVP_PKEY *key, const struct ca_issued *out)
{
        enum ca_role role = (enum ca_role)ca_kind_issuer(o->kind);
        struct registry_cert rc = {0};
        struct written w = {0};
        /* What a client sends: the leaf and any intermediate, not the trust anchor. */
        X509 *chain[2] = {x, issuer_cert};
        size_t n_chain = role == CA_ROLE_DEVICE || role == CA_ROLE_SERVER ? 2 : 1;
        char *leaf_pem = NULL, *chain_pem = NULL;
        size_t leaf_len = 0, chain_len = 0;
        bool tx = false;
        int r;

        r = registry_cert_from_x509(x, o->kind, role, o->now, &rc);
        if (r >= 0)
                r = ca_pem_certs(chain, 1, &leaf_pem, &leaf_len);
        if (r >= 0)
                r = ca_pem_certs(chain, n_chain, &chain_pem, &chain_len);
        if (r >= 0 && key) {
                r = ca_key_write_new(out->key_path, key);
                if (r >= 0)
                        w.paths[w.n++] = out->key_path;
        }
        if (r >= 0)
                r = registry_begin(d->reg);
        tx = r >= 0;
        if (r >= 0)
                r = registry_cert_add(d->reg, &rc);
        if (r >= 0 && o->hook)
                r = o->hook(d->reg, x, o->userdata);
        if (r >= 0)
                r = write_new(&w, out->cert_path, leaf_pem, leaf_len, 0644);
        if (r >= 0)
                r = write_new(&w, out->chain_path, chain_pem, chain_len, 0644);
        if (r >= 0)
                r = registry_commit(d->reg);
        else if (tx)
                registry_rollback(d->reg);
        if (r < 0)
                for (size_t i = 0; i < w.n; i++)
                        unlink(w.paths[i]);
        floe_free(leaf_pem);
        floe_free(chain_pem);
        registry_cert_clear(&rc);
        return r;
}

int ca_dir_issue(struct ca_dir *d, const struct ca_issue_opts *o, struct ca_issued *ret)
{
        struct ca_issued out = {0};
        struct ca_issuer *issuer = NULL;
        struct ca_cert_req req;
        EVP_PKEY *key = NULL;
        X509 *x = NULL;
        int role, r;

        role = ca_kind_issuer(o->kind);
        if (role < 0 || o->now < 0)
                return -EINVAL;
        r = ca_name_check(o->kind, o->name);
        if (r < 0)
                return r;
        r = out_paths(d, o, &out);
        if (r < 0)
                return r;
        if ((*out.key_path && exists(out.key_path)) || exists(out.cert_path) ||
            exists(out.chain_path))
                return -EEXIST;
        r = ca_dir_issuer(d, (enum ca_role)role, &issuer);
        if (r < 0)
                return r;
        r = o->csr_path ? ca_csr_load_key(o->csr_path, &key)
                        : ca_key_generate(d->settings.key_type, &key);
        if (r < 0)
                goto out;
        req = (struct ca_cert_req){
                .kind = o->kind,
                .cn = o->name,
                .org = o->org                      ? o->org
                       : o->kind == CA_KIND_DEVICE ? NULL
                                                   : d->settings.organization,
                .san = o->san,
                .n_san = o->n_san,
                .pubkey = key,
                .now = o->now,
                .validity_s = o->validity_s ? o->validity_s : d->settings.validity_s[o->kind],
                .backdate_s = d->settings.backdate_s,
        };
        r = ca_issue(issuer, &req, &x);
        if (r >= 0)
                r = ca_serial_hex(X509_get0_serialNumber(x), out.serial);
        if (r >= 0)
                r = ca_cert_times(x, &out.not_before, &out.not_after);
        if (r >= 0)
                r = record(d, o, x, issuer->cert, o->csr_path ? NULL : key, &out);
        if (r >= 0)
                *ret = out;
out:
        X509_free(x);
        EVP_PKEY_free(key);
        ca_issuer_free(issuer);
        return r;
}

int ca_dir_revoke_serial(struct ca_dir *d, const char *serial, enum ca_reason reason, int64_t now)
{
        struct registry_cert rc = {0};
        int r;

        r = registry_cert_get(d->reg, serial, &rc);
        if (r >= 0 && rc.kind == CA_KIND_CA) {
                X509 *x = NULL;
                bool self = true;

                if (ca_pem_parse_cert(rc.pem, strlen(rc.pem), &x) >= 0)
                        self = X509_check_issued(x, x) == X509_V_OK;
                X509_free(x);
                if (self)
                        r = -EINVAL;
        }
        registry_cert_clear(&rc);
        if (r < 0)
                return r;
        return registry_revoke_serial(d->reg, serial, reason, now);
}
