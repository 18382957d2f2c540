/* SPDX-License-Identifier: Apache-2.0 */
/* Whether a certificate is the device's (docs/enrollment.md, "Device side"). */
#include "enroll-key.h"

#include <errno.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"

#define CHAIN_MAX 8

static const char *const problem_names[] = {
        [AGENT_CERT_OK] = "valid",
        [AGENT_CERT_MISSING] = "missing",
        [AGENT_CERT_UNPARSABLE] = "unparsable",
        [AGENT_CERT_KEY_MISSING] = "key-missing",
        [AGENT_CERT_KEY_MISMATCH] = "key-mismatch",
        [AGENT_CERT_IDENTITY] = "wrong-identity",
        [AGENT_CERT_NOT_CLIENT] = "not-client-auth",
        [AGENT_CERT_EXPIRED] = "expired",
        [AGENT_CERT_NOT_YET_VALID] = "not-yet-valid",
        [AGENT_CERT_UNTRUSTED] = "untrusted",
};

const char *agent_cert_problem_name(enum agent_cert_problem p)
{
        return p >= 0 && p < _AGENT_CERT_PROBLEM_MAX ? problem_names[p] : "unknown";
}

static int problem(enum agent_cert_problem p, enum agent_cert_problem *ret, char *why, size_t size,
                   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int problem(enum agent_cert_problem p, enum agent_cert_problem *ret, char *why, size_t size,
                   const char *fmt, ...)
{
        va_list ap;

        *ret = p;
        if (why && size) {
                va_start(ap, fmt);
                vsnprintf(why, size, fmt, ap);
                va_end(ap);
        }
        ERR_clear_error();
        return -EBADMSG;
}

static int load_root(X509_STORE *store, const char *root_file)
{
        FILE *f = fopen(root_file, "re");
        int n = 0;
        X509 *x;

        if (!f)
                return -errno;
        while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
                int ok = X509_STORE_add_cert(store, x);

                X509_free(x);
                if (!ok) {
                        fclose(f);
                        ERR_clear_error();
                        return -ENOMEM;
                }
                n++;
        }
        fclose(f);
        ERR_clear_error();
        return n > 0 ? 0 : -EBADMSG;
}

static int64_t asn1_time(const ASN1_TIME *t)
{
        struct tm tm;

        if (!ASN1_TIME_to_tm(t, &tm))
                return 0;
        return (int64_t)timegm(&tm);
}

/* The one CN, exactly: no second CN, no NUL, printable length. */
static int leaf_cn(X509 *leaf, char *buf, size_t size)
{
        const X509_NAME *name = X509_get_subject_name(leaf);
        int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        const ASN1_STRING *s;
        int n;

        if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
                return -EBADMSG;
        s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        n = ASN1_STRING_length(s);
        if (n <= 0 || (size_t)n >= size || memchr(ASN1_STRING_get0_data(s), '\0', (size_t)n))
                return -EBADMSG;
        memcpy(buf, ASN1_STRING_get0_data(s), (size_t)n);
        buf[n] = '\0';
        return 0;
}

static int serial_hex(X509 *x, char *buf, size_t size)
{
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        unsigned char b[32];
        int n;

        if (!bn)
                return -ENOMEM;
        n = BN_num_bytes(bn);
        if (n > (int)sizeof(b) || (size_t)(2 * n) >= size) {
                BN_free(bn);
                return -ERANGE;
        }
        BN_bn2bin(bn, b);
        BN_free(bn);
        buf[0] = '\0';
        for (int i = 0; i < n; i++)
                snprintf(buf + 2 * i, 3, "%02X", b[i]);
        return 0;
}

static enum agent_cert_problem verify_error(int e)
{
        switch (e) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
                return AGENT_CERT_EXPIRED;
        case X509_V_ERR_CERT_NOT_YET_VALID:
                return AGENT_CERT_NOT_YET_VALID;
        default:
                return AGENT_CERT_UNTRUSTED;
        }
}

int agent_enroll_verify(const char *pem, size_t len, EVP_PKEY *key, const char *identity,
                        const char *root_file, int64_t now, enum agent_cert_problem *ret_problem,
                        struct agent_cert_info *ret_info, char *why, size_t why_size)
{
        struct agent_cert_info info = {0};
        STACK_OF(X509) *chain = NULL;
        X509_STORE_CTX *ctx = NULL;
        X509_STORE *store = NULL;
        X509 *leaf = NULL, *x;
        BIO *b = NULL;
        int r = -ENOMEM, e;

        if (len > AGENT_ENROLL_PEM_MAX)
                return problem(AGENT_CERT_UNPARSABLE, ret_problem, why, why_size,
                               "larger than %d bytes", AGENT_ENROLL_PEM_MAX);
        b = BIO_new_mem_buf(pem, (int)len);
        chain = sk_X509_new_null();
        if (!b || !chain)
                goto out;
        while ((x = PEM_read_bio_X509(b, NULL, NULL, NULL))) {
                if (!leaf) {
                        leaf = x;
                } else if (sk_X509_num(chain) >= CHAIN_MAX || !sk_X509_push(chain, x)) {
                        X509_free(x);
                        r = problem(AGENT_CERT_UNPARSABLE, ret_problem, why, why_size,
                                    "more than %d certificates", CHAIN_MAX);
                        goto out;
                }
        }
        ERR_clear_error();
        if (!leaf) {
                r = problem(AGENT_CERT_UNPARSABLE, ret_problem, why, why_size,
                            "no PEM certificate");
                goto out;
        }
        /* what the leaf says, whatever is wrong with it */
        r = serial_hex(leaf, info.serial, sizeof(info.serial));
        if (r < 0)
                goto out;
        info.not_before = asn1_time(X509_get0_notBefore(leaf));
        info.not_after = asn1_time(X509_get0_notAfter(leaf));
        if (leaf_cn(leaf, info.identity, sizeof(info.identity)) < 0)
                info.identity[0] = '\0';
        if (ret_info)
                *ret_info = info;
        if (key && EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
                r = problem(AGENT_CERT_KEY_MISMATCH, ret_problem, why, why_size,
                            "its public key is not the device key");
                goto out;
        }
        if (!info.identity[0] || (identity && strcmp(info.identity, identity) != 0)) {
                r = problem(AGENT_CERT_IDENTITY, ret_problem, why, why_size, "its CN is not %s",
                            identity ? identity : "an identity");
                goto out;
        }
        if (!(X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) ||
            !(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT)) {
                r = problem(AGENT_CERT_NOT_CLIENT, ret_problem, why, why_size,
                            "no clientAuth extended key usage");
                goto out;
        }
        store = X509_STORE_new();
        ctx = X509_STORE_CTX_new();
        if (!store || !ctx)
                goto out;
        r = load_root(store, root_file);
        if (r < 0)
                goto out;
        if (!X509_STORE_CTX_init(ctx, store, leaf, chain) ||
            !X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT)) {
                r = -ENOMEM;
                goto out;
        }
        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now);
        if (X509_verify_cert(ctx) != 1) {
                e = X509_STORE_CTX_get_error(ctx);
                r = problem(verify_error(e), ret_problem, why, why_size, "%s (depth %d)",
                            X509_verify_cert_error_string(e), X509_STORE_CTX_get_error_depth(ctx));
                goto out;
        }
        *ret_problem = AGENT_CERT_OK;
        r = 0;
out:
        ERR_clear_error();
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        sk_X509_pop_free(chain, X509_free);
        X509_free(leaf);
        BIO_free(b);
        return r;
}

int agent_enroll_pem_certs(const char *pem, size_t len, char **ret, size_t *ret_len)
{
        BIO *in = NULL, *out = NULL;
        char *data, *s = NULL;
        int n = 0, r = -ENOMEM;
        long m;
        X509 *x;

        if (len > AGENT_ENROLL_PEM_MAX)
                return -EMSGSIZE;
        in = BIO_new_mem_buf(pem, (int)len);
        out = BIO_new(BIO_s_mem());
        if (!in || !out)
                goto out;
        while (n <= CHAIN_MAX && (x = PEM_read_bio_X509(in, NULL, NULL, NULL))) {
                int ok = PEM_write_bio_X509(out, x);

                X509_free(x);
                if (!ok)
                        goto out;
                n++;
        }
        r = -EBADMSG;
        m = BIO_get_mem_data(out, &data);
        if (n == 0 || n > CHAIN_MAX || m <= 0)
                goto out;
        r = -ENOMEM;
        s = floe_malloc((size_t)m + 1);
        if (!s)
                goto out;
        memcpy(s, data, (size_t)m);
        s[m] = '\0';
        *ret = s;
        *ret_len = (size_t)m;
        r = 0;
out:
        ERR_clear_error();
        BIO_free(in);
        BIO_free(out);
        return r;
}

static int read_small(const char *path, char **ret, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *buf;
        size_t n;

        if (!f)
                return -errno;
        buf = floe_malloc(AGENT_ENROLL_PEM_MAX + 1);
        if (!buf) {
                fclose(f);
                return -ENOMEM;
        }
        n = fread(buf, 1, AGENT_ENROLL_PEM_MAX + 1, f);
        if (ferror(f)) {
                fclose(f);
                floe_free(buf);
                return -EIO;
        }
        fclose(f);
        *ret = buf;
        *ret_len = n;
        return 0;
}

int agent_enroll_check_files(const char *cert_file, const char *key_file, const char *propq,
                             const char *identity, const char *root_file, int64_t now,
                             enum agent_cert_problem *ret_problem, struct agent_cert_info *ret_info,
                             char *why, size_t why_size)
{
        _cleanup_free_ char *pem = NULL;
        EVP_PKEY *key = NULL;
        size_t len = 0;
        int r, k;

        r = read_small(cert_file, &pem, &len);
        if (r == -ENOENT)
                return problem(AGENT_CERT_MISSING, ret_problem, why, why_size, "%s does not exist",
                               cert_file);
        if (r < 0)
                return r;
        r = agent_enroll_key_load(key_file, propq, &key);
        if (r < 0 && r != -ENOENT && r != -EBADMSG)
                return r;
        /* a certificate that does not parse says more than a missing key */
        k = agent_enroll_verify(pem, len, key, identity, root_file, now, ret_problem, ret_info, why,
                                why_size);
        EVP_PKEY_free(key);
        if (r < 0 && !(k == -EBADMSG && *ret_problem == AGENT_CERT_UNPARSABLE))
                return problem(AGENT_CERT_KEY_MISSING, ret_problem, why, why_size, "%s %s",
                               key_file, r == -ENOENT ? "does not exist" : "holds no private key");
        return k;
}

int agent_enroll_recover(const struct agent_enroll_files *f, const char *propq,
                         const char *identity, const char *root_file, int64_t now, bool *ret_staged,
                         enum agent_cert_problem *ret_problem, struct agent_cert_info *ret_info,
                         char *why, size_t why_size)
{
        enum agent_cert_problem cur, stg;
        const char *key;
        int r;

        *ret_staged = false;
        r = agent_enroll_check_files(f->cert, f->key, propq, identity, root_file, now, &cur,
                                     ret_info, why, why_size);
        if (r < 0 && r != -EBADMSG)
                return r;
        if (access(f->cert_new, F_OK) < 0) {
                *ret_problem = cur;
                return r;
        }
        key = access(f->key_new, F_OK) == 0 ? f->key_new : f->key;
        r = agent_enroll_check_files(f->cert_new, key, propq, identity, root_file, now, &stg, NULL,
                                     NULL, 0);
        if (r < 0 && r != -EBADMSG)
                return r;
        if (stg != AGENT_CERT_OK) {
                /* half written or stale: the pending key (if any) stays for the next request */
                r = agent_enroll_remove(f->cert_new);
                if (r < 0)
                        return r;
        } else if (cur == AGENT_CERT_OK) {
                /* a renewal that had not connected yet: try it again first */
                *ret_staged = true;
        } else {
                r = agent_enroll_install(f);
                if (r < 0)
                        return r;
        }
        r = agent_enroll_check_files(f->cert, f->key, propq, identity, root_file, now, &cur,
                                     ret_info, why, why_size);
        if (r < 0 && r != -EBADMSG)
                return r;
        *ret_problem = cur;
        return r;
}

int64_t agent_enroll_renew_time(int64_t not_before, int64_t not_after, double at,
                                uint64_t jitter_us, uint64_t random)
{
        int64_t nb = not_before * 1000000, na = not_after * 1000000, base;
        uint64_t room;

        if (na <= nb)
                return nb;
        base = nb + (int64_t)(at * (double)(na - nb));
        if (base > na)
                base = na;
        room = (uint64_t)(na - base) / 2;
        if (jitter_us > room)
                jitter_us = room;
        return base + (int64_t)(random % (jitter_us + 1));
}
