/* SPDX-License-Identifier: Apache-2.0 */
/* Certificates: serial numbers, subjects, extensions, signing. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "floe-alloc.h"

/* 9999-12-31T23:59:59Z: the last GeneralizedTime (RFC 5280 4.1.2.5). */
#define TIME_MAX 253402300799LL

struct ca_issuer *ca_issuer_free(struct ca_issuer *is)
{
        if (!is)
                return NULL;
        X509_free(is->cert);
        EVP_PKEY_free(is->key);
        sk_X509_pop_free(is->chain, X509_free);
        floe_free(is);
        return NULL;
}

/* -- serial numbers ------------------------------------------------------------- */

int ca_serial_random(ASN1_INTEGER **ret)
{
        unsigned char b[16];
        ASN1_INTEGER *ai;
        BIGNUM *bn;
        bool zero;

        do {
                if (RAND_bytes(b, sizeof(b)) != 1)
                        return -EIO;
                zero = true;
                for (size_t i = 0; i < sizeof(b); i++)
                        zero = zero && b[i] == 0;
        } while (zero);
        /* An unsigned magnitude: DER adds a 0x00 octet when the top bit is set. */
        bn = BN_bin2bn(b, sizeof(b), NULL);
        if (!bn)
                return -ENOMEM;
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        if (!ai)
                return -ENOMEM;
        *ret = ai;
        return 0;
}

int ca_serial_hex(const ASN1_INTEGER *serial, char ret[CA_SERIAL_HEX_MAX + 1])
{
        unsigned char b[CA_SERIAL_HEX_MAX / 2];
        BIGNUM *bn;
        int n;

        if (!serial || ASN1_STRING_type(serial) != V_ASN1_INTEGER)
                return -EINVAL;
        bn = ASN1_INTEGER_to_BN(serial, NULL);
        if (!bn)
                return -ENOMEM;
        n = BN_num_bytes(bn);
        if (BN_is_zero(bn) || n > (int)sizeof(b)) {
                BN_free(bn);
                return -ERANGE;
        }
        BN_bn2bin(bn, b);
        BN_free(bn);
        for (int i = 0; i < n; i++)
                snprintf(ret + 2 * i, 3, "%02X", b[i]);
        return 0;
}

int ca_serial_normalize(const char *s, char ret[CA_SERIAL_HEX_MAX + 1])
{
        char digits[2 * CA_SERIAL_HEX_MAX + 2];
        size_t n = 0, skip = 0, odd;

        if (!s)
                return -EINVAL;
        if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
                s += 2;
        for (; *s; s++) {
                char c = *s;

                if (c == ':')
                        continue;
                if (c >= 'a' && c <= 'f')
                        c = (char)(c - 'a' + 'A');
                if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
                        return -EINVAL;
                if (n + 2 >= sizeof(digits))
                        return -ERANGE;
                digits[n++] = c;
        }
        while (skip < n && digits[skip] == '0')
                skip++;
        if (skip == n)
                return -EINVAL; /* empty or zero */
        /* Whole bytes, like ca_serial_hex: an odd count gets a leading 0. */
        odd = (n - skip) % 2;
        if (n - skip + odd > CA_SERIAL_HEX_MAX)
                return -ERANGE;
        if (odd)
                ret[0] = '0';
        memcpy(ret + odd, digits + skip, n - skip);
        ret[odd + n - skip] = '\0';
        return 0;
}

int ca_serial_from_hex(const char *hex, ASN1_INTEGER **ret)
{
        char norm[CA_SERIAL_HEX_MAX + 1];
        ASN1_INTEGER *ai;
        BIGNUM *bn = NULL;
        int r;

        r = ca_serial_normalize(hex, norm);
        if (r < 0)
                return r;
        if (!BN_hex2bn(&bn, norm))
                return -ENOMEM;
        ai = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
        if (!ai)
                return -ENOMEM;
        *ret = ai;
        return 0;
}

/* -- reading certificates --------------------------------------------------------- */

static int asn1_time_unix(const ASN1_TIME *t, int64_t *ret)
{
        struct tm tm;

        if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
                return -EBADMSG;
        *ret = (int64_t)timegm(&tm);
        return 0;
}

char *ca_format_time(int64_t t, char *buf, size_t size)
{
        time_t tt = (time_t)t;
        struct tm tm;

        if (!gmtime_r(&tt, &tm) || strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                snprintf(buf, size, "%" PRId64, t);
        return buf;
}

int ca_cert_times(const X509 *cert, int64_t *ret_not_before, int64_t *ret_not_after)
{
        int64_t nb, na;
        int r;

        r = asn1_time_unix(X509_get0_notBefore(cert), &nb);
        if (r >= 0)
                r = asn1_time_unix(X509_get0_notAfter(cert), &na);
        if (r < 0)
                return r;
        *ret_not_before = nb;
        *ret_not_after = na;
        return 0;
}

int ca_cert_cn(const X509 *cert, char *buf, size_t size)
{
        const X509_NAME *name = X509_get_subject_name(cert);
        const ASN1_STRING *data;
        int i, type, len;

        if (!name)
                return -EBADMSG;
        i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
        if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
                return -EBADMSG; /* none, or several */
        data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
        if (!data)
                return -EBADMSG;
        type = ASN1_STRING_type(data);
        if (type != V_ASN1_UTF8STRING && type != V_ASN1_PRINTABLESTRING && type != V_ASN1_IA5STRING)
                return -EBADMSG;
        len = ASN1_STRING_length(data);
        if (len <= 0 || memchr(ASN1_STRING_get0_data(data), '\0', (size_t)len))
                return -EBADMSG;
        if ((size_t)len >= size)
                return -ENAMETOOLONG;
        memcpy(buf, ASN1_STRING_get0_data(data), (size_t)len);
        buf[len] = '\0';
        return 0;
}

int ca_cert_matches_key(X509 *cert, EVP_PKEY *key)
{
        int r = X509_check_private_key(cert, key);

        ERR_clear_error();
        return r == 1;
}

/* -- building ----------------------------------------------------------------------- */

static int add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
        int ok;

        if (!ext)
                return -ENOMEM;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -ENOMEM;
}

static int san_general_name(const struct ca_san *san, GENERAL_NAME **ret)
{
        GENERAL_NAME *g = NULL;
        ASN1_IA5STRING *s;

        if (san->type == CA_SAN_IP) {
                ASN1_OCTET_STRING *ip = a2i_IPADDRESS(san->value);

                if (!ip)
                        return -EINVAL;
                g = GENERAL_NAME_new();
                if (!g) {
                        ASN1_OCTET_STRING_free(ip);
                        return -ENOMEM;
                }
                GENERAL_NAME_set0_value(g, GEN_IPADD, ip);
                *ret = g;
                return 0;
        }
        s = ASN1_IA5STRING_new();
        if (!s || !ASN1_STRING_set(s, san->value, -1)) {
                ASN1_IA5STRING_free(s);
                return -ENOMEM;
        }
        g = GENERAL_NAME_new();
        if (!g) {
                ASN1_IA5STRING_free(s);
                return -ENOMEM;
        }
        GENERAL_NAME_set0_value(g, san->type == CA_SAN_URI ? GEN_URI : GEN_DNS, s);
        *ret = g;
        return 0;
}

/* subjectAltName built from structures, never from a config string, so a
 * value cannot smuggle in more names. Servers get their CN as a DNS name. */
static int add_san(X509 *x, const struct ca_cert_req *req)
{
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        bool cn_listed = false;
        int r = 0;

        if (!gens)
                return -ENOMEM;
        for (size_t i = 0; i < req->n_san && r >= 0; i++) {
                GENERAL_NAME *g = NULL;

                if (req->san[i].type != CA_SAN_URI && strcmp(req->san[i].value, req->cn) == 0)
                        cn_listed = true;
                r = san_general_name(&req->san[i], &g);
                if (r >= 0 && !sk_GENERAL_NAME_push(gens, g)) {
                        GENERAL_NAME_free(g);
                        r = -ENOMEM;
                }
        }
        if (r >= 0 && req->kind == CA_KIND_SERVER && !cn_listed) {
                struct ca_san cn = {.type = CA_SAN_DNS};
                unsigned char addr[4];
                GENERAL_NAME *g = NULL;

                snprintf(cn.value, sizeof(cn.value), "%s", req->cn);
                if (inet_pton(AF_INET, cn.value, addr) == 1)
                        cn.type = CA_SAN_IP; /* "10.0.0.5" is an address, not a host name */
                r = san_general_name(&cn, &g);
                if (r >= 0 && !sk_GENERAL_NAME_insert(gens, g, 0)) {
                        GENERAL_NAME_free(g);
                        r = -ENOMEM;
                }
        }
        if (r >= 0 && sk_GENERAL_NAME_num(gens) > 0 &&
            X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
                r = -ENOMEM;
        GENERAL_NAMES_free(gens);
        return r;
}

static const char *ca_eku(enum ca_role role)
{
        switch (role) {
        case CA_ROLE_DEVICE:
        case CA_ROLE_CLAIM:
        case CA_ROLE_SERVICE:
                return "clientAuth";
        case CA_ROLE_SERVER:
                return "serverAuth";
        default:
                return NULL; /* root: unconstrained */
        }
}

static int add_extensions(X509 *x, const struct ca_issuer *issuer, const struct ca_cert_req *req)
{
        X509V3_CTX ctx;
        const char *eku;
        int r;

        X509V3_set_ctx(&ctx, issuer ? issuer->cert : x, x, NULL, NULL, 0);
        if (req->kind == CA_KIND_CA) {
                r = add_ext(x, &ctx, NID_basic_constraints,
                            req->role == CA_ROLE_ROOT ? "critical,CA:TRUE,pathlen:1"
                                                      : "critical,CA:TRUE,pathlen:0");
                if (r >= 0)
                        r = add_ext(x, &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
                eku = ca_eku(req->role);
        } else {
                enum ca_key_type t = CA_KEY_P256;

                (void)ca_key_classify(req->pubkey, &t);
                r = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:FALSE");
                if (r >= 0)
                        r = add_ext(x, &ctx, NID_key_usage,
                                    req->kind == CA_KIND_SERVER && t == CA_KEY_RSA3072
                                            ? "critical,digitalSignature,keyEncipherment"
                                            : "critical,digitalSignature");
                eku = req->kind == CA_KIND_SERVER ? "serverAuth" : "clientAuth";
        }
        if (r >= 0 && eku)
                r = add_ext(x, &ctx, NID_ext_key_usage, eku);
        if (r >= 0)
                r = add_ext(x, &ctx, NID_subject_key_identifier, "hash");
        if (r >= 0 && issuer)
                r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always");
        if (r >= 0 && req->kind != CA_KIND_CA)
                r = add_san(x, req);
        return r;
}

static int check_req(const struct ca_issuer *issuer, const struct ca_cert_req *req)
{
        enum ca_key_type t;

        if (!req->pubkey || req->validity_s == 0 || req->now < 0 || req->now > TIME_MAX)
                return -EINVAL;
        if (ca_name_check(req->kind, req->cn) < 0)
                return -EINVAL;
        if (req->org && ca_name_check(CA_KIND_CA, req->org) < 0)
                return -EINVAL;
        if (ca_key_classify(req->pubkey, &t) < 0)
                return -EPROTONOSUPPORT;
        if (req->kind == CA_KIND_CA) {
                bool self = req->role == CA_ROLE_ROOT || req->role == CA_ROLE_CLAIM ||
                            req->role == CA_ROLE_SERVICE;

                if ((unsigned)req->role >= _CA_ROLE_MAX || req->n_san > 0)
                        return -EINVAL;
                if (self ? issuer != NULL : !issuer || issuer->role != CA_ROLE_ROOT)
                        return -EINVAL;
                return 0;
        }
        if (!issuer || (int)issuer->role != ca_kind_issuer(req->kind))
                return -EINVAL;
        if (req->kind == CA_KIND_DEVICE && req->org) {
                char tenant[64];

                if (ca_identity_tenant(req->cn, tenant, sizeof(tenant)) < 0 ||
                    strcmp(tenant, req->org) != 0)
                        return -EINVAL;
        }
        return 0;
}

static int set_subject(X509 *x, const struct ca_cert_req *req)
{
        X509_NAME *name = X509_get_subject_name(x);
        char tenant[64];
        const char *org = req->org;

        if (req->kind == CA_KIND_DEVICE && !org) {
                if (ca_identity_tenant(req->cn, tenant, sizeof(tenant)) < 0)
                        return -EINVAL;
                org = tenant;
        }
        if (org && !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *)org,
                                               -1, -1, 0))
                return -ENOMEM;
        if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)req->cn,
                                        -1, -1, 0))
                return -ENOMEM;
        return 0;
}

int ca_issue(const struct ca_issuer *issuer, const struct ca_cert_req *req, X509 **ret)
{
        int64_t nb, na, issuer_na = TIME_MAX, issuer_nb;
        ASN1_INTEGER *serial = NULL;
        EVP_PKEY *sign_key;
        X509 *x = NULL;
        int r;

        r = check_req(issuer, req);
        if (r < 0)
                return r;
        if (req->validity_s > (uint64_t)(TIME_MAX - req->now) ||
            req->backdate_s > (uint64_t)req->now)
                return -ERANGE;
        nb = req->now - (int64_t)req->backdate_s;
        na = req->now + (int64_t)req->validity_s;
        if (issuer) {
                r = ca_cert_times(issuer->cert, &issuer_nb, &issuer_na);
                if (r < 0)
                        return r;
                if (na > issuer_na)
                        return -ERANGE; /* would outlive its issuer */
        }
        sign_key = issuer ? issuer->key : req->pubkey;
        x = X509_new();
        if (!x)
                return -ENOMEM;
        r = ca_serial_random(&serial);
        if (r < 0)
                goto out;
        r = -ENOMEM;
        if (!X509_set_version(x, X509_VERSION_3) || !X509_set_serialNumber(x, serial) ||
            !ASN1_TIME_set(X509_getm_notBefore(x), (time_t)nb) ||
            !ASN1_TIME_set(X509_getm_notAfter(x), (time_t)na) || !X509_set_pubkey(x, req->pubkey))
                goto out;
        r = set_subject(x, req);
        if (r < 0)
                goto out;
        if (!X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer->cert)
                                            : X509_get_subject_name(x))) {
                r = -ENOMEM;
                goto out;
        }
        r = add_extensions(x, issuer, req);
        if (r < 0)
                goto out;
        if (X509_sign(x, sign_key, ca_key_digest(sign_key)) <= 0) {
                r = -ENOMEM;
                goto out;
        }
        *ret = x;
        x = NULL;
        r = 0;
out:
        ERR_clear_error();
        ASN1_INTEGER_free(serial);
        X509_free(x);
        return r;
}
