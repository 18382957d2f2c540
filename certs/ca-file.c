/* SPDX-License-Identifier: Apache-2.0 */
/* Files: exclusive creation, atomic replacement, bounded reads, PEM. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "ca.h"
#include "floe-alloc.h"

#define PEM_FILE_MAX (4 * 1024 * 1024)

static int write_all(int fd, const void *data, size_t len)
{
        const char *p = data;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Writes, sets the mode whatever the umask, fsyncs; closes fd. */
static int fill_and_close(int fd, const void *data, size_t len, mode_t mode)
{
        int r = write_all(fd, data, len);

        if (r >= 0 && fchmod(fd, mode) < 0)
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && r >= 0)
                r = -errno;
        return r;
}

int ca_file_sync_dir(const char *path)
{
        char buf[4096];
        int fd, r = 0;

        if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
                return -ENAMETOOLONG;
        fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

int ca_file_write_new(const char *path, const void *data, size_t len, mode_t mode)
{
        int fd, r;

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0600);
        if (fd < 0)
                return -errno;
        r = fill_and_close(fd, data, len, mode);
        if (r < 0) {
                unlink(path);
                return r;
        }
        return ca_file_sync_dir(path);
}

int ca_file_temp_name(const char *path, char *buf, size_t size)
{
        unsigned char rnd[6];
        int n;

        if (RAND_bytes(rnd, sizeof(rnd)) != 1)
                return -EIO;
        n = snprintf(buf, size, "%s.tmp-%02x%02x%02x%02x%02x%02x", path, rnd[0], rnd[1], rnd[2],
                     rnd[3], rnd[4], rnd[5]);
        return n >= 0 && (size_t)n < size ? 0 : -ENAMETOOLONG;
}

int ca_file_replace(const char *path, const void *data, size_t len, mode_t mode)
{
        char tmp[4096];
        int fd, r;

        r = ca_file_temp_name(path, tmp, sizeof(tmp));
        if (r < 0)
                return r;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode & 0600);
        if (fd < 0)
                return -errno;
        r = fill_and_close(fd, data, len, mode);
        if (r >= 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                unlink(tmp);
                return r;
        }
        return ca_file_sync_dir(path);
}

int ca_file_read_fd(int fd, size_t max, char **ret, size_t *ret_len)
{
        char *buf = NULL;
        size_t len = 0, cap = 0;

        for (;;) {
                ssize_t n;

                if (len + 1 >= cap) {
                        size_t ncap = cap ? cap * 2 : 4096;
                        char *nbuf;

                        if (ncap > max + 2)
                                ncap = max + 2;
                        if (ncap <= len + 1) {
                                floe_free(buf);
                                return -EFBIG;
                        }
                        nbuf = floe_realloc(buf, ncap);
                        if (!nbuf) {
                                floe_free(buf);
                                return -ENOMEM;
                        }
                        buf = nbuf;
                        cap = ncap;
                }
                n = read(fd, buf + len, cap - len - 1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        n = -errno;
                        floe_free(buf);
                        return (int)n;
                }
                if (n == 0)
                        break;
                len += (size_t)n;
                if (len > max) {
                        floe_free(buf);
                        return -EFBIG;
                }
        }
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

int ca_file_read(const char *path, size_t max, char **ret, size_t *ret_len)
{
        int fd, r;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = ca_file_read_fd(fd, max, ret, ret_len);
        close(fd);
        return r;
}

/* The contents of a memory BIO as a floe_malloc'd NUL-terminated string. */
static int bio_take(BIO *bio, char **ret, size_t *ret_len)
{
        char *data = NULL, *s;
        long len = BIO_get_mem_data(bio, &data);

        if (len < 0 || (len > 0 && !data))
                return -ENOMEM;
        s = floe_malloc((size_t)len + 1);
        if (!s)
                return -ENOMEM;
        if (len > 0)
                memcpy(s, data, (size_t)len);
        s[len] = '\0';
        *ret = s;
        *ret_len = (size_t)len;
        return 0;
}

int ca_pem_certs(X509 *const *certs, size_t n, char **ret, size_t *ret_len)
{
        BIO *bio = BIO_new(BIO_s_mem());
        int r = 0;

        if (!bio)
                return -ENOMEM;
        for (size_t i = 0; i < n && r >= 0; i++)
                if (PEM_write_bio_X509(bio, certs[i]) != 1)
                        r = -ENOMEM;
        if (r >= 0)
                r = bio_take(bio, ret, ret_len);
        BIO_free(bio);
        return r;
}

int ca_pem_crl(const X509_CRL *crl, char **ret, size_t *ret_len)
{
        BIO *bio = BIO_new(BIO_s_mem());
        int r = 0;

        if (!bio)
                return -ENOMEM;
        /* OpenSSL 3.0 takes a non-const CRL; it does not modify it. */
        if (PEM_write_bio_X509_CRL(bio, (X509_CRL *)crl) != 1)
                r = -ENOMEM;
        if (r >= 0)
                r = bio_take(bio, ret, ret_len);
        BIO_free(bio);
        return r;
}

int ca_pem_write_certs(const char *path, X509 *const *certs, size_t n)
{
        char *pem = NULL;
        size_t len = 0;
        int r;

        r = ca_pem_certs(certs, n, &pem, &len);
        if (r < 0)
                return r;
        r = ca_file_write_new(path, pem, len, 0644);
        floe_free(pem);
        return r;
}

int ca_pem_parse_cert(const char *pem, size_t len, X509 **ret)
{
        BIO *bio;
        X509 *x;

        if (len > INT32_MAX)
                return -EFBIG;
        bio = BIO_new_mem_buf(pem, (int)len);
        if (!bio)
                return -ENOMEM;
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        if (!x)
                return -EBADMSG;
        *ret = x;
        return 0;
}

int ca_pem_read_certs(const char *path, STACK_OF(X509) * *ret)
{
        STACK_OF(X509) *sk = NULL;
        char *buf = NULL;
        size_t len = 0;
        BIO *bio;
        X509 *x;
        int r;

        r = ca_file_read(path, PEM_FILE_MAX, &buf, &len);
        if (r < 0)
                return r;
        bio = BIO_new_mem_buf(buf, (int)len);
        sk = sk_X509_new_null();
        if (!bio || !sk) {
                r = -ENOMEM;
                goto out;
        }
        while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
                if (!sk_X509_push(sk, x)) {
                        X509_free(x);
                        r = -ENOMEM;
                        goto out;
                }
        }
        ERR_clear_error(); /* the loop ends on "no start line" */
        if (sk_X509_num(sk) == 0) {
                r = -EBADMSG;
                goto out;
        }
        *ret = sk;
        sk = NULL;
out:
        sk_X509_pop_free(sk, X509_free);
        BIO_free(bio);
        floe_free(buf);
        return r;
}

int ca_pem_read_cert(const char *path, X509 **ret)
{
        STACK_OF(X509) * sk;
        X509 *x;
        int r;

        r = ca_pem_read_certs(path, &sk);
        if (r < 0)
                return r;
        x = sk_X509_shift(sk);
        sk_X509_pop_free(sk, X509_free);
        *ret = x;
        return 0;
}
