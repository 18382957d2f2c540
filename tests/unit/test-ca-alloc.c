/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Allocation failure torture for certificate issuance and CRLs: OpenSSL's own
 * allocations are routed through floe_malloc (CRYPTO_set_mem_functions, before
 * OpenSSL allocates anything), and then every allocation of an operation fails
 * in turn. Each must return an error (or a complete result, where OpenSSL
 * tolerates the failure) without crashing or leaking, and a final run must
 * succeed. Run under ASan and valgrind for the "without leaking" part.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "ca.h"
#include "floe-alloc.h"

#define NOW 1800000000LL
#define DAY 86400ULL

static void *os_malloc(size_t n, const char *file, int line)
{
        (void)file;
        (void)line;
        return floe_malloc(n);
}

static void *os_realloc(void *p, size_t n, const char *file, int line)
{
        (void)file;
        (void)line;
        return floe_realloc(p, n);
}

static void os_free(void *p, const char *file, int line)
{
        (void)file;
        (void)line;
        floe_free(p);
}

struct fixture {
        struct ca_issuer root, device;
        EVP_PKEY *leaf_key;
};

static struct fixture fx;

static void make(struct ca_issuer *is, struct ca_issuer *parent, enum ca_role role, const char *cn)
{
        struct ca_cert_req req = {
                .kind = CA_KIND_CA,
                .role = role,
                .cn = cn,
                .now = NOW,
                .validity_s = 1000 * DAY,
        };

        is->role = role;
        assert_int_equal(ca_key_generate(CA_KEY_P256, &is->key), 0);
        req.pubkey = is->key;
        assert_int_equal(ca_issue(parent, &req, &is->cert), 0);
}

static int setup(void **state)
{
        (void)state;
        make(&fx.root, NULL, CA_ROLE_ROOT, "root CA");
        make(&fx.device, &fx.root, CA_ROLE_DEVICE, "device CA");
        assert_int_equal(ca_key_generate(CA_KEY_P256, &fx.leaf_key), 0);
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        X509_free(fx.root.cert);
        EVP_PKEY_free(fx.root.key);
        X509_free(fx.device.cert);
        EVP_PKEY_free(fx.device.key);
        EVP_PKEY_free(fx.leaf_key);
        return 0;
}

typedef int (*op_fn)(void);

static int op_issue(void)
{
        struct ca_san san = {.type = CA_SAN_URI, .value = "urn:floe:acme:gw-1"};
        struct ca_cert_req req = {
                .kind = CA_KIND_DEVICE,
                .cn = "acme.gw-1",
                .san = &san,
                .n_san = 1,
                .pubkey = fx.leaf_key,
                .now = NOW,
                .validity_s = 90 * DAY,
                .backdate_s = 300,
        };
        char cn[64];
        X509 *x = NULL;
        int r;

        r = ca_issue(&fx.device, &req, &x);
        if (r < 0)
                return r;
        /* the result is complete: it verifies and names its subject */
        r = X509_verify(x, fx.device.key) == 1 ? ca_cert_cn(x, cn, sizeof(cn)) : -ENOMEM;
        if (r == 0 && strcmp(cn, "acme.gw-1") != 0)
                r = -EBADMSG;
        X509_free(x);
        return r;
}

static int op_crl(void)
{
        struct ca_revoked rv[2] = {
                {.serial = "0123456789ABCDEF", .revoked_at = NOW, .reason = 1},
                {.serial = "0FEDCBA9", .revoked_at = NOW, .reason = 0},
        };
        X509_CRL *crl = NULL;
        char *pem = NULL;
        size_t len;
        int r;

        r = ca_crl_build(&fx.device, rv, 2, 3, NOW, DAY, &crl);
        if (r < 0)
                return r;
        r = X509_CRL_verify(crl, fx.device.key) == 1 ? ca_pem_crl(crl, &pem, &len) : -ENOMEM;
        floe_free(pem);
        X509_CRL_free(crl);
        return r;
}

static int op_keygen(void)
{
        EVP_PKEY *key = NULL;
        char fp[65];
        int r;

        r = ca_key_generate(CA_KEY_P256, &key);
        if (r < 0)
                return r;
        r = ca_key_fingerprint(key, fp);
        EVP_PKEY_free(key);
        return r;
}

static void torture(op_fn op, uint64_t max)
{
        uint64_t n;
        int r;

        assert_int_equal(op(), 0); /* warm-up: OpenSSL's lazy initialisation */
        for (n = 1; n < max; n++) {
                floe_alloc_fail_at(n);
                r = op();
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(r, 0);
                        break;
                }
                floe_alloc_fail_at(0);
                ERR_clear_error();
                /* An error, or success where OpenSSL tolerates the failure (e.g. in
                 * its error queue). Not always -ENOMEM: OpenSSL does not report every
                 * failed allocation as such (a failed parameter query reads as an
                 * unsupported key), and failing closed is what matters. */
                if (r > 0)
                        fail_msg("allocation %" PRIu64 ": %d", n, r);
        }
        assert_true(n < max);
        assert_int_equal(op(), 0);
}

static void test_issue_torture(void **state)
{
        (void)state;
        torture(op_issue, 5000);
}

static void test_crl_torture(void **state)
{
        (void)state;
        torture(op_crl, 5000);
}

static void test_keygen_torture(void **state)
{
        (void)state;
        torture(op_keygen, 5000);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_issue_torture),
                cmocka_unit_test(test_crl_torture),
                cmocka_unit_test(test_keygen_torture),
        };

        /* Must come before OpenSSL's first allocation. */
        if (!CRYPTO_set_mem_functions(os_malloc, os_realloc, os_free)) {
                fprintf(stderr, "CRYPTO_set_mem_functions failed\n");
                return 1;
        }
        return cmocka_run_group_tests(tests, setup, teardown);
}
