/* SPDX-License-Identifier: Apache-2.0 */
/* The device key, its CSR and the enrollment files (docs/enrollment.md, "Device side"). */
#include "enroll-key.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "floe-alloc.h"

static bool has_propq(const char *propq)
{
        return propq && *propq;
}

int agent_enroll_provider_load(const char *name)
{
        static OSSL_PROVIDER *prov, *deflt;

        if (!name || !*name || prov)
                return 0;
        /* an explicit load turns off the automatic one of "default", which TLS needs */
        if (strcmp(name, "default") != 0 && !deflt) {
                deflt = OSSL_PROVIDER_load(NULL, "default");
                if (!deflt)
                        return -ENOENT;
        }
        prov = OSSL_PROVIDER_load(NULL, name);
        if (!prov) {
                ERR_clear_error();
                return -ENOENT;
        }
        return 0;
}

int agent_enroll_key_generate(enum agent_key_type type, const char *propq, EVP_PKEY **ret)
{
        const char *alg = type == AGENT_KEY_RSA3072 ? "RSA" : "EC";
        EVP_PKEY_CTX *ctx;
        EVP_PKEY *key = NULL;
        int ok;

        if (type < 0 || type >= _AGENT_KEY_TYPE_MAX)
                return -EINVAL;
        ctx = EVP_PKEY_CTX_new_from_name(NULL, alg, has_propq(propq) ? propq : NULL);
        if (!ctx) {
                ERR_clear_error();
                return -EOPNOTSUPP;
        }
        ok = EVP_PKEY_keygen_init(ctx) > 0;
        if (ok && type == AGENT_KEY_RSA3072)
                ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 3072) > 0;
        else if (ok)
                ok = EVP_PKEY_CTX_set_group_name(ctx, type == AGENT_KEY_P384 ? "P-384" : "P-256") >
                     0;
        ok = ok && EVP_PKEY_generate(ctx, &key) > 0;
        EVP_PKEY_CTX_free(ctx);
        if (!ok) {
                ERR_clear_error();
                EVP_PKEY_free(key);
                return -EIO;
        }
        *ret = key;
        return 0;
}

int agent_enroll_key_load(const char *path, const char *propq, EVP_PKEY **ret)
{
        FILE *f = fopen(path, "re");
        EVP_PKEY *key = NULL;
        BIO *b;

        if (!f)
                return -errno;
        b = BIO_new_fp(f, BIO_NOCLOSE);
        if (b)
                key = PEM_read_bio_PrivateKey_ex(b, NULL, NULL, NULL, NULL,
                                                 has_propq(propq) ? propq : NULL);
        BIO_free(b);
        fclose(f);
        if (!b)
                return -ENOMEM;
        if (!key) {
                ERR_clear_error();
                return -EBADMSG;
        }
        *ret = key;
        return 0;
}

bool agent_enroll_key_is_type(EVP_PKEY *key, enum agent_key_type type)
{
        char group[64];
        size_t n = 0;
        int nid;

        if (type == AGENT_KEY_RSA3072)
                return EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) == 3072;
        if (!EVP_PKEY_is_a(key, "EC") || !EVP_PKEY_get_group_name(key, group, sizeof(group), &n)) {
                ERR_clear_error();
                return false;
        }
        /* "prime256v1" from the default provider; a provider may say "P-256" */
        nid = OBJ_sn2nid(group);
        if (nid == NID_undef)
                nid = EC_curve_nist2nid(group);
        return nid == (type == AGENT_KEY_P384 ? NID_secp384r1 : NID_X9_62_prime256v1);
}

/* A memory BIO's contents as a NUL-terminated floe_malloc string. */
static int bio_string(BIO *b, char **ret)
{
        char *data, *s;
        long n = BIO_get_mem_data(b, &data);

        if (n <= 0)
                return -EIO;
        s = floe_malloc((size_t)n + 1);
        if (!s)
                return -ENOMEM;
        memcpy(s, data, (size_t)n);
        s[n] = '\0';
        *ret = s;
        return 0;
}

int agent_enroll_csr(EVP_PKEY *key, const char *identity, const char *propq, char **ret)
{
        const char *pq = has_propq(propq) ? propq : NULL;
        const char *md =
                EVP_PKEY_is_a(key, "EC") && EVP_PKEY_get_bits(key) == 384 ? "SHA384" : "SHA256";
        X509_REQ *req = X509_REQ_new_ex(NULL, pq);
        EVP_MD_CTX *mctx = EVP_MD_CTX_new();
        BIO *b = BIO_new(BIO_s_mem());
        int r = -ENOMEM;

        if (!req || !mctx || !b)
                goto out;
        r = -EIO;
        /* the subject is all floe-enrolld looks at, and it builds its own from the registry */
        if (!X509_REQ_set_version(req, X509_REQ_VERSION_1) ||
            !X509_NAME_add_entry_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                        MBSTRING_UTF8, (const unsigned char *)identity, -1, -1,
                                        0) ||
            !X509_REQ_set_pubkey(req, key))
                goto out;
        if (EVP_DigestSignInit_ex(mctx, NULL, md, NULL, pq, key, NULL) <= 0 ||
            X509_REQ_sign_ctx(req, mctx) <= 0 || !PEM_write_bio_X509_REQ(b, req))
                goto out;
        r = bio_string(b, ret);
out:
        ERR_clear_error();
        BIO_free(b);
        EVP_MD_CTX_free(mctx);
        X509_REQ_free(req);
        return r;
}

int agent_enroll_key_write(EVP_PKEY *key, const char *propq, const char *path)
{
        BIO *b = BIO_new(BIO_s_secmem());
        char *data;
        long n;
        int r;

        if (!b)
                return -ENOMEM;
        if (!PEM_write_bio_PrivateKey_ex(b, key, NULL, NULL, 0, NULL, NULL, NULL,
                                         has_propq(propq) ? propq : NULL)) {
                ERR_clear_error();
                BIO_free(b);
                return -EIO;
        }
        n = BIO_get_mem_data(b, &data);
        r = n > 0 ? agent_enroll_write_file(path, data, (size_t)n, 0600) : -EIO;
        if (n > 0)
                OPENSSL_cleanse(data, (size_t)n);
        BIO_free(b);
        return r;
}

/* ---- files ---- */

static int fsync_parent(const char *path)
{
        _cleanup_free_ char *dir = floe_strdup(path);
        const char *d;
        char *slash;
        int fd, r = 0;

        if (!dir)
                return -ENOMEM;
        d = dir;
        slash = strrchr(dir, '/');
        if (!slash)
                d = ".";
        else if (slash == dir)
                slash[1] = '\0';
        else
                *slash = '\0';
        fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

int agent_enroll_write_file(const char *path, const void *data, size_t len, mode_t mode)
{
        size_t n = strlen(path);
        _cleanup_free_ char *tmp = floe_malloc(n + sizeof(".tmp"));
        int fd, r;

        if (!tmp)
                return -ENOMEM;
        memcpy(tmp, path, n);
        memcpy(tmp + n, ".tmp", sizeof(".tmp"));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0 && errno == EEXIST) {
                /* left by a crash: nobody else writes these files */
                if (unlink(tmp) < 0)
                        return -errno;
                fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        }
        if (fd < 0)
                return -errno;
        r = fchmod(fd, mode) < 0 ? -errno : 0;
        r = r ?: write_all(fd, data, len);
        if (r == 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return fsync_parent(path);
}

int agent_enroll_rename(const char *from, const char *to)
{
        if (rename(from, to) < 0)
                return -errno;
        return fsync_parent(to);
}

int agent_enroll_remove(const char *path)
{
        if (unlink(path) < 0)
                return errno == ENOENT ? 0 : -errno;
        return fsync_parent(path);
}

int agent_enroll_files_init(struct agent_enroll_files *f, const char *cert, const char *key)
{
        int a = snprintf(f->cert_new, sizeof(f->cert_new), "%s.new", cert);
        int b = snprintf(f->key_new, sizeof(f->key_new), "%s.new", key);

        if (a < 0 || b < 0 || (size_t)a >= sizeof(f->cert_new) || (size_t)b >= sizeof(f->key_new))
                return -ENAMETOOLONG;
        f->cert = cert;
        f->key = key;
        return 0;
}

int agent_enroll_pending_key(const struct agent_enroll_files *f, enum agent_key_type type,
                             const char *propq, EVP_PKEY **ret, bool *ret_reused)
{
        EVP_PKEY *key = NULL;
        int r;

        r = agent_enroll_key_load(f->key_new, propq, &key);
        if (r == 0 && agent_enroll_key_is_type(key, type)) {
                *ret = key;
                *ret_reused = true;
                return 0;
        }
        EVP_PKEY_free(key);
        key = NULL;
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r;
        r = agent_enroll_key_generate(type, propq, &key);
        if (r == 0)
                r = agent_enroll_key_write(key, propq, f->key_new);
        if (r < 0) {
                EVP_PKEY_free(key);
                return r;
        }
        *ret = key;
        *ret_reused = false;
        return 0;
}

int agent_enroll_install(const struct agent_enroll_files *f)
{
        int r;

        /* the key first: a crash before the certificate follows is finished by recover */
        if (access(f->key_new, F_OK) == 0) {
                r = agent_enroll_rename(f->key_new, f->key);
                if (r < 0)
                        return r;
        } else if (errno != ENOENT) {
                return -errno;
        }
        return agent_enroll_rename(f->cert_new, f->cert);
}

int agent_enroll_discard(const struct agent_enroll_files *f)
{
        int r = agent_enroll_remove(f->cert_new);
        int k = agent_enroll_remove(f->key_new);

        return r < 0 ? r : k;
}

void agent_enroll_secret_free(char *s)
{
        if (!s)
                return;
        OPENSSL_cleanse(s, strlen(s));
        floe_free(s);
}
