/* SPDX-License-Identifier: Apache-2.0 */
/* The CA directory: init, open, issuers, CRLs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca-dir-internal.h"
#include "floe-alloc.h"

struct registry *ca_dir_registry(struct ca_dir *d)
{
        return d->reg;
}

const struct ca_settings *ca_dir_settings(const struct ca_dir *d)
{
        return &d->settings;
}

const char *ca_dir_path(const struct ca_dir *d)
{
        return d->path;
}

int ca_path(char *buf, size_t size, const char *a, const char *b, const char *c)
{
        int n = c ? snprintf(buf, size, "%s/%s/%s", a, b, c) : snprintf(buf, size, "%s/%s", a, b);

        return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int ca_dir_role_file(const struct ca_dir *d, enum ca_role role, const char *file, char *buf,
                     size_t size)
{
        const char *name = ca_role_name(role);

        if (!name)
                return -EINVAL;
        return ca_path(buf, size, d->path, name, file);
}

struct ca_dir *ca_dir_close(struct ca_dir *d)
{
        if (!d)
                return NULL;
        registry_close(d->reg);
        floe_free(d);
        return NULL;
}

/* A SQLite registry must exist where the settings say: never create one elsewhere. */
static int check_registry_file(const char *path, const struct floe_config *cfg, bool explicit,
                               struct floe_config_error *err)
{
        struct stat st;

        if (stat(path, &st) == 0)
                return 0;
        if (errno != ENOENT || !explicit)
                return -errno;
        return floe_config_key_error(cfg, "registry", "location", -ENOENT, err,
                                     "no registry at %s (floe-ca init creates it)", path);
}

int ca_dir_open(const char *dir, const char *config_path, struct ca_dir **ret,
                struct floe_config_error *err)
{
        struct floe_config *cfg = NULL;
        char path[PATH_MAX], location[PATH_MAX + CA_REGISTRY_LOCATION_MAX];
        struct ca_dir *d;
        struct stat st;
        bool file = true;
        int r;

        if (!dir || !*dir)
                return -EINVAL;
        d = floe_calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        r = snprintf(d->path, sizeof(d->path), "%s", dir) < (int)sizeof(d->path) ? 0
                                                                                 : -ENAMETOOLONG;
        ca_settings_default(&d->settings);
        /* A CA directory has its settings file (init writes it), and its registry. */
        if (r >= 0)
                r = ca_path(path, sizeof(path), dir, CA_SETTINGS_FILE, NULL);
        if (r >= 0 && stat(path, &st) < 0 && (!config_path || errno != ENOENT))
                r = -errno;
        if (r >= 0 && !config_path)
                config_path = path;
        if (r >= 0)
                r = floe_config_load(config_path, NULL, &cfg, err);
        if (r >= 0)
                r = ca_settings_apply(cfg, &d->settings, err);
        if (r >= 0)
                r = ca_registry_location(dir, d->settings.registry, location, sizeof(location),
                                         &file);
        if (r >= 0 && file)
                r = check_registry_file(location, cfg, *d->settings.registry != '\0', err);
        floe_config_free(cfg);
        if (r >= 0) {
                char why[sizeof(err->msg) - 16] = "";

                r = registry_open_explain(location, why, sizeof(why), &d->reg);
                if (r < 0 && why[0] && err && !err->msg[0])
                        snprintf(err->msg, sizeof(err->msg), "registry: %s", why);
        }
        if (r < 0) {
                ca_dir_close(d);
                return r;
        }
        *ret = d;
        return 0;
}

int ca_issuer_load_from(const char *role_dir, enum ca_role role, struct ca_issuer **ret)
{
        char path[PATH_MAX];
        struct ca_issuer *is;
        STACK_OF(X509) *trust = NULL;
        int r;

        is = floe_calloc(1, sizeof(*is));
        if (!is)
                return -ENOMEM;
        is->role = role;
        r = ca_path(path, sizeof(path), role_dir, "ca.key", NULL);
        if (r >= 0)
                r = ca_key_load(path, false, &is->key);
        if (r >= 0)
                r = ca_path(path, sizeof(path), role_dir, "trust.pem", NULL);
        if (r >= 0)
                r = ca_pem_read_certs(path, &trust);
        if (r >= 0) {
                /* trust.pem: the CA first, then its issuers. */
                is->cert = sk_X509_shift(trust);
                is->chain = trust;
                trust = NULL;
                if (!ca_cert_matches_key(is->cert, is->key))
                        r = -EBADMSG;
        }
        if (r < 0) {
                ca_issuer_free(is);
                return r;
        }
        *ret = is;
        return 0;
}

static int load_issuer_at(const char *dir, enum ca_role role, struct ca_issuer **ret)
{
        char path[PATH_MAX];
        int r = ca_path(path, sizeof(path), dir, ca_role_name(role), NULL);

        return r < 0 ? r : ca_issuer_load_from(path, role, ret);
}

int ca_dir_issuer(struct ca_dir *d, enum ca_role role, struct ca_issuer **ret)
{
        if (!ca_role_name(role))
                return -EINVAL;
        return load_issuer_at(d->path, role, ret);
}

/* -- init ------------------------------------------------------------------------- */

static int dir_is_empty(const char *path)
{
        DIR *dir = opendir(path);
        struct dirent *de;
        int r = 1;

        if (!dir)
                return -errno;
        while ((de = readdir(dir)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
                        r = 0;
                        break;
                }
        closedir(dir);
        return r;
}

static int make_ca(const char *tmp, const struct ca_settings *s, enum ca_role role,
                   struct registry *reg, int64_t now)
{
        struct ca_issuer *parent = NULL, *self = NULL;
        struct ca_cert_req req = {0};
        char path[PATH_MAX], cn[128];
        struct registry_cert rc = {0};
        EVP_PKEY *key = NULL;
        X509 *x = NULL;
        char *pem = NULL;
        size_t len;
        int r;

        r = ca_path(path, sizeof(path), tmp, ca_role_name(role), NULL);
        if (r < 0)
                return r;
        if (mkdir(path, 0700) < 0)
                return -errno;
        if (role == CA_ROLE_DEVICE || role == CA_ROLE_SERVER) {
                r = load_issuer_at(tmp, CA_ROLE_ROOT, &parent);
                if (r < 0)
                        return r;
        }
        snprintf(cn, sizeof(cn), "%s %s CA", s->organization, ca_role_name(role));
        r = ca_key_generate(s->key_type, &key);
        if (r < 0)
                goto out;
        req = (struct ca_cert_req){
                .kind = CA_KIND_CA,
                .role = role,
                .cn = cn,
                .org = s->organization,
                .pubkey = key,
                .now = now,
                .validity_s = parent ? s->intermediate_validity_s : s->root_validity_s,
                .backdate_s = s->backdate_s,
        };
        /* An intermediate never outlives the root. */
        if (parent) {
                int64_t nb, na;

                r = ca_cert_times(parent->cert, &nb, &na);
                if (r < 0)
                        goto out;
                if (now + (int64_t)req.validity_s > na)
                        req.validity_s = (uint64_t)(na - now);
        }
        r = ca_issue(parent, &req, &x);
        if (r >= 0)
                r = ca_path(path, sizeof(path), tmp, ca_role_name(role), "ca.key");
        if (r >= 0)
                r = ca_key_write_new(path, key);
        if (r >= 0)
                r = ca_path(path, sizeof(path), tmp, ca_role_name(role), "ca.pem");
        if (r >= 0)
                r = ca_pem_write_certs(path, &x, 1);
        if (r >= 0) {
                /* trust.pem: this CA and its issuers. */
                X509 *chain[2] = {x, parent ? parent->cert : NULL};

                r = ca_path(path, sizeof(path), tmp, ca_role_name(role), "trust.pem");
                if (r >= 0)
                        r = ca_pem_certs(chain, parent ? 2 : 1, &pem, &len);
                if (r >= 0)
                        r = ca_file_write_new(path, pem, len, 0644);
        }
        if (r >= 0)
                r = registry_cert_from_x509(x, CA_KIND_CA, parent ? CA_ROLE_ROOT : role, now, &rc);
        if (r >= 0)
                r = registry_cert_add(reg, &rc);
        if (r >= 0)
                r = load_issuer_at(tmp, role, &self);
        if (r >= 0) {
                /* The first CRL (number 1), so brokers can load one right away. */
                X509_CRL *crl = NULL;
                uint64_t number;

                r = registry_crl_next(reg, role, now, now + (int64_t)s->crl_next_update_s, &number);
                if (r >= 0)
                        r = ca_crl_build(self, NULL, 0, number, now, s->crl_next_update_s, &crl);
                floe_free(pem);
                pem = NULL;
                if (r >= 0)
                        r = ca_pem_crl(crl, &pem, &len);
                X509_CRL_free(crl);
                if (r >= 0)
                        r = ca_path(path, sizeof(path), tmp, ca_role_name(role), "crl.pem");
                if (r >= 0)
                        r = ca_file_write_new(path, pem, len, 0644);
        }
out:
        registry_cert_clear(&rc);
        floe_free(pem);
        ca_issuer_free(self);
        ca_issuer_free(parent);
        X509_free(x);
        EVP_PKEY_free(key);
        return r;
}

/* rm -r of a directory tree this process made (no symlinks followed). */
void ca_remove_tree(const char *path)
{
        DIR *dir = opendir(path);
        struct dirent *de;
        char sub[PATH_MAX];

        if (!dir)
                return;
        while ((de = readdir(dir))) {
                struct stat st;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                if (ca_path(sub, sizeof(sub), path, de->d_name, NULL) < 0)
                        continue;
                if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                        ca_remove_tree(sub);
                else
                        unlink(sub);
        }
        closedir(dir);
        rmdir(path);
}

static int registry_has_certs(const struct registry_cert *c, void *userdata)
{
        (void)c;
        (void)userdata;
        return 1;
}

/* The registry of a new CA: DIR/registry.db inside the directory being built,
 * or the settings' location (a relative SQLite path is inside it too). */
static int init_registry(const char *tmp, const struct ca_settings *s, struct registry **ret)
{
        char location[PATH_MAX + CA_REGISTRY_LOCATION_MAX];
        struct registry_filter f = REGISTRY_FILTER_ALL;
        struct registry *reg = NULL;
        bool file;
        int r;

        r = ca_registry_location(tmp, s->registry, location, sizeof(location), &file);
        if (r >= 0)
                r = registry_open(location, &reg);
        /* A registry elsewhere may hold another CA's certificates: never mix two. */
        if (r >= 0)
                r = registry_cert_foreach(reg, &f, registry_has_certs, NULL);
        if (r > 0)
                r = -ENOTEMPTY;
        if (r < 0) {
                registry_close(reg);
                return r;
        }
        *ret = reg;
        return 0;
}

int ca_dir_init(const char *dir, const struct ca_settings *s, int64_t now)
{
        static const enum ca_role order[] = {CA_ROLE_ROOT, CA_ROLE_DEVICE, CA_ROLE_SERVER,
                                             CA_ROLE_CLAIM, CA_ROLE_SERVICE};
        struct registry *reg = NULL;
        char tmp[PATH_MAX], path[PATH_MAX];
        char *text = NULL;
        int r;

        if (!dir || !*dir || now < 0)
                return -EINVAL;
        if (*s->registry && ca_registry_location_problem(s->registry))
                return -EINVAL;
        r = dir_is_empty(dir);
        if (r == 0)
                return -EEXIST;
        if (r < 0 && r != -ENOENT)
                return r;
        if (snprintf(tmp, sizeof(tmp), "%s.init-XXXXXX", dir) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        if (!mkdtemp(tmp))
                return -errno;
        r = ca_settings_format(s, &text);
        if (r >= 0)
                r = ca_path(path, sizeof(path), tmp, CA_SETTINGS_FILE, NULL);
        if (r >= 0)
                r = ca_file_write_new(path, text, strlen(text), 0644);
        if (r >= 0)
                r = ca_path(path, sizeof(path), tmp, CA_ISSUED_DIR, NULL);
        if (r >= 0 && mkdir(path, 0700) < 0)
                r = -errno;
        if (r >= 0)
                r = init_registry(tmp, s, &reg);
        if (r >= 0)
                r = registry_begin(reg);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(order); i++)
                r = make_ca(tmp, s, order[i], reg, now);
        if (r >= 0)
                r = registry_commit(reg);
        else if (reg)
                registry_rollback(reg);
        /* Closing checkpoints the WAL into the database file before the move. */
        reg = registry_close(reg);
        if (r >= 0 && rename(tmp, dir) < 0)
                r = errno == ENOTEMPTY ? -EEXIST : -errno;
        floe_free(text);
        if (r < 0)
                ca_remove_tree(tmp);
        return r;
}

/* -- CSR ------------------------------------------------------------------------------ */

int ca_csr_key(const char *pem, size_t len, EVP_PKEY **ret)
{
        X509_REQ *req = NULL;
        EVP_PKEY *key = NULL;
        enum ca_key_type t;
        BIO *bio;
        int r;

        if (!pem || len == 0 || len > CA_CSR_MAX)
                return -EINVAL;
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        req = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!req)
                return ca_openssl_errno(-EBADMSG);
        key = X509_REQ_get_pubkey(req);
        if (!key || X509_REQ_verify(req, key) != 1)
                r = ca_openssl_errno(-EBADMSG); /* no proof of possession */
        else
                r = ca_key_classify(key, &t);
        X509_REQ_free(req);
        ERR_clear_error();
        if (r < 0) {
                EVP_PKEY_free(key);
                return r;
        }
        *ret = key;
        return 0;
}

int ca_csr_load_key(const char *path, EVP_PKEY **ret)
{
        char *buf = NULL;
        size_t len = 0;
        int r;

        r = ca_file_read(path, CA_CSR_MAX, &buf, &len);
        if (r < 0)
                return r;
        r = ca_csr_key(buf, len, ret);
        floe_free(buf);
        return r;
}
