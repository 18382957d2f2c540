/* SPDX-License-Identifier: Apache-2.0 */
/* The device side of enrollment without the network (agent/enroll-key.h, enroll-client.h):
 * keys and CSRs, the answer's checks against a PKI made here, the renewal time, the request
 * and answer formats, and the files with every allocation failing in turn. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "enroll-client.h"
#include "enroll-key.h"
#include "floe-alloc.h"

#define NOW  1800000000LL
#define HOUR 3600LL
#define DAY  86400LL

static char tmpdir[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int setup(void **state)
{
        (void)state;
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-enroll-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        floe_alloc_fail_at(0);
        assert_int_equal(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        return 0;
}

static char *tmp(const char *name)
{
        static char buf[8][160];
        static int i;

        i = (i + 1) % 8;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
        return buf[i];
}

static void put(const char *path, const char *text)
{
        FILE *f = fopen(path, "we");

        assert_non_null(f);
        assert_int_equal(fputs(text, f) >= 0, 1);
        assert_int_equal(fclose(f), 0);
}

static char *get(const char *path)
{
        static char buf[65536];
        FILE *f = fopen(path, "re");
        size_t n;

        if (!f)
                return NULL;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return buf;
}

static bool exists(const char *path)
{
        return access(path, F_OK) == 0;
}

static mode_t mode_of(const char *path)
{
        struct stat st;

        assert_int_equal(stat(path, &st), 0);
        return st.st_mode & 07777;
}

/* -- a PKI: root -> intermediate -> device leaf, made with OpenSSL here -------------------- */

static EVP_PKEY *new_key(void)
{
        EVP_PKEY *k = NULL;

        assert_int_equal(agent_enroll_key_generate(AGENT_KEY_P256, NULL, &k), 0);
        return k;
}

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
        X509V3_CTX ctx;
        X509_EXTENSION *e;

        X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
        e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        assert_non_null(e);
        assert_int_equal(X509_add_ext(x, e, -1), 1);
        X509_EXTENSION_free(e);
}

/* A certificate for key with CN cn, valid [NOW+nb, NOW+na], signed by issuer (NULL: itself). */
static X509 *make_cert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key, bool ca,
                       const char *eku, int64_t nb, int64_t na)
{
        static long serial = 1000;
        X509 *x = X509_new();

        assert_non_null(x);
        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "O", MBSTRING_UTF8,
                                   (const unsigned char *)"acme", -1, -1, 0);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(issuer ? issuer : x));
        ASN1_TIME_set(X509_getm_notBefore(x), (time_t)(NOW + nb));
        ASN1_TIME_set(X509_getm_notAfter(x), (time_t)(NOW + na));
        X509_set_pubkey(x, key);
        ext(x, issuer, NID_basic_constraints, ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
        ext(x, issuer, NID_key_usage,
            ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature");
        if (eku)
                ext(x, issuer, NID_ext_key_usage, eku);
        ext(x, issuer, NID_subject_key_identifier, "hash");
        assert_int_not_equal(X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()), 0);
        return x;
}

static void append_pem(char *buf, size_t size, X509 *x)
{
        BIO *b = BIO_new(BIO_s_mem());
        char *data;
        long n;

        assert_int_equal(PEM_write_bio_X509(b, x), 1);
        size_t at = strlen(buf);

        n = BIO_get_mem_data(b, &data);
        assert_true(at + (size_t)n < size);
        memcpy(buf + at, data, (size_t)n);
        buf[at + (size_t)n] = '\0';
        BIO_free(b);
}

struct pki {
        EVP_PKEY *root_key, *int_key, *dev_key, *other_key;
        X509 *root, *inter, *leaf;
        char root_file[160];
        char chain[16384]; /* leaf + intermediate */
};

static void pki_make(struct pki *p, const char *identity, const char *root_name)
{
        char rootpem[8192] = "";

        memset(p, 0, sizeof(*p));
        p->root_key = new_key();
        p->int_key = new_key();
        p->dev_key = new_key();
        p->other_key = new_key();
        p->root = make_cert(p->root_key, "test root", NULL, NULL, true, NULL, -DAY, 10 * DAY);
        p->inter = make_cert(p->int_key, "test device CA", p->root, p->root_key, true, "clientAuth",
                             -DAY, 9 * DAY);
        p->leaf = make_cert(p->dev_key, identity, p->inter, p->int_key, false, "clientAuth", -HOUR,
                            DAY);
        append_pem(rootpem, sizeof(rootpem), p->root);
        snprintf(p->root_file, sizeof(p->root_file), "%s", tmp(root_name));
        put(p->root_file, rootpem);
        append_pem(p->chain, sizeof(p->chain), p->leaf);
        append_pem(p->chain, sizeof(p->chain), p->inter);
}

static void pki_free(struct pki *p)
{
        EVP_PKEY_free(p->root_key);
        EVP_PKEY_free(p->int_key);
        EVP_PKEY_free(p->dev_key);
        EVP_PKEY_free(p->other_key);
        X509_free(p->root);
        X509_free(p->inter);
        X509_free(p->leaf);
}

static int check(const struct pki *p, const char *pem, EVP_PKEY *key, const char *identity,
                 int64_t now, enum agent_cert_problem *ret)
{
        struct agent_cert_info info;
        char why[200] = "";
        int r;

        *ret = _AGENT_CERT_PROBLEM_MAX;
        r = agent_enroll_verify(pem, strlen(pem), key, identity, p->root_file, now, ret, &info, why,
                                sizeof(why));
        if (r == -EBADMSG)
                assert_true(why[0] != '\0');
        return r;
}

/* -- verification of an answer ---------------------------------------------------------- */

static void test_verify(void **state)
{
        enum agent_cert_problem p;
        struct agent_cert_info info;
        char pem[32768] = "", why[200];
        struct pki k;

        (void)state;
        pki_make(&k, "acme.gw-1", "root.pem");
        /* the good one */
        assert_int_equal(agent_enroll_verify(k.chain, strlen(k.chain), k.dev_key, "acme.gw-1",
                                             k.root_file, NOW, &p, &info, why, sizeof(why)),
                         0);
        assert_int_equal(p, AGENT_CERT_OK);
        assert_string_equal(info.identity, "acme.gw-1");
        assert_int_equal(info.not_before, NOW - HOUR);
        assert_int_equal(info.not_after, NOW + DAY);
        assert_string_equal(info.serial, "03EA"); /* 1002: the third certificate made */
        /* another key */
        assert_int_equal(check(&k, k.chain, k.other_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_KEY_MISMATCH);
        /* another identity */
        assert_int_equal(check(&k, k.chain, k.dev_key, "acme.gw-2", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_IDENTITY);
        /* expired, and not yet valid */
        assert_int_equal(check(&k, k.chain, k.dev_key, "acme.gw-1", NOW + 2 * DAY, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_EXPIRED);
        assert_int_equal(check(&k, k.chain, k.dev_key, "acme.gw-1", NOW - 2 * HOUR, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_NOT_YET_VALID);
        /* the leaf alone: no chain to the root */
        append_pem(pem, sizeof(pem), k.leaf);
        assert_int_equal(check(&k, pem, k.dev_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNTRUSTED);
        /* any identity: NULL */
        assert_int_equal(check(&k, k.chain, k.dev_key, NULL, NOW, &p), 0);
        /* garbage */
        assert_int_equal(check(&k, "-----BEGIN CERTIFICATE-----\nAAAA\n", k.dev_key, NULL, NOW, &p),
                         -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNPARSABLE);
        assert_int_equal(check(&k, "", k.dev_key, NULL, NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNPARSABLE);
        /* no root file */
        assert_int_equal(agent_enroll_verify(k.chain, strlen(k.chain), k.dev_key, NULL,
                                             tmp("no-root.pem"), NOW, &p, NULL, NULL, 0),
                         -ENOENT);
        pki_free(&k);
}

static void test_verify_chain_and_usage(void **state)
{
        enum agent_cert_problem p;
        char pem[32768];
        struct pki k, other;
        X509 *x, *srv_ca, *srv;

        (void)state;
        pki_make(&k, "acme.gw-1", "root.pem");
        pki_make(&other, "acme.gw-1", "other-root.pem");
        /* the same names under another root: untrusted whatever the chain sent */
        assert_int_equal(check(&k, other.chain, other.dev_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNTRUSTED);
        /* no clientAuth */
        x = make_cert(k.dev_key, "acme.gw-1", k.inter, k.int_key, false, "serverAuth", -HOUR, DAY);
        pem[0] = '\0';
        append_pem(pem, sizeof(pem), x);
        append_pem(pem, sizeof(pem), k.inter);
        assert_int_equal(check(&k, pem, k.dev_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_NOT_CLIENT);
        X509_free(x);
        x = make_cert(k.dev_key, "acme.gw-1", k.inter, k.int_key, false, NULL, -HOUR, DAY);
        pem[0] = '\0';
        append_pem(pem, sizeof(pem), x);
        append_pem(pem, sizeof(pem), k.inter);
        assert_int_equal(check(&k, pem, k.dev_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_NOT_CLIENT);
        X509_free(x);
        /* a clientAuth leaf under an intermediate restricted to serverAuth: purpose sslclient
         * applies the intermediate's EKU to the chain */
        srv_ca = make_cert(k.int_key, "server CA", k.root, k.root_key, true, "serverAuth", -DAY,
                           9 * DAY);
        srv = make_cert(k.dev_key, "acme.gw-1", srv_ca, k.int_key, false, "clientAuth", -HOUR, DAY);
        pem[0] = '\0';
        append_pem(pem, sizeof(pem), srv);
        append_pem(pem, sizeof(pem), srv_ca);
        assert_int_equal(check(&k, pem, k.dev_key, "acme.gw-1", NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNTRUSTED);
        X509_free(srv);
        X509_free(srv_ca);
        /* what gets installed: the certificates alone, whatever else the PEM held */
        {
                char mixed[40000], *out = NULL;
                size_t n = 0;

                snprintf(mixed, sizeof(mixed),
                         "junk\n%s-----BEGIN PRIVATE KEY-----\nAAAA\n"
                         "-----END PRIVATE KEY-----\n",
                         k.chain);
                assert_int_equal(agent_enroll_pem_certs(mixed, strlen(mixed), &out, &n), 0);
                assert_string_equal(out, k.chain);
                assert_int_equal(n, strlen(k.chain));
                floe_free(out);
                assert_int_equal(agent_enroll_pem_certs("junk", 4, &out, &n), -EBADMSG);
        }
        /* more than a chain has: refused before anything else */
        pem[0] = '\0';
        for (int i = 0; i < 10; i++)
                append_pem(pem, sizeof(pem), k.inter);
        assert_int_equal(check(&k, pem, NULL, NULL, NOW, &p), -EBADMSG);
        assert_int_equal(p, AGENT_CERT_UNPARSABLE);
        {
                char *out = NULL;
                size_t n = 0;

                assert_int_equal(agent_enroll_pem_certs(pem, strlen(pem), &out, &n), -EBADMSG);
        }
        pki_free(&k);
        pki_free(&other);
}

/* -- keys and CSRs --------------------------------------------------------------------- */

static void csr_checks(EVP_PKEY *key, const char *identity, int md_nid)
{
        char *pem = NULL, cn[64];
        int md = 0, pk = 0;
        X509_REQ *req;
        BIO *b;

        assert_int_equal(agent_enroll_csr(key, identity, NULL, &pem), 0);
        assert_non_null(strstr(pem, "-----BEGIN CERTIFICATE REQUEST-----"));
        b = BIO_new_mem_buf(pem, -1);
        req = PEM_read_bio_X509_REQ(b, NULL, NULL, NULL);
        assert_non_null(req);
        assert_int_equal(X509_REQ_verify(req, key), 1); /* proof of possession */
        assert_int_equal(EVP_PKEY_eq(X509_REQ_get0_pubkey(req), key), 1);
        assert_int_equal(X509_NAME_get_text_by_NID(X509_REQ_get_subject_name(req), NID_commonName,
                                                   cn, sizeof(cn)),
                         (int)strlen(identity));
        assert_string_equal(cn, identity);
        assert_int_equal(X509_NAME_entry_count(X509_REQ_get_subject_name(req)), 1);
        assert_int_equal(OBJ_find_sigid_algs(X509_REQ_get_signature_nid(req), &md, &pk), 1);
        assert_int_equal(md, md_nid);
        X509_REQ_free(req);
        BIO_free(b);
        floe_free(pem);
}

static void test_keys_and_csr(void **state)
{
        EVP_PKEY *k = NULL, *back = NULL;

        (void)state;
        assert_int_equal(agent_enroll_key_generate(AGENT_KEY_P256, NULL, &k), 0);
        assert_true(agent_enroll_key_is_type(k, AGENT_KEY_P256));
        assert_false(agent_enroll_key_is_type(k, AGENT_KEY_P384));
        assert_false(agent_enroll_key_is_type(k, AGENT_KEY_RSA3072));
        csr_checks(k, "acme.gw-1", NID_sha256);
        /* (RSA 3072 keys take seconds under valgrind: test_agent_enroll.py enrolls one) */
        /* written 0600 whatever the umask, and read back the same */
        umask(0);
        assert_int_equal(agent_enroll_key_write(k, NULL, tmp("k.pem")), 0);
        umask(022);
        assert_int_equal(mode_of(tmp("k.pem")), 0600);
        assert_non_null(strstr(get(tmp("k.pem")), "-----BEGIN PRIVATE KEY-----"));
        assert_int_equal(agent_enroll_key_load(tmp("k.pem"), NULL, &back), 0);
        assert_int_equal(EVP_PKEY_eq(back, k), 1);
        EVP_PKEY_free(back);
        EVP_PKEY_free(k);
        assert_int_equal(agent_enroll_key_generate(AGENT_KEY_P384, NULL, &k), 0);
        assert_true(agent_enroll_key_is_type(k, AGENT_KEY_P384));
        csr_checks(k, "acme.gw-2", NID_sha384);
        EVP_PKEY_free(k);
        /* a provider by name and a property query: the default provider, loaded explicitly */
        assert_int_equal(agent_enroll_provider_load("default"), 0);
        assert_int_equal(agent_enroll_key_generate(AGENT_KEY_P256, "provider=default", &k), 0);
        assert_true(agent_enroll_key_is_type(k, AGENT_KEY_P256));
        EVP_PKEY_free(k);
        assert_int_equal(agent_enroll_key_generate(AGENT_KEY_P256, "provider=nonesuch", &k),
                         -EOPNOTSUPP);
        assert_int_equal(agent_enroll_key_load(tmp("none.pem"), NULL, &k), -ENOENT);
        put(tmp("bad.pem"), "not a key\n");
        assert_int_equal(agent_enroll_key_load(tmp("bad.pem"), NULL, &k), -EBADMSG);
}

/* -- renewal time ------------------------------------------------------------------------ */

static void test_renew_time(void **state)
{
        const int64_t nb = NOW, na = NOW + 90 * DAY;
        const int64_t base = (NOW + 60 * DAY) * 1000000; /* 2/3 of 90 days */

        (void)state;
        assert_int_equal(agent_enroll_renew_time(nb, na, 2.0 / 3, 0, 12345), base);
        /* jitter: random % (jitter + 1) */
        assert_int_equal(agent_enroll_renew_time(nb, na, 2.0 / 3, 1000000, 7), base + 7);
        assert_int_equal(agent_enroll_renew_time(nb, na, 2.0 / 3, 1000000, 1000001), base);
        assert_int_equal(agent_enroll_renew_time(nb, na, 2.0 / 3, 1000000, 1000000),
                         base + 1000000);
        /* at most half of what is left after the base: 15 days here */
        assert_int_equal(
                agent_enroll_renew_time(nb, na, 2.0 / 3, 40 * DAY * 1000000ULL, UINT64_MAX),
                base + (int64_t)(UINT64_MAX % (15 * DAY * 1000000ULL + 1)));
        for (uint64_t r = 0; r < 1000; r++) {
                int64_t t = agent_enroll_renew_time(nb, na, 0.9, 30 * DAY * 1000000ULL,
                                                    r * 0x9e3779b97f4a7c15ULL);

                assert_true(t >= (NOW + 81 * DAY) * 1000000);
                assert_true(t <= (NOW + 85 * DAY + DAY / 2) * 1000000);
                assert_true(t < na * 1000000);
        }
        /* a 60 s certificate at 0.15: 9 s after notBefore */
        assert_int_equal(agent_enroll_renew_time(NOW, NOW + 60, 0.15, 0, 1), (NOW + 9) * 1000000);
        /* nonsense lifetimes: at once */
        assert_int_equal(agent_enroll_renew_time(NOW, NOW, 0.5, 0, 1), NOW * 1000000);
        assert_int_equal(agent_enroll_renew_time(NOW, NOW - 10, 0.5, 5, 1), NOW * 1000000);
}

static void test_retry_delay(void **state)
{
        (void)state;
        assert_int_equal(agent_enroll_reason_next("rate-limited"), AGENT_ENROLL_NEXT_RETRY_AFTER);
        assert_int_equal(agent_enroll_reason_next("internal"), AGENT_ENROLL_NEXT_RETRY);
        assert_int_equal(agent_enroll_reason_next("something-new"), AGENT_ENROLL_NEXT_RETRY);
        assert_int_equal(agent_enroll_reason_next("not-entitled"), AGENT_ENROLL_NEXT_REFUSED);
        assert_int_equal(agent_enroll_reason_next("token-used"), AGENT_ENROLL_NEXT_REFUSED);
        assert_int_equal(agent_enroll_reason_next("claim-revoked"), AGENT_ENROLL_NEXT_REFUSED);
        assert_int_equal(agent_enroll_reason_next("weak-key"), AGENT_ENROLL_NEXT_NEW_KEY);
        assert_int_equal(agent_enroll_reason_next("bad-csr"), AGENT_ENROLL_NEXT_NEW_KEY);
        for (uint64_t r = 0; r < 200; r++) {
                uint64_t rnd = r * 0x9e3779b97f4a7c15ULL;
                uint64_t d;

                /* full jitter, capped */
                d = agent_enroll_retry_delay(AGENT_ENROLL_NEXT_RETRY, 3, 1000000, 5000000, 0, rnd);
                assert_true(d >= 1000 && d <= 5000000);
                d = agent_enroll_retry_delay(AGENT_ENROLL_NEXT_RETRY, 0, 1000000, 5000000, 0, rnd);
                assert_true(d <= 1000000);
                /* the server's retry_after, plus at most retry_min */
                d = agent_enroll_retry_delay(AGENT_ENROLL_NEXT_RETRY_AFTER, 0, 1000000, 5000000,
                                             120, rnd);
                assert_true(d >= 120000000 && d <= 121000000);
                /* refused: slowly, between retry_max/2 and retry_max */
                d = agent_enroll_retry_delay(AGENT_ENROLL_NEXT_REFUSED, 0, 1000000, 3600000000ULL,
                                             0, rnd);
                assert_true(d >= 1800000000ULL && d <= 3600000000ULL);
        }
}

/* -- request and answer ----------------------------------------------------------------- */

static void test_request(void **state)
{
        json_t *j;
        char *req = NULL;
        size_t len = 0;

        (void)state;
        assert_int_equal(agent_enroll_request("acme.gw-1", "-----BEGIN X-----\nAB\"\\\x01\n", "tok",
                                              &req, &len),
                         0);
        assert_int_equal(strlen(req), len);
        j = json_loadb(req, len, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "v")), 1);
        assert_string_equal(json_string_value(json_object_get(j, "identity")), "acme.gw-1");
        assert_string_equal(json_string_value(json_object_get(j, "csr")),
                            "-----BEGIN X-----\nAB\"\\\x01\n");
        assert_string_equal(json_string_value(json_object_get(j, "token")), "tok");
        json_decref(j);
        agent_enroll_secret_free(req);
        /* renewal: no identity, no token */
        assert_int_equal(agent_enroll_request(NULL, "csr", "", &req, &len), 0);
        assert_string_equal(req, "{\"v\":1,\"csr\":\"csr\"}");
        agent_enroll_secret_free(req);
        agent_enroll_secret_free(NULL);
}

static void test_answer(void **state)
{
        static const char *const bad[] = {
                "",
                "[]",
                "{",
                "{\"status\":\"maybe\"}",
                "{\"status\":\"ok\"}",
                "{\"status\":\"error\"}",
                "{\"status\":\"error\",\"reason\":\"Not-Entitled\"}",
                "{\"status\":\"error\",\"reason\":\"x\",\"reason\":\"y\"}",
                "{\"status\":\"error\",\"reason\":\"not-entitled\\u0000\"}",
                "{\"status\":\"ok\",\"certificate\":5}",
        };
        struct agent_enroll_answer a;
        char why[128], big[1024];

        (void)state;
        assert_int_equal(
                agent_enroll_answer_parse(
                        "{\"v\":1,\"status\":\"ok\",\"certificate\":\"C\",\"chain\":\"D\\n\","
                        "\"replay\":true,\"extra\":[1]}",
                        79, &a, why, sizeof(why)),
                0);
        assert_true(a.ok && a.replay);
        assert_string_equal(a.pem, "C\nD\n");
        assert_int_equal(a.pem_len, 4);
        agent_enroll_answer_clear(&a);
        assert_null(a.pem);
        snprintf(
                big, sizeof(big),
                "{\"status\":\"error\",\"reason\":\"rate-limited\",\"message\":\"wait\\n\\u001b[31m"
                "now\",\"retry_after\":42}");
        assert_int_equal(agent_enroll_answer_parse(big, strlen(big), &a, why, sizeof(why)), 0);
        assert_false(a.ok);
        assert_string_equal(a.reason, "rate-limited");
        assert_string_equal(a.message, "wait??[31mnow"); /* printable only */
        assert_int_equal(a.retry_after_s, 42);
        agent_enroll_answer_clear(&a);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                why[0] = '\0';
                assert_int_equal(
                        agent_enroll_answer_parse(bad[i], strlen(bad[i]), &a, why, sizeof(why)),
                        -EBADMSG);
                assert_true(why[0] != '\0');
        }
        assert_int_equal(
                agent_enroll_answer_parse(big, AGENT_ENROLL_ANSWER_MAX + 1, &a, why, sizeof(why)),
                -EBADMSG);
}

static void test_token_file(void **state)
{
        struct agent_settings s = {.enroll_token = "", .enroll_token_file = ""};
        char *t = NULL;

        (void)state;
        s.enroll_token = "floe-et1-abc";
        assert_int_equal(agent_enroll_token(&s, &t), 0);
        assert_string_equal(t, "floe-et1-abc");
        agent_enroll_secret_free(t);
        s.enroll_token = "";
        s.enroll_token_file = tmp("token");
        put(tmp("token"), "floe-et1-0123456789abcdef0123456789abcdef \r\nsecond line\n");
        assert_int_equal(agent_enroll_token(&s, &t), 0);
        assert_string_equal(t, "floe-et1-0123456789abcdef0123456789abcdef");
        agent_enroll_secret_free(t);
        put(tmp("token"), "floe et1\n");
        assert_int_equal(agent_enroll_token(&s, &t), -EBADMSG);
        put(tmp("token"), "\n");
        assert_int_equal(agent_enroll_token(&s, &t), -EBADMSG);
        s.enroll_token_file = tmp("no-token");
        assert_int_equal(agent_enroll_token(&s, &t), -ENOENT);
}

/* -- files --------------------------------------------------------------------------------- */

static void test_write_file_torture(void **state)
{
        const char *path = tmp("f.pem");
        char tmpf[200];
        uint64_t n;
        int r;

        (void)state;
        snprintf(tmpf, sizeof(tmpf), "%s.tmp", path);
        put(path, "old\n");
        /* a stale temp file from a crash is replaced */
        put(tmpf, "stale");
        for (n = 1;; n++) {
                floe_alloc_fail_at(n);
                r = agent_enroll_write_file(path, "new contents\n", 13, 0644);
                floe_alloc_fail_at(0);
                /* whatever failed: the old file or the new one, never a mix; no temp file
                 * but the crash's, which the next write replaces */
                assert_true(strcmp(get(path), "old\n") == 0 ||
                            strcmp(get(path), "new contents\n") == 0);
                assert_true(!exists(tmpf) || strcmp(get(tmpf), "stale") == 0);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
                put(path, "old\n");
        }
        assert_true(n > 1);
        assert_false(exists(tmpf));
        assert_string_equal(get(path), "new contents\n");
        assert_int_equal(mode_of(path), 0644);
        /* a directory where the file should go: refused, nothing left behind */
        assert_int_equal(mkdir(tmp("dir.pem"), 0700), 0);
        assert_int_equal(agent_enroll_write_file(tmp("dir.pem"), "x", 1, 0600), -EISDIR);
        assert_false(exists(tmp("dir.pem.tmp")));
        assert_int_equal(agent_enroll_write_file(tmp("nodir/x.pem"), "x", 1, 0600), -ENOENT);
}

struct files {
        struct agent_enroll_files f;
        struct pki k;
        EVP_PKEY *new_key;
        char new_chain[16384];
};

/* An installed pair (the PKI's leaf) and a staged one for new_key. */
static void files_make(struct files *x, bool staged)
{
        X509 *leaf;

        pki_make(&x->k, "acme.gw-1", "root.pem");
        assert_int_equal(agent_enroll_files_init(&x->f, tmp("device.pem"), tmp("device.key")), 0);
        assert_string_equal(x->f.cert_new, tmp("device.pem.new"));
        put(x->f.cert, x->k.chain);
        assert_int_equal(agent_enroll_key_write(x->k.dev_key, NULL, x->f.key), 0);
        x->new_key = new_key();
        leaf = make_cert(x->new_key, "acme.gw-1", x->k.inter, x->k.int_key, false, "clientAuth",
                         -HOUR, 2 * DAY);
        x->new_chain[0] = '\0';
        append_pem(x->new_chain, sizeof(x->new_chain), leaf);
        append_pem(x->new_chain, sizeof(x->new_chain), x->k.inter);
        X509_free(leaf);
        if (staged) {
                assert_int_equal(agent_enroll_key_write(x->new_key, NULL, x->f.key_new), 0);
                put(x->f.cert_new, x->new_chain);
        }
}

static void files_free(struct files *x)
{
        unlink(x->f.cert);
        unlink(x->f.key);
        unlink(x->f.cert_new);
        unlink(x->f.key_new);
        EVP_PKEY_free(x->new_key);
        pki_free(&x->k);
}

static enum agent_cert_problem recover(struct files *x, bool *staged, struct agent_cert_info *info)
{
        enum agent_cert_problem p = _AGENT_CERT_PROBLEM_MAX;
        char why[200];
        int r = agent_enroll_recover(&x->f, NULL, "acme.gw-1", x->k.root_file, NOW, staged, &p,
                                     info, why, sizeof(why));

        assert_true(r == 0 || r == -EBADMSG);
        assert_int_equal(r == 0, p == AGENT_CERT_OK);
        return p;
}

/* The key is renamed, then the certificate: a failure between the two leaves a key that
 * matches only cert.new, and recover finishes the install. */
static void test_install_failing_between_the_renames(void **state)
{
        struct agent_cert_info info;
        struct files x;
        bool staged;

        (void)state;
        files_make(&x, true);
        /* the certificate's place is a directory: its rename fails after the key's */
        assert_int_equal(unlink(x.f.cert), 0);
        assert_int_equal(mkdir(x.f.cert, 0700), 0);
        assert_int_not_equal(agent_enroll_install(&x.f), 0);
        assert_false(exists(x.f.key_new));
        assert_true(exists(x.f.cert_new));
        assert_int_equal(rmdir(x.f.cert), 0);
        put(x.f.cert, x.k.chain); /* the old certificate: does not match the new key */
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_OK);
        assert_false(staged);
        assert_false(exists(x.f.cert_new));
        assert_string_equal(get(x.f.cert), x.new_chain);
        files_free(&x);
}

static void test_install_torture(void **state)
{
        struct agent_cert_info info;
        struct files x;
        bool staged;
        uint64_t n;
        int r;

        (void)state;
        for (n = 1;; n++) {
                files_make(&x, true);
                floe_alloc_fail_at(n);
                r = agent_enroll_install(&x.f);
                floe_alloc_fail_at(0);
                /* wherever it stopped, recover ends with the new pair installed */
                assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_OK);
                if (r == 0 || !staged) {
                        assert_string_equal(get(x.f.cert), x.new_chain);
                        assert_false(exists(x.f.cert_new));
                        assert_false(exists(x.f.key_new));
                } else {
                        /* nothing was renamed: the old pair with the new one staged */
                        assert_string_equal(get(x.f.cert), x.k.chain);
                        assert_true(exists(x.f.cert_new) && exists(x.f.key_new));
                }
                assert_int_equal(mode_of(x.f.key), 0600);
                files_free(&x);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
        }
        assert_true(n > 2);
}

static void test_recover(void **state)
{
        struct agent_cert_info info;
        EVP_PKEY *key = NULL;
        struct files x;
        bool staged, reused;

        (void)state;
        /* a valid installed pair and a valid staged one: the staged is kept for a try */
        files_make(&x, true);
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_OK);
        assert_true(staged);
        assert_string_equal(get(x.f.cert), x.k.chain);
        assert_true(exists(x.f.cert_new) && exists(x.f.key_new));
        /* a broken staged certificate goes; the pending key stays for the next request */
        put(x.f.cert_new, "-----BEGIN CERTIFICATE-----\ntruncated");
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_OK);
        assert_false(staged);
        assert_false(exists(x.f.cert_new));
        assert_true(exists(x.f.key_new));
        /* ... and is the key a request uses */
        assert_int_equal(agent_enroll_pending_key(&x.f, AGENT_KEY_P256, NULL, &key, &reused), 0);
        assert_true(reused);
        assert_int_equal(EVP_PKEY_eq(key, x.new_key), 1);
        EVP_PKEY_free(key);
        /* unless it is of another type than configured */
        assert_int_equal(agent_enroll_pending_key(&x.f, AGENT_KEY_P384, NULL, &key, &reused), 0);
        assert_false(reused);
        assert_true(agent_enroll_key_is_type(key, AGENT_KEY_P384));
        assert_int_equal(mode_of(x.f.key_new), 0600);
        EVP_PKEY_free(key);
        /* the installed pair: missing, broken, a key that does not match */
        unlink(x.f.key_new);
        unlink(x.f.cert);
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_MISSING);
        put(x.f.cert, "junk");
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_UNPARSABLE);
        put(x.f.cert, x.new_chain);
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_KEY_MISMATCH);
        unlink(x.f.key);
        assert_int_equal(recover(&x, &staged, &info), AGENT_CERT_KEY_MISSING);
        files_free(&x);
}

static void test_pending_key_torture(void **state)
{
        struct agent_enroll_files f;
        EVP_PKEY *key = NULL, *back = NULL;
        bool reused;
        uint64_t n;
        int r;

        (void)state;
        assert_int_equal(agent_enroll_files_init(&f, tmp("d.pem"), tmp("d.key")), 0);
        for (n = 1;; n++) {
                floe_alloc_fail_at(n);
                r = agent_enroll_pending_key(&f, AGENT_KEY_P256, NULL, &key, &reused);
                floe_alloc_fail_at(0);
                if (r == 0)
                        break;
                assert_int_equal(r, -ENOMEM);
                /* no half-written key: none, or a whole one */
                if (exists(f.key_new)) {
                        assert_int_equal(agent_enroll_key_load(f.key_new, NULL, &back), 0);
                        EVP_PKEY_free(back);
                        unlink(f.key_new);
                }
                assert_false(exists(tmp("d.key.new.tmp")));
        }
        assert_false(reused);
        assert_int_equal(agent_enroll_key_load(f.key_new, NULL, &back), 0);
        assert_int_equal(EVP_PKEY_eq(back, key), 1);
        EVP_PKEY_free(back);
        EVP_PKEY_free(key);
        assert_int_equal(agent_enroll_discard(&f), 0);
        assert_false(exists(f.key_new));
        assert_int_equal(agent_enroll_discard(&f), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_verify, setup, teardown),
                cmocka_unit_test_setup_teardown(test_verify_chain_and_usage, setup, teardown),
                cmocka_unit_test_setup_teardown(test_keys_and_csr, setup, teardown),
                cmocka_unit_test(test_renew_time),
                cmocka_unit_test(test_retry_delay),
                cmocka_unit_test(test_request),
                cmocka_unit_test(test_answer),
                cmocka_unit_test_setup_teardown(test_token_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_file_torture, setup, teardown),
                cmocka_unit_test_setup_teardown(test_install_failing_between_the_renames, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_install_torture, setup, teardown),
                cmocka_unit_test_setup_teardown(test_recover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pending_key_torture, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
