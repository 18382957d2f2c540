/* SPDX-License-Identifier: Apache-2.0 */
/* The enrollment service (certs/enroll-service.h) on a real CA directory and registry. */
#include <errno.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "enroll-service.h"
#include "floe-alloc.h"

#define NOW   1800000000LL
#define DAY   86400LL
#define TOKEN "floe-et1-00112233445566778899aabbccddeeff"

struct fx {
        char base[64];
        char dir[96];
        struct enroll_service *s;
        struct enroll_policy p;
        EVP_PKEY *k1, *k2;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static struct registry *reg(struct fx *f)
{
        return enroll_service_registry(f->s);
}

static void add_claim(struct fx *f, const char *id, const char *tenant, int64_t expires)
{
        struct registry_claim c = {.created_at = NOW - DAY, .expires_at = expires};

        snprintf(c.claim_id, sizeof(c.claim_id), "%s", id);
        snprintf(c.tenant, sizeof(c.tenant), "%s", tenant);
        assert_int_equal(registry_claim_add(reg(f), &c), 0);
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct ca_settings s;

        assert_non_null(f);
        snprintf(f->base, sizeof(f->base), "/tmp/floe-test-enroll-XXXXXX");
        assert_non_null(mkdtemp(f->base));
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->base);
        ca_settings_default(&s);
        assert_int_equal(ca_dir_init(f->dir, &s, NOW - 10 * DAY), 0);
        enroll_policy_default(&f->p);
        f->p.validity_s = 30 * DAY;
        assert_int_equal(enroll_service_new(f->dir, NULL, &f->p, &f->s, NULL), 0);
        assert_int_equal(ca_key_generate(CA_KEY_P256, &f->k1), 0);
        assert_int_equal(ca_key_generate(CA_KEY_P256, &f->k2), 0);
        add_claim(f, "claim-a", "acme", NOW + 365 * DAY);
        assert_int_equal(registry_entitlement_add(reg(f), "claim-a", "acme.gw-1", false, NOW), 0);
        assert_int_equal(registry_token_add(reg(f), "claim-a", TOKEN, NULL, NOW + DAY, NOW), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        enroll_service_free(f->s);
        EVP_PKEY_free(f->k1);
        EVP_PKEY_free(f->k2);
        assert_int_equal(nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

/* -- requests ------------------------------------------------------------------------------ */

/* A CSR for key with an optional extension ("basicConstraints" = "critical,CA:TRUE"). */
static X509_REQ *csr_new(EVP_PKEY *key, const char *cn, int ext_nid, const char *ext_value,
                         const EVP_MD *md)
{
        X509_REQ *req = X509_REQ_new();

        assert_non_null(req);
        assert_true(X509_REQ_set_version(req, 0));
        assert_true(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                               (const unsigned char *)cn, -1, -1, 0));
        if (ext_nid) {
                STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
                X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, NULL, ext_nid, ext_value);

                assert_non_null(e);
                sk_X509_EXTENSION_push(exts, e);
                assert_true(X509_REQ_add_extensions(req, exts));
                sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
        }
        assert_true(X509_REQ_set_pubkey(req, key));
        assert_true(X509_REQ_sign(req, key, md) > 0);
        return req;
}

static char *csr_pem(X509_REQ *req)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data, *out;
        long len;

        assert_true(PEM_write_bio_X509_REQ(b, req));
        len = BIO_get_mem_data(b, &data);
        out = strndup(data, (size_t)len);
        BIO_free(b);
        X509_REQ_free(req);
        return out;
}

static char *pem_for(EVP_PKEY *key)
{
        return csr_pem(csr_new(key, "ignored/CN", 0, NULL, EVP_sha256()));
}

/* A JSON request; identity or token NULL: absent. The returned text is malloc'ed. */
static char *request(const char *identity, const char *csr, const char *token)
{
        json_t *o = json_pack("{s:s}", "csr", csr);
        char *text;

        if (identity)
                json_object_set_new(o, "identity", json_string(identity));
        if (token)
                json_object_set_new(o, "token", json_string(token));
        text = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        return text;
}

static void handle(struct fx *f, enum enroll_kind kind, const char *id, const char *identity,
                   EVP_PKEY *key, const char *token, int64_t now, struct enroll_result *res)
{
        char *csr = pem_for(key);
        char *text = request(identity, csr, token);

        assert_int_equal(enroll_service_handle(f->s, kind, id, text, strlen(text), now, res), 0);
        free(text);
        free(csr);
}

static void expect(const struct enroll_result *r, enum enroll_reason reason)
{
        if (r->err.reason != reason)
                fail_msg("got %s (%s), wanted %s", enroll_reason_name(r->err.reason),
                         r->err.message, enroll_reason_name(reason));
        if (reason != ENROLL_OK)
                assert_null(r->certificate);
}

static X509 *parse(const char *pem)
{
        X509 *x = NULL;

        assert_int_equal(ca_pem_parse_cert(pem, strlen(pem), &x), 0);
        return x;
}

/* -- tests ----------------------------------------------------------------------------------- */

static void test_claim_allowlist(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0}, again = {0};
        BASIC_CONSTRAINTS *bc;
        EXTENDED_KEY_USAGE *eku;
        GENERAL_NAMES *san;
        char cn[64], *resp = NULL;
        int64_t nb, na;
        size_t len;
        X509 *x;

        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_OK);
        assert_false(r.replay);
        assert_false(r.token);
        assert_string_equal(r.identity, "acme.gw-1");
        x = parse(r.certificate);
        assert_int_equal(ca_cert_cn(x, cn, sizeof(cn)), 0);
        assert_string_equal(cn, "acme.gw-1");
        assert_int_equal(ca_cert_matches_key(x, f->k1), 1);
        assert_int_equal(ca_cert_times(x, &nb, &na), 0);
        assert_int_equal(nb, NOW - 300);
        assert_int_equal(na, NOW + 30 * DAY);
        assert_int_equal(r.not_after, na);
        bc = X509_get_ext_d2i(x, NID_basic_constraints, NULL, NULL);
        assert_non_null(bc);
        assert_false(bc->ca);
        BASIC_CONSTRAINTS_free(bc);
        eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
        assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
        assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
        EXTENDED_KEY_USAGE_free(eku);
        san = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_int_equal(sk_GENERAL_NAME_num(san), 1);
        assert_string_equal(ASN1_STRING_get0_data(sk_GENERAL_NAME_value(san, 0)->d.ia5),
                            "urn:floe:device:acme.gw-1");
        GENERAL_NAMES_free(san);
        X509_free(x);
        /* the response carries the device CA, not the root */
        assert_int_equal(enroll_service_respond(f->s, &r, &resp, &len), 0);
        assert_non_null(strstr(resp, "\"replay\":false"));
        assert_int_equal(strstr(resp, "BEGIN CERTIFICATE") != NULL, 1);
        floe_free(resp);
        /* a retry with the same key: the same certificate; another key: refused */
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, NOW + 60, &again);
        expect(&again, ENROLL_OK);
        assert_true(again.replay);
        assert_string_equal(again.serial, r.serial);
        assert_string_equal(again.certificate, r.certificate);
        enroll_result_clear(&again);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k2, NULL, NOW + 60, &again);
        expect(&again, ENROLL_ALREADY_ENROLLED);
        enroll_result_clear(&again);
        /* not on the allowlist, no claim at all, another tenant */
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-2", f->k1, NULL, NOW, &again);
        expect(&again, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&again);
        handle(f, ENROLL_KIND_CLAIM, "claim-zz", "acme.gw-1", f->k1, NULL, NOW, &again);
        expect(&again, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&again);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "other.gw-1", f->k1, TOKEN, NOW, &again);
        expect(&again, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&again);
        enroll_result_clear(&r);
}

static void test_claim_token(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0}, again = {0};

        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-1", f->k1, TOKEN, NOW, &r);
        expect(&r, ENROLL_OK);
        assert_true(r.token);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-1", f->k1, TOKEN, NOW + 1, &again);
        expect(&again, ENROLL_OK);
        assert_true(again.replay);
        assert_string_equal(again.serial, r.serial);
        enroll_result_clear(&again);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-2", f->k1, TOKEN, NOW + 2, &again);
        expect(&again, ENROLL_TOKEN_USED);
        enroll_result_clear(&again);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-2", f->k1, "floe-et1-nothex", NOW, &again);
        expect(&again, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&again);
        /* the certificate of the burned token was revoked: a retry gets nothing */
        assert_int_equal(registry_revoke_serial(reg(f), r.serial, CA_REASON_KEY_COMPROMISE, NOW),
                         0);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-1", f->k1, TOKEN, NOW + 3, &again);
        expect(&again, ENROLL_TOKEN_USED);
        enroll_result_clear(&again);
        enroll_result_clear(&r);
}

static void test_claim_state(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0};

        add_claim(f, "claim-old", "acme", NOW + 10);
        assert_int_equal(registry_entitlement_add(reg(f), "claim-old", "acme.o-1", false, NOW), 0);
        handle(f, ENROLL_KIND_CLAIM, "claim-old", "acme.o-1", f->k1, NULL, NOW + 11, &r);
        expect(&r, ENROLL_CLAIM_EXPIRED);
        enroll_result_clear(&r);
        assert_int_equal(registry_claim_disable(reg(f), "claim-a"), 0);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_CLAIM_REVOKED);
        enroll_result_clear(&r);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.t-9", f->k1, TOKEN, NOW, &r);
        expect(&r, ENROLL_CLAIM_REVOKED);
        enroll_result_clear(&r);
}

static void test_rate_limit(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0};
        int64_t now = NOW - NOW % 3600 + 100;

        f->p.claim_rate_limit = 2;
        enroll_service_set_policy(f->s, &f->p);
        for (int i = 0; i < 2; i++) {
                handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, now, &r);
                expect(&r, ENROLL_OK);
                enroll_result_clear(&r);
        }
        /* refused requests count too, and the limit holds whatever the request */
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, now + 1, &r);
        expect(&r, ENROLL_RATE_LIMITED);
        assert_int_equal(r.retry_after_s, 3600 - 101);
        enroll_result_clear(&r);
        assert_int_equal(enroll_service_handle(f->s, ENROLL_KIND_CLAIM, "claim-a", "{", 1, now, &r),
                         0);
        expect(&r, ENROLL_RATE_LIMITED);
        enroll_result_clear(&r);
        /* the next window */
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, now + 3600, &r);
        expect(&r, ENROLL_OK);
        enroll_result_clear(&r);
}

static void test_requests_refused(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0};
        char *csr;
        char *text;

        /* a bad request in CBOR is answered in CBOR */
        assert_int_equal(
                enroll_service_handle(f->s, ENROLL_KIND_CLAIM, "claim-a", "\xa1\x01", 2, NOW, &r),
                0);
        expect(&r, ENROLL_BAD_REQUEST);
        assert_int_equal(r.format, ENROLL_FORMAT_CBOR);
        enroll_result_clear(&r);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", NULL, f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_BAD_REQUEST);
        assert_non_null(strstr(r.err.message, "identity"));
        enroll_result_clear(&r);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.GW-1", f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_BAD_IDENTITY);
        assert_string_equal(r.identity, "");
        enroll_result_clear(&r);
        /* CA:TRUE */
        csr = csr_pem(csr_new(f->k1, "x", NID_basic_constraints, "critical,CA:TRUE", EVP_sha256()));
        text = request("acme.gw-1", csr, NULL);
        assert_int_equal(enroll_service_handle(f->s, ENROLL_KIND_CLAIM, "claim-a", text,
                                               strlen(text), NOW, &r),
                         0);
        expect(&r, ENROLL_BAD_CSR);
        assert_non_null(strstr(r.err.message, "CA:TRUE"));
        enroll_result_clear(&r);
        free(text);
        free(csr);
        /* the refusals burned nothing: the allowlist entry still works */
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_OK);
        enroll_result_clear(&r);
        /* bad kinds and ids are the caller's bug */
        assert_int_equal(
                enroll_service_handle(f->s, ENROLL_KIND_CLAIM, "acme.gw-1", "{}", 2, NOW, &r),
                -EINVAL);
        assert_int_equal(
                enroll_service_handle(f->s, ENROLL_KIND_RENEW, "claim-a", "{}", 2, NOW, &r),
                -EINVAL);
}

/* The CSR checks on their own. */
static int check(EVP_PKEY *key, int nid, const char *value, const EVP_MD *md, unsigned min,
                 struct enroll_error *e)
{
        struct enroll_request req = {0};
        EVP_PKEY *got = NULL;
        int r;

        req.csr = csr_pem(csr_new(key, "x", nid, value, md));
        req.csr_len = strlen(req.csr);
        r = enroll_csr_check(&req, min, &got, e);
        if (r == 0) {
                assert_int_equal(EVP_PKEY_eq(got, key), 1);
                EVP_PKEY_free(got);
        }
        free(req.csr);
        return r;
}

static void test_csr_checks(void **state)
{
        struct enroll_error e = {0};
        EVP_PKEY *p256, *p384, *p224, *rsa2048, *ed;

        (void)state;
        p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
        p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
        p224 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-224");
        rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
        ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_true(p256 && p384 && p224 && rsa2048 && ed);
        assert_int_equal(check(p256, 0, NULL, EVP_sha256(), 3072, &e), 0);
        assert_int_equal(check(p384, 0, NULL, EVP_sha384(), 3072, &e), 0);
        assert_int_equal(check(p256, 0, NULL, EVP_sha512(), 3072, &e), 0);
        assert_int_equal(check(p224, 0, NULL, EVP_sha256(), 3072, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_WEAK_KEY);
        assert_int_equal(check(rsa2048, 0, NULL, EVP_sha256(), 3072, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_WEAK_KEY);
        assert_non_null(strstr(e.message, "2048 bits: at least 3072"));
        assert_int_equal(check(rsa2048, 0, NULL, EVP_sha256(), 2048, &e), 0);
        assert_int_equal(check(ed, 0, NULL, NULL, 2048, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_UNSUPPORTED_KEY);
        assert_int_equal(check(p256, 0, NULL, EVP_sha1(), 2048, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_BAD_CSR);
        assert_non_null(strstr(e.message, "SHA1"));
        assert_int_equal(
                check(p256, NID_basic_constraints, "critical,CA:TRUE", EVP_sha256(), 2048, &e),
                -EBADMSG);
        assert_int_equal(e.reason, ENROLL_BAD_CSR);
        /* CA:FALSE and other extensions are fine (and never copied) */
        assert_int_equal(check(p256, NID_basic_constraints, "CA:FALSE", EVP_sha256(), 2048, &e), 0);
        assert_int_equal(
                check(p256, NID_subject_alt_name, "DNS:evil.example", EVP_sha256(), 2048, &e), 0);
        EVP_PKEY_free(p256);
        EVP_PKEY_free(p384);
        EVP_PKEY_free(p224);
        EVP_PKEY_free(rsa2048);
        EVP_PKEY_free(ed);
}

static void test_csr_der_and_signature(void **state)
{
        struct fx *f = *state;
        struct enroll_request req = {0};
        struct enroll_error e = {0};
        X509_REQ *x = csr_new(f->k1, "x", 0, NULL, EVP_sha256());
        unsigned char *der = NULL;
        EVP_PKEY *got = NULL;
        int len;

        len = i2d_X509_REQ(x, &der);
        assert_true(len > 0);
        X509_REQ_free(x);
        req.csr = (char *)der;
        req.csr_len = (size_t)len;
        req.csr_der = true;
        assert_int_equal(enroll_csr_check(&req, 3072, &got, &e), 0);
        EVP_PKEY_free(got);
        /* one bit of the signature: no proof of possession */
        der[len - 3] ^= 1;
        assert_int_equal(enroll_csr_check(&req, 3072, &got, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_BAD_CSR);
        assert_non_null(strstr(e.message, "proof of possession"));
        der[len - 3] ^= 1;
        /* trailing bytes after the DER, and a truncated one */
        req.csr_len = (size_t)len - 1;
        assert_int_equal(enroll_csr_check(&req, 3072, &got, &e), -EBADMSG);
        OPENSSL_free(der);
        req.csr = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        req.csr_len = strlen(req.csr);
        req.csr_der = false;
        assert_int_equal(enroll_csr_check(&req, 3072, &got, &e), -EBADMSG);
        assert_int_equal(e.reason, ENROLL_BAD_CSR);
}

static void test_renewal(void **state)
{
        struct fx *f = *state;
        struct enroll_result first = {0}, r = {0}, again = {0};

        /* no certificate yet: nothing to renew */
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", NULL, f->k1, NULL, NOW, &r);
        expect(&r, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&r);
        handle(f, ENROLL_KIND_CLAIM, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &first);
        expect(&first, ENROLL_OK);
        /* a new key: a new certificate for the topic's identity */
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", NULL, f->k2, NULL, NOW + 100, &r);
        expect(&r, ENROLL_OK);
        assert_false(r.replay);
        assert_string_equal(r.identity, "acme.gw-1");
        assert_string_not_equal(r.serial, first.serial);
        /* retried within renew_replay: the same one */
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", "acme.gw-1", f->k2, NULL, NOW + 200, &again);
        expect(&again, ENROLL_OK);
        assert_true(again.replay);
        assert_string_equal(again.serial, r.serial);
        enroll_result_clear(&again);
        /* the same key later: renewed (a certificate for an unchanged key) */
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", NULL, f->k2, NULL, NOW + 100 + 601, &again);
        expect(&again, ENROLL_OK);
        assert_false(again.replay);
        assert_string_not_equal(again.serial, r.serial);
        enroll_result_clear(&again);
        /* another identity in the payload */
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", "acme.gw-2", f->k2, NULL, NOW, &again);
        expect(&again, ENROLL_BAD_IDENTITY);
        enroll_result_clear(&again);
        /* all revoked: refused */
        assert_int_equal(registry_revoke_identity(reg(f), "acme.gw-1", CA_REASON_KEY_COMPROMISE,
                                                  NOW + 1000, NULL),
                         0);
        handle(f, ENROLL_KIND_RENEW, "acme.gw-1", NULL, f->k1, NULL, NOW + 1001, &again);
        expect(&again, ENROLL_NOT_ENTITLED);
        enroll_result_clear(&again);
        enroll_result_clear(&r);
        enroll_result_clear(&first);
}

static void test_validity_capped_at_the_device_ca(void **state)
{
        struct fx *f = *state;
        struct enroll_result r = {0};
        int64_t end = enroll_service_issuer_not_after(f->s);

        add_claim(f, "claim-z", "acme", end + 10 * DAY);
        assert_int_equal(registry_entitlement_add(reg(f), "claim-z", "acme.z-1", false, NOW), 0);
        assert_int_equal(registry_entitlement_add(reg(f), "claim-z", "acme.z-2", false, NOW), 0);
        handle(f, ENROLL_KIND_CLAIM, "claim-z", "acme.z-1", f->k1, NULL, end - DAY, &r);
        expect(&r, ENROLL_OK);
        assert_int_equal(r.not_after, end);
        enroll_result_clear(&r);
        /* past the device CA: nothing is signed, and the entitlement is not used */
        handle(f, ENROLL_KIND_CLAIM, "claim-z", "acme.z-2", f->k1, NULL, end + 1, &r);
        expect(&r, ENROLL_INTERNAL);
        assert_int_equal(r.error, -EKEYEXPIRED);
        enroll_result_clear(&r);
        handle(f, ENROLL_KIND_CLAIM, "claim-z", "acme.z-2", f->k2, NULL, end - 10, &r);
        expect(&r, ENROLL_OK);
        enroll_result_clear(&r);
}

static void test_reload_issuer(void **state)
{
        struct fx *f = *state;
        char path[256];

        assert_int_equal(enroll_service_reload_issuer(f->s), 0);
        /* a broken device CA: the old one stays */
        snprintf(path, sizeof(path), "%s/device/ca.key", f->dir);
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(enroll_service_reload_issuer(f->s), -EPERM);
        assert_int_equal(chmod(path, 0600), 0);
        assert_true(enroll_service_issuer_not_after(f->s) > NOW);
}

static void test_allocation_failures(void **state)
{
        struct fx *f = *state;
        char *csr = pem_for(f->k1);
        char *text = request("acme.t-7", csr, TOKEN);
        struct enroll_result r = {0};

        for (uint64_t n = 1; n < 400; n++) {
                floe_alloc_fail_at(n);
                assert_int_equal(enroll_service_handle(f->s, ENROLL_KIND_CLAIM, "claim-a", text,
                                                       strlen(text), NOW, &r),
                                 0);
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        expect(&r, ENROLL_OK);
                        assert_false(r.replay); /* no failed attempt burned the token */
                        enroll_result_clear(&r);
                        free(text);
                        free(csr);
                        return;
                }
                floe_alloc_fail_at(0);
                expect(&r, ENROLL_INTERNAL);
                enroll_result_clear(&r);
        }
        fail_msg("more than 400 allocations");
}

static void decide(struct fx *f, const char *id, const char *identity, EVP_PKEY *key,
                   const char *token, int64_t now, struct enroll_result *res)
{
        char *csr = pem_for(key);
        char *text = request(identity, csr, token);

        assert_int_equal(
                enroll_service_decide(f->s, ENROLL_KIND_CLAIM, id, text, strlen(text), now, res),
                0);
        free(text);
        free(csr);
}

static void test_batch(void **state)
{
        struct fx *f = *state;
        struct enroll_result r[4];
        int64_t end = enroll_service_issuer_not_after(f->s);
        uint64_t total = 0, unused = 0;

        memset(r, 0, sizeof(r));
        add_claim(f, "claim-z", "acme", end + 10 * DAY);
        assert_int_equal(registry_token_add(reg(f), "claim-z",
                                            "floe-et1-ffffffffffffffffffffffffffffffff", NULL,
                                            end + DAY, NOW),
                         0);
        /* outside a batch: an internal failure, not a crash */
        decide(f, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &r[0]);
        expect(&r[0], ENROLL_INTERNAL);
        enroll_result_clear(&r[0]);
        assert_int_equal(enroll_service_commit(f->s), -ENOTCONN);
        /* one batch: issued, refused, failed (past the device CA), issued */
        assert_int_equal(enroll_service_begin(f->s), 0);
        assert_int_equal(enroll_service_begin(f->s), -EALREADY);
        decide(f, "claim-a", "acme.gw-1", f->k1, NULL, NOW, &r[0]);
        decide(f, "claim-a", "acme.gw-2", f->k1, NULL, NOW, &r[1]);
        decide(f, "claim-z", "acme.z-1", f->k1, "floe-et1-ffffffffffffffffffffffffffffffff",
               end + 1, &r[2]);
        decide(f, "claim-a", "acme.t-1", f->k2, TOKEN, NOW, &r[3]);
        expect(&r[0], ENROLL_OK);
        expect(&r[1], ENROLL_NOT_ENTITLED);
        expect(&r[2], ENROLL_INTERNAL);
        expect(&r[3], ENROLL_OK);
        assert_int_equal(enroll_service_commit(f->s), 0);
        /* the failed one burned nothing; the others are recorded */
        assert_int_equal(registry_token_count(reg(f), "claim-z", &total, &unused), 0);
        assert_int_equal(unused, 1);
        assert_int_equal(registry_token_count(reg(f), "claim-a", &total, &unused), 0);
        assert_int_equal(unused, 0);
        for (int i = 0; i < 4; i++)
                enroll_result_clear(&r[i]);
        /* an aborted batch records nothing: the same requests are new again */
        assert_int_equal(enroll_service_begin(f->s), 0);
        decide(f, "claim-z", "acme.z-2", f->k1, "floe-et1-ffffffffffffffffffffffffffffffff", NOW,
               &r[0]);
        expect(&r[0], ENROLL_OK);
        enroll_service_abort(f->s);
        enroll_result_set_internal(&r[0], -EIO);
        expect(&r[0], ENROLL_INTERNAL);
        assert_int_equal(registry_token_count(reg(f), "claim-z", &total, &unused), 0);
        assert_int_equal(unused, 1);
        enroll_result_clear(&r[0]);
        handle(f, ENROLL_KIND_CLAIM, "claim-z", "acme.z-2", f->k1,
               "floe-et1-ffffffffffffffffffffffffffffffff", NOW, &r[0]);
        expect(&r[0], ENROLL_OK);
        assert_false(r[0].replay);
        enroll_result_clear(&r[0]);
}

static void test_savepoints(void **state)
{
        struct fx *f = *state;
        struct registry *rg = reg(f);
        uint64_t count = 0;

        assert_int_equal(registry_savepoint(rg), -ENOTCONN);
        assert_int_equal(registry_begin(rg), 0);
        assert_int_equal(registry_savepoint(rg), 0);
        assert_int_equal(registry_savepoint(rg), -EALREADY);
        assert_int_equal(registry_rate_hit(rg, "claim-a", NOW, 60, 100, &count), 0);
        assert_int_equal(registry_savepoint_rollback(rg), 0);
        assert_int_equal(registry_savepoint_rollback(rg), -ENOTCONN);
        assert_int_equal(registry_savepoint(rg), 0);
        assert_int_equal(registry_rate_hit(rg, "claim-a", NOW, 60, 100, &count), 0);
        assert_int_equal(count, 1); /* the first hit was undone */
        assert_int_equal(registry_savepoint_release(rg), 0);
        assert_int_equal(registry_savepoint_release(rg), -ENOTCONN);
        assert_int_equal(registry_commit(rg), 0);
        assert_int_equal(registry_rate_hit(rg, "claim-a", NOW, 60, 100, &count), 0);
        assert_int_equal(count, 2);
        /* a rollback of the whole transaction drops an open savepoint too */
        assert_int_equal(registry_begin(rg), 0);
        assert_int_equal(registry_savepoint(rg), 0);
        registry_rollback(rg);
        assert_int_equal(registry_savepoint_release(rg), -ENOTCONN);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_claim_allowlist, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_token, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_state, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_requests_refused, setup, teardown),
                cmocka_unit_test(test_csr_checks),
                cmocka_unit_test_setup_teardown(test_csr_der_and_signature, setup, teardown),
                cmocka_unit_test_setup_teardown(test_renewal, setup, teardown),
                cmocka_unit_test_setup_teardown(test_validity_capped_at_the_device_ca, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_reload_issuer, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_savepoints, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
