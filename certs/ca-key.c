/* SPDX-License-Identifier: Apache-2.0 */
/* Keys: generation, classification, fingerprints, 0600 key files. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "ca.h"
#include "floe-alloc.h"

#define KEY_FILE_MAX (64 * 1024)

int ca_openssl_errno(int fallback)
{
        unsigned long e;
        int r = fallback;

        while ((e = ERR_get_error()) != 0)
                if (ERR_GET_REASON(e) == ERR_R_MALLOC_FAILURE)
                        r = -ENOMEM;
        return r;
}

int ca_key_generate(enum ca_key_type type, EVP_PKEY **ret)
{
        EVP_PKEY *key = NULL;

        switch (type) {
        case CA_KEY_P256:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
                break;
        case CA_KEY_P384:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
                break;
        case CA_KEY_RSA3072:
                key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)3072);
                break;
        default:
                return -EINVAL;
        }
        if (!key)
                return -ENOMEM;
        *ret = key;
        return 0;
}

int ca_key_classify(const EVP_PKEY *key, enum ca_key_type *ret)
{
        char group[64];
        size_t len = 0;

        if (!key)
                return -EINVAL;
        if (EVP_PKEY_is_a(key, "EC")) {
                if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), &len))
                        return ca_openssl_errno(-EPROTONOSUPPORT); /* explicit parameters */
                if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0) {
                        *ret = CA_KEY_P256;
                        return 0;
                }
                if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0) {
                        *ret = CA_KEY_P384;
                        return 0;
                }
                return -EPROTONOSUPPORT;
        }
        if (EVP_PKEY_is_a(key, "RSA")) {
                int bits = EVP_PKEY_get_bits(key);

                if (bits < 2048 || bits > 8192)
                        return -EPROTONOSUPPORT;
                *ret = CA_KEY_RSA3072;
                return 0;
        }
        return -EPROTONOSUPPORT;
}

const EVP_MD *ca_key_digest(const EVP_PKEY *key)
{
        enum ca_key_type t;

        if (ca_key_classify(key, &t) == 0 && t == CA_KEY_P384)
                return EVP_sha384();
        return EVP_sha256();
}

int ca_key_fingerprint(const EVP_PKEY *key, char ret[65])
{
        unsigned char *der = NULL, md[32];
        unsigned int mdlen = 0;
        int len;

        len = i2d_PUBKEY(key, &der);
        if (len <= 0)
                return ca_openssl_errno(-EINVAL);
        if (EVP_Digest(der, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
                OPENSSL_free(der);
                return -ENOMEM;
        }
        OPENSSL_free(der);
        for (size_t i = 0; i < 32; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

int ca_key_write_new(const char *path, const EVP_PKEY *key)
{
        BIO *bio;
        char *pem = NULL;
        long len;
        int r;

        bio = BIO_new(BIO_s_mem());
        if (!bio)
                return -ENOMEM;
        if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1) {
                BIO_free(bio);
                return -ENOMEM;
        }
        len = BIO_get_mem_data(bio, &pem);
        if (len <= 0 || !pem) {
                BIO_free(bio);
                return -ENOMEM;
        }
        r = ca_file_write_new(path, pem, (size_t)len, 0600);
        OPENSSL_cleanse(pem, (size_t)len);
        BIO_free(bio);
        return r;
}

/* Never prompt on a terminal for a passphrase: encrypted keys are refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *userdata)
{
        (void)buf;
        (void)size;
        (void)rwflag;
        (void)userdata;
        return -1;
}

int ca_key_load(const char *path, bool allow_loose_mode, EVP_PKEY **ret)
{
        EVP_PKEY *key;
        struct stat st;
        char *buf = NULL;
        size_t len = 0;
        BIO *bio;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                r = -errno;
        else if (!S_ISREG(st.st_mode))
                r = -EINVAL;
        else if (!allow_loose_mode && (st.st_mode & 0077))
                r = -EPERM;
        else
                r = ca_file_read_fd(fd, KEY_FILE_MAX, &buf, &len);
        close(fd);
        if (r < 0)
                return r;
        bio = BIO_new_mem_buf(buf, (int)len);
        r = bio ? -EBADMSG : -ENOMEM;
        key = bio ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
        BIO_free(bio);
        OPENSSL_cleanse(buf, len);
        floe_free(buf);
        if (!key)
                return r;
        *ret = key;
        return 0;
}
