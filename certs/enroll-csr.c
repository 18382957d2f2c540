/* SPDX-License-Identifier: Apache-2.0 */
/* CSR checks of floe-enrolld: format, key policy, proof of possession, CA:TRUE. */
#include <errno.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "enroll-service.h"

#define RSA_MAX_BITS 8192

static int parse(const struct enroll_request *req, X509_REQ **ret, struct enroll_error *err)
{
        X509_REQ *x = NULL;

        if (!req->csr || req->csr_len == 0)
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: empty");
        if (req->csr_len > CA_CSR_MAX)
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: larger than %d bytes", CA_CSR_MAX);
        if (req->csr_der) {
                const unsigned char *p = (const unsigned char *)req->csr;

                x = d2i_X509_REQ(NULL, &p, (long)req->csr_len);
                if (x && p != (const unsigned char *)req->csr + req->csr_len) {
                        X509_REQ_free(x);
                        ERR_clear_error();
                        return enroll_fail(err, ENROLL_BAD_CSR, "csr: bytes after the DER request");
                }
        } else {
                BIO *bio = BIO_new_mem_buf(req->csr, (int)req->csr_len);

                if (!bio)
                        return -ENOMEM;
                x = PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL);
                BIO_free(bio);
        }
        if (!x) {
                int r = ca_openssl_errno(-EBADMSG);

                if (r == -ENOMEM)
                        return r;
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: not a PKCS#10 certificate request%s",
                                   req->csr_der ? " (DER)" : " (PEM)");
        }
        *ret = x;
        return 0;
}

static int check_key(EVP_PKEY *key, unsigned rsa_min_bits, struct enroll_error *err)
{
        int bits = EVP_PKEY_get_bits(key);
        enum ca_key_type t;

        if (EVP_PKEY_is_a(key, "EC")) {
                char group[64] = "";
                size_t len = 0;

                if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                    sizeof(group), &len))
                        return enroll_fail(err, ENROLL_UNSUPPORTED_KEY,
                                           "EC key without a named curve (P-256 or P-384)");
                if (bits < 256)
                        return enroll_fail(err, ENROLL_WEAK_KEY,
                                           "EC curve %s has %d bits: P-256 or P-384 required",
                                           group, bits);
                if (ca_key_classify(key, &t) < 0)
                        return enroll_fail(err, ENROLL_UNSUPPORTED_KEY,
                                           "EC curve %s not accepted: P-256 or P-384", group);
                return 0;
        }
        if (EVP_PKEY_is_a(key, "RSA")) {
                if (bits < (int)rsa_min_bits)
                        return enroll_fail(err, ENROLL_WEAK_KEY,
                                           "RSA key of %d bits: at least %u required", bits,
                                           rsa_min_bits);
                if (bits > RSA_MAX_BITS || ca_key_classify(key, &t) < 0)
                        return enroll_fail(err, ENROLL_UNSUPPORTED_KEY,
                                           "RSA key of %d bits not accepted (at most %d)", bits,
                                           RSA_MAX_BITS);
                return 0;
        }
        return enroll_fail(err, ENROLL_UNSUPPORTED_KEY,
                           "%s keys are not accepted: EC P-256, P-384 or RSA",
                           EVP_PKEY_get0_type_name(key) ? EVP_PKEY_get0_type_name(key) : "such");
}

static int check_signature(X509_REQ *x, EVP_PKEY *key, struct enroll_error *err)
{
        int sig_nid = X509_REQ_get_signature_nid(x), md_nid = NID_undef, pk_nid = NID_undef;

        if (!OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) ||
            (md_nid != NID_sha256 && md_nid != NID_sha384 && md_nid != NID_sha512))
                return enroll_fail(err, ENROLL_BAD_CSR,
                                   "csr: signature algorithm %s not accepted (SHA-256, SHA-384 "
                                   "or SHA-512)",
                                   OBJ_nid2sn(sig_nid) ? OBJ_nid2sn(sig_nid) : "unknown");
        if (X509_REQ_verify(x, key) != 1) {
                ERR_clear_error();
                return enroll_fail(err, ENROLL_BAD_CSR,
                                   "csr: the signature does not verify (no proof of possession)");
        }
        return 0;
}

static int check_extensions(X509_REQ *x, struct enroll_error *err)
{
        STACK_OF(X509_EXTENSION) * exts;
        int i, r = 0;

        if (X509_REQ_get_attr_by_NID(x, NID_ext_req, -1) < 0)
                return 0;
        exts = X509_REQ_get_extensions(x);
        if (!exts) {
                ERR_clear_error();
                return enroll_fail(err, ENROLL_BAD_CSR, "csr: malformed extension request");
        }
        i = X509v3_get_ext_by_NID(exts, NID_basic_constraints, -1);
        if (i >= 0) {
                BASIC_CONSTRAINTS *bc = X509V3_EXT_d2i(sk_X509_EXTENSION_value(exts, i));

                if (!bc)
                        r = enroll_fail(err, ENROLL_BAD_CSR, "csr: malformed basicConstraints");
                else if (bc->ca)
                        r = enroll_fail(err, ENROLL_BAD_CSR,
                                        "csr: asks for CA:TRUE; devices get CA:FALSE only");
                BASIC_CONSTRAINTS_free(bc);
        }
        sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        ERR_clear_error();
        return r;
}

int enroll_csr_check(const struct enroll_request *req, unsigned rsa_min_bits, EVP_PKEY **ret_key,
                     struct enroll_error *err)
{
        X509_REQ *x = NULL;
        EVP_PKEY *key = NULL;
        int r;

        r = parse(req, &x, err);
        if (r < 0)
                return r;
        key = X509_REQ_get_pubkey(x);
        if (!key) {
                r = ca_openssl_errno(-EBADMSG);
                if (r != -ENOMEM)
                        r = enroll_fail(err, ENROLL_BAD_CSR, "csr: unreadable public key");
        }
        if (r >= 0)
                r = check_key(key, rsa_min_bits, err);
        if (r >= 0)
                r = check_signature(x, key, err);
        if (r >= 0)
                r = check_extensions(x, err);
        X509_REQ_free(x);
        ERR_clear_error();
        if (r < 0) {
                EVP_PKEY_free(key);
                return r;
        }
        *ret_key = key;
        return 0;
}
