/* SPDX-License-Identifier: Apache-2.0 */
/* libcerts (certs/ca.h): names, serials, keys, certificates and CRLs, parsed back with OpenSSL. */
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
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "ca.h"
#include "floe-alloc.h"

#define NOW 1800000000LL
#define DAY 86400ULL

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
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-ca-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        assert_int_equal(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        return 0;
}

static char *tmp(const char *name)
{
        static char buf[4][128];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", tmpdir, name);
        return buf[i];
}

/* -- names ------------------------------------------------------------------------- */

static void test_names(void **state)
{
        static const char *const bad_devices[] = {
                "",          "acme",      "acme.",     ".gw",       "Acme.gw",         "acme.GW",
                "acme/gw.x", "acme.gw/x", "acme.gw+",  "acme.#",    "acme.gw 1",       "acme.gw.1",
                "-acme.gw",  "acme.-gw",  "acme_x.gw", "acme.gw\t", "acme.gw\xc3\xa9",
        };
        char long_part[80], buf[64];

        (void)state;
        assert_int_equal(ca_name_check(CA_KIND_DEVICE, "acme.gw-0001"), 0);
        assert_int_equal(ca_name_check(CA_KIND_DEVICE, "0.0"), 0);
        for (size_t i = 0; i < ELEMENTSOF(bad_devices); i++) {
                assert_int_equal(ca_name_check(CA_KIND_DEVICE, bad_devices[i]), -EINVAL);
                assert_non_null(ca_name_problem(CA_KIND_DEVICE, bad_devices[i]));
        }
        assert_non_null(strstr(ca_name_problem(CA_KIND_DEVICE, "acme/gw"), "'/'"));
        assert_non_null(strstr(ca_name_problem(CA_KIND_DEVICE, "Acme.gw"), "upper-case"));
        assert_null(ca_name_problem(CA_KIND_DEVICE, "acme.gw"));
        memset(long_part, 'a', 63);
        snprintf(long_part + 63, sizeof(long_part) - 63, ".x");
        assert_int_equal(ca_name_check(CA_KIND_DEVICE, long_part), 0);
        memset(long_part, 'a', 64);
        snprintf(long_part + 64, sizeof(long_part) - 64, ".x");
        assert_int_equal(ca_name_check(CA_KIND_DEVICE, long_part), -ENAMETOOLONG);
        assert_int_equal(ca_name_check(CA_KIND_DEVICE, NULL), -EINVAL);

        assert_int_equal(ca_name_check(CA_KIND_CLAIM, "claim-gw-1"), 0);
        assert_int_equal(ca_name_check(CA_KIND_CLAIM, "claim-"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_CLAIM, "gw-1"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_CLAIM, "claim-a.b"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_SERVICE, "floe-uploader"), 0);
        assert_int_equal(ca_name_check(CA_KIND_SERVICE, "claim-x"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_SERVICE, "acme.gw"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_SERVER, "mqtt.example.com"), 0);
        assert_int_equal(ca_name_check(CA_KIND_SERVER, "mqtt-.example.com"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_SERVER, "mqtt..example.com"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_SERVER, "*.example.com"), -EINVAL);
        assert_int_equal(ca_name_check(CA_KIND_CA, "floe root CA"), 0);
        assert_int_equal(ca_name_check(CA_KIND_CA, "floe/root"), -EINVAL);
        assert_int_equal(ca_name_check((enum ca_kind)42, "x"), -EINVAL);

        assert_int_equal(ca_claim_cn("gw-7", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "claim-gw-7");
        assert_int_equal(ca_claim_cn("claim-gw-7", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "claim-gw-7");
        assert_int_equal(ca_claim_cn("GW", buf, sizeof(buf)), -EINVAL);
        assert_int_equal(ca_claim_cn("gw-7", buf, 5), -ENOBUFS);
        assert_int_equal(ca_identity_tenant("acme.gw-1", buf, sizeof(buf)), 0);
        assert_string_equal(buf, "acme");
        assert_int_equal(ca_identity_tenant("acme", buf, sizeof(buf)), -EINVAL);

        assert_string_equal(ca_role_name(CA_ROLE_SERVICE), "service");
        assert_null(ca_role_name((enum ca_role)5));
        assert_int_equal(ca_role_from_name("claim"), CA_ROLE_CLAIM);
        assert_int_equal(ca_kind_from_name("ca"), CA_KIND_CA);
        assert_int_equal(ca_key_type_from_name("P384"), CA_KEY_P384);
        assert_int_equal(ca_key_type_from_name("ed25519"), -EINVAL);
        assert_int_equal(ca_reason_from_name("keycompromise"), CA_REASON_KEY_COMPROMISE);
        assert_int_equal(ca_reason_from_name("certificateHold"), -EINVAL);
        assert_int_equal(ca_kind_issuer(CA_KIND_CLAIM), CA_ROLE_CLAIM);
        assert_int_equal(ca_kind_issuer(CA_KIND_CA), -EINVAL);
}

static void test_san_parse(void **state)
{
        struct ca_san san[3];
        size_t n = 0;

        (void)state;
        assert_int_equal(ca_san_parse("dns:a.example,IP:10.0.0.1,ip:fe80::1", san, 3, &n), 0);
        assert_int_equal(n, 3);
        assert_int_equal(san[0].type, CA_SAN_DNS);
        assert_string_equal(san[0].value, "a.example");
        assert_int_equal(san[1].type, CA_SAN_IP);
        assert_string_equal(san[2].value, "fe80::1");
        assert_int_equal(ca_san_parse("uri:urn:floe:acme:gw-1", san, 3, &n), 0);
        assert_int_equal(san[0].type, CA_SAN_URI);
        assert_int_equal(ca_san_parse("dns:a,dns:b,dns:c,dns:d", san, 3, &n), -E2BIG);
        assert_int_equal(ca_san_parse("email:x@y", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("dns:A.example", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("dns:a,,dns:b", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("ip:10.0.0.256", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("uri:no-scheme", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("uri:urn:x y", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("", san, 3, &n), -EINVAL);
        assert_int_equal(ca_san_parse("dns:", san, 3, &n), -EINVAL);
}

/* -- serials ------------------------------------------------------------------------- */

static void test_serials(void **state)
{
        char hex[CA_SERIAL_HEX_MAX + 1], prev[CA_SERIAL_HEX_MAX + 1] = "";
        int top_bit_set = 0;

        (void)state;
        for (int i = 0; i < 200; i++) {
                ASN1_INTEGER *s = NULL, *back = NULL;
                BIGNUM *bn;

                assert_int_equal(ca_serial_random(&s), 0);
                bn = ASN1_INTEGER_to_BN(s, NULL);
                assert_non_null(bn);
                assert_false(BN_is_negative(bn));
                assert_false(BN_is_zero(bn));
                assert_true(BN_num_bits(bn) <= 128);
                top_bit_set += BN_num_bits(bn) == 128;
                BN_free(bn);
                assert_int_equal(ca_serial_hex(s, hex), 0);
                assert_true(strlen(hex) <= 32 && strlen(hex) % 2 == 0);
                assert_string_not_equal(hex, prev);
                memcpy(prev, hex, sizeof(hex));
                assert_int_equal(ca_serial_from_hex(hex, &back), 0);
                assert_int_equal(ASN1_INTEGER_cmp(s, back), 0);
                ASN1_INTEGER_free(back);
                ASN1_INTEGER_free(s);
        }
        /* all 128 bits are random: the top one is set about half the time */
        assert_true(top_bit_set > 50 && top_bit_set < 150);

        assert_int_equal(ca_serial_normalize("0x0a:bc", hex), 0);
        assert_string_equal(hex, "0ABC");
        assert_int_equal(ca_serial_normalize("00ff", hex), 0);
        assert_string_equal(hex, "FF");
        assert_int_equal(ca_serial_normalize("abc", hex), 0);
        assert_string_equal(hex, "0ABC");
        assert_int_equal(ca_serial_normalize("0", hex), -EINVAL);
        assert_int_equal(ca_serial_normalize("", hex), -EINVAL);
        assert_int_equal(ca_serial_normalize("xyz", hex), -EINVAL);
        assert_int_equal(ca_serial_normalize("12345678901234567890123456789012345678901", hex),
                         -ERANGE);
        assert_int_equal(ca_serial_normalize(NULL, hex), -EINVAL);
}

/* -- keys and files --------------------------------------------------------------------- */

static void test_keys(void **state)
{
        static const struct {
                enum ca_key_type type;
                int bits;
        } types[] = {{CA_KEY_P256, 256}, {CA_KEY_P384, 384}, {CA_KEY_RSA3072, 3072}};
        char fp1[65], fp2[65];
        mode_t old_umask;
        struct stat st;
        EVP_PKEY *key, *loaded = NULL, *weak;
        enum ca_key_type t;
        char *text = NULL;
        size_t len;
        BIO *bio;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(types); i++) {
                assert_int_equal(ca_key_generate(types[i].type, &key), 0);
                assert_int_equal(EVP_PKEY_get_bits(key), types[i].bits);
                assert_int_equal(ca_key_classify(key, &t), 0);
                assert_int_equal(t, types[i].type);
                assert_ptr_equal(ca_key_digest(key),
                                 types[i].type == CA_KEY_P384 ? EVP_sha384() : EVP_sha256());
                EVP_PKEY_free(key);
        }
        assert_int_equal(ca_key_generate((enum ca_key_type)9, &key), -EINVAL);
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        assert_non_null(weak);
        assert_int_equal(ca_key_classify(weak, &t), -EPROTONOSUPPORT);
        EVP_PKEY_free(weak);
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
        assert_non_null(weak);
        assert_int_equal(ca_key_classify(weak, &t), -EPROTONOSUPPORT);
        EVP_PKEY_free(weak);

        assert_int_equal(ca_key_generate(CA_KEY_P256, &key), 0);
        assert_int_equal(ca_key_fingerprint(key, fp1), 0);
        assert_int_equal(strlen(fp1), 64);
        /* created 0600 whatever the umask, never overwritten */
        old_umask = umask(0);
        assert_int_equal(ca_key_write_new(tmp("k.pem"), key), 0);
        umask(old_umask);
        assert_int_equal(stat(tmp("k.pem"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(ca_key_write_new(tmp("k.pem"), key), -EEXIST);
        assert_int_equal(ca_key_load(tmp("k.pem"), false, &loaded), 0);
        assert_int_equal(EVP_PKEY_eq(key, loaded), 1);
        assert_int_equal(ca_key_fingerprint(loaded, fp2), 0);
        assert_string_equal(fp1, fp2);
        EVP_PKEY_free(loaded);
        /* a key others may read is refused unless asked for */
        assert_int_equal(chmod(tmp("k.pem"), 0640), 0);
        assert_int_equal(ca_key_load(tmp("k.pem"), false, &loaded), -EPERM);
        assert_int_equal(ca_key_load(tmp("k.pem"), true, &loaded), 0);
        EVP_PKEY_free(loaded);
        assert_int_equal(symlink(tmp("k.pem"), tmp("link.pem")), 0);
        assert_int_equal(ca_key_load(tmp("link.pem"), true, &loaded), -ELOOP);
        assert_int_equal(ca_key_load(tmp("missing.pem"), false, &loaded), -ENOENT);
        /* an encrypted key fails without asking for a passphrase */
        bio = BIO_new(BIO_s_mem());
        assert_int_equal(
                PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), "pw", 2, NULL, NULL), 1);
        len = (size_t)BIO_get_mem_data(bio, &text);
        assert_int_equal(ca_file_write_new(tmp("enc.pem"), text, len, 0600), 0);
        BIO_free(bio);
        assert_int_equal(ca_key_load(tmp("enc.pem"), false, &loaded), -EBADMSG);
        ERR_clear_error();
        EVP_PKEY_free(key);
}

static void test_files(void **state)
{
        char *data = NULL;
        size_t len = 0;
        struct stat st;

        (void)state;
        assert_int_equal(ca_file_write_new(tmp("a"), "one", 3, 0644), 0);
        assert_int_equal(ca_file_write_new(tmp("a"), "two", 3, 0644), -EEXIST);
        assert_int_equal(ca_file_replace(tmp("a"), "three", 5, 0600), 0);
        assert_int_equal(stat(tmp("a"), &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(ca_file_read(tmp("a"), 100, &data, &len), 0);
        assert_int_equal(len, 5);
        assert_string_equal(data, "three");
        floe_free(data);
        assert_int_equal(ca_file_read(tmp("a"), 4, &data, &len), -EFBIG);
        assert_int_equal(ca_file_replace(tmp("nodir/a"), "x", 1, 0644), -ENOENT);
        {
                X509 *x = NULL;

                assert_int_equal(ca_pem_read_cert(tmp("a"), &x), -EBADMSG);
                assert_null(x);
        }
}

/* -- certificates ---------------------------------------------------------------------------- */

struct pki {
        struct ca_issuer *root, *device, *server, *claim;
};

static struct ca_issuer *make_ca(struct ca_issuer *parent, enum ca_role role, const char *cn)
{
        struct ca_issuer *is = calloc(1, sizeof(*is));
        struct ca_cert_req req = {
                .kind = CA_KIND_CA,
                .role = role,
                .cn = cn,
                .org = "floe",
                .now = NOW,
                .validity_s = parent ? 3650 * DAY : 7300 * DAY,
                .backdate_s = 300,
        };

        assert_non_null(is);
        is->role = role;
        assert_int_equal(ca_key_generate(CA_KEY_P256, &is->key), 0);
        req.pubkey = is->key;
        assert_int_equal(ca_issue(parent, &req, &is->cert), 0);
        is->chain = sk_X509_new_null();
        assert_non_null(is->chain);
        if (parent) {
                assert_int_equal(X509_up_ref(parent->cert), 1);
                assert_true(sk_X509_push(is->chain, parent->cert) > 0);
        }
        return is;
}

/* ca_issuer_free() frees with floe_free, which is free(). */
static void pki_make(struct pki *p)
{
        p->root = make_ca(NULL, CA_ROLE_ROOT, "floe root CA");
        p->device = make_ca(p->root, CA_ROLE_DEVICE, "floe device CA");
        p->server = make_ca(p->root, CA_ROLE_SERVER, "floe server CA");
        p->claim = make_ca(NULL, CA_ROLE_CLAIM, "floe claim CA");
}

static void pki_free(struct pki *p)
{
        ca_issuer_free(p->root);
        ca_issuer_free(p->device);
        ca_issuer_free(p->server);
        ca_issuer_free(p->claim);
}

static X509 *leaf(const struct ca_issuer *is, enum ca_kind kind, const char *cn,
                  const struct ca_san *san, size_t n_san, EVP_PKEY **ret_key)
{
        struct ca_cert_req req = {
                .kind = kind,
                .cn = cn,
                .san = san,
                .n_san = n_san,
                .now = NOW,
                .validity_s = 90 * DAY,
                .backdate_s = 300,
        };
        EVP_PKEY *key;
        X509 *x = NULL;

        assert_int_equal(ca_key_generate(CA_KEY_P256, &key), 0);
        req.pubkey = key;
        assert_int_equal(ca_issue(is, &req, &x), 0);
        if (ret_key)
                *ret_key = key;
        else
                EVP_PKEY_free(key);
        return x;
}

/* X509_verify_cert against trust anchors, with intermediates, a purpose and CRLs. */
static int verify(X509 *x, X509 *const *anchors, size_t n_anchors, X509 *const *untrusted,
                  size_t n_untrusted, const char *purpose, X509_CRL *crl)
{
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        STACK_OF(X509) *sk = sk_X509_new_null();
        X509_VERIFY_PARAM *param;
        int r;

        for (size_t i = 0; i < n_anchors; i++)
                X509_STORE_add_cert(store, anchors[i]);
        for (size_t i = 0; i < n_untrusted; i++)
                sk_X509_push(sk, untrusted[i]);
        if (crl) {
                X509_STORE_add_crl(store, crl);
                X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
        }
        assert_int_equal(X509_STORE_CTX_init(ctx, store, x, sk), 1);
        param = X509_STORE_CTX_get0_param(ctx);
        X509_VERIFY_PARAM_set_time(param, (time_t)NOW + 60);
        if (purpose)
                X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_get_by_sname(purpose) + 1);
        r = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
        X509_STORE_CTX_free(ctx);
        sk_X509_free(sk);
        X509_STORE_free(store);
        ERR_clear_error();
        return r;
}

static void test_ca_certificates(void **state)
{
        struct pki p;
        const ASN1_OCTET_STRING *ski, *aki;
        int64_t nb, na;
        char cn[64];

        (void)state;
        pki_make(&p);
        /* root: self-signed, CA, pathlen 1, KU certSign|cRLSign, SKI, no EKU */
        assert_int_equal(X509_get_version(p.root->cert), X509_VERSION_3);
        assert_int_equal(X509_check_ca(p.root->cert), 1);
        assert_int_equal(X509_get_pathlen(p.root->cert), 1);
        assert_true(X509_get_extension_flags(p.root->cert) & EXFLAG_SS);
        assert_int_equal(X509_get_key_usage(p.root->cert), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
        assert_int_equal(X509_get_extended_key_usage(p.root->cert), UINT32_MAX);
        assert_int_equal(X509_get_ext_by_NID(p.root->cert, NID_authority_key_identifier, -1), -1);
        assert_int_equal(X509_EXTENSION_get_critical(X509_get_ext(
                                 p.root->cert,
                                 X509_get_ext_by_NID(p.root->cert, NID_basic_constraints, -1))),
                         1);
        assert_int_equal(ca_cert_times(p.root->cert, &nb, &na), 0);
        assert_int_equal(nb, NOW - 300);
        assert_int_equal(na, NOW + (int64_t)(7300 * DAY));
        assert_int_equal(ca_cert_cn(p.root->cert, cn, sizeof(cn)), 0);
        assert_string_equal(cn, "floe root CA");
        /* intermediates: pathlen 0, AKI = root's SKI, EKU by role */
        ski = X509_get0_subject_key_id(p.root->cert);
        aki = X509_get0_authority_key_id(p.device->cert);
        assert_non_null(ski);
        assert_non_null(aki);
        assert_int_equal(ASN1_OCTET_STRING_cmp(ski, aki), 0);
        assert_int_equal(X509_get_pathlen(p.device->cert), 0);
        assert_int_equal(X509_get_extended_key_usage(p.device->cert), XKU_SSL_CLIENT);
        assert_int_equal(X509_get_extended_key_usage(p.server->cert), XKU_SSL_SERVER);
        assert_int_equal(X509_check_issued(p.root->cert, p.device->cert), X509_V_OK);
        assert_int_equal(verify(p.device->cert, &p.root->cert, 1, NULL, 0, NULL, NULL), X509_V_OK);
        /* an intermediate never under another root */
        assert_int_equal(verify(p.device->cert, &p.claim->cert, 1, NULL, 0, NULL, NULL),
                         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        pki_free(&p);
}

static void test_leaf_certificates(void **state)
{
        struct ca_san san[2] = {{.type = CA_SAN_IP, .value = "10.0.0.1"},
                                {.type = CA_SAN_URI, .value = "urn:floe:x"}};
        X509 *dev, *srv, *claim, *chain[2];
        GENERAL_NAMES *gens;
        struct pki p;
        EVP_PKEY *key;
        char buf[64];
        int64_t nb, na;

        (void)state;
        pki_make(&p);
        dev = leaf(p.device, CA_KIND_DEVICE, "acme.gw-0001", NULL, 0, &key);
        assert_int_equal(ca_cert_matches_key(dev, key), 1);
        EVP_PKEY_free(key);
        assert_int_equal(X509_check_ca(dev), 0);
        assert_int_equal(X509_get_key_usage(dev), KU_DIGITAL_SIGNATURE);
        assert_int_equal(X509_get_extended_key_usage(dev), XKU_SSL_CLIENT);
        assert_int_equal(ASN1_OCTET_STRING_cmp(X509_get0_subject_key_id(p.device->cert),
                                               X509_get0_authority_key_id(dev)),
                         0);
        assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(dev), NID_organizationName,
                                                   buf, sizeof(buf)),
                         4);
        assert_string_equal(buf, "acme");
        assert_int_equal(ca_cert_cn(dev, buf, sizeof(buf)), 0);
        assert_string_equal(buf, "acme.gw-0001");
        assert_int_equal(ca_cert_times(dev, &nb, &na), 0);
        assert_int_equal(nb, NOW - 300);
        assert_int_equal(na, NOW + (int64_t)(90 * DAY));
        assert_int_equal(ca_cert_cn(dev, buf, 5), -ENAMETOOLONG);
        chain[0] = p.device->cert;
        assert_int_equal(verify(dev, &p.root->cert, 1, chain, 1, "sslclient", NULL), X509_V_OK);
        /* the device CA's EKU keeps its leaves from serving TLS */
        assert_int_equal(verify(dev, &p.root->cert, 1, chain, 1, "sslserver", NULL),
                         X509_V_ERR_INVALID_PURPOSE);

        srv = leaf(p.server, CA_KIND_SERVER, "mqtt.example.com", san, 2, NULL);
        gens = X509_get_ext_d2i(srv, NID_subject_alt_name, NULL, NULL);
        assert_non_null(gens);
        assert_int_equal(sk_GENERAL_NAME_num(gens), 3);
        assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_DNS); /* the CN first */
        assert_int_equal(sk_GENERAL_NAME_value(gens, 1)->type, GEN_IPADD);
        assert_int_equal(sk_GENERAL_NAME_value(gens, 2)->type, GEN_URI);
        GENERAL_NAMES_free(gens);
        assert_int_equal(X509_check_host(srv, "mqtt.example.com", 0, 0, NULL), 1);
        assert_int_equal(X509_check_ip_asc(srv, "10.0.0.1", 0), 1);
        chain[0] = p.server->cert;
        assert_int_equal(verify(srv, &p.root->cert, 1, chain, 1, "sslserver", NULL), X509_V_OK);
        assert_int_equal(verify(srv, &p.root->cert, 1, chain, 1, "sslclient", NULL),
                         X509_V_ERR_INVALID_PURPOSE);

        claim = leaf(p.claim, CA_KIND_CLAIM, "claim-gw-1", NULL, 0, NULL);
        assert_int_equal(verify(claim, &p.claim->cert, 1, NULL, 0, "sslclient", NULL), X509_V_OK);
        /* the device listener's trust (root + device CA) does not accept it */
        chain[0] = p.root->cert;
        chain[1] = p.device->cert;
        assert_int_equal(verify(claim, chain, 2, NULL, 0, "sslclient", NULL),
                         X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
        /* serials differ */
        assert_int_not_equal(
                ASN1_INTEGER_cmp(X509_get0_serialNumber(dev), X509_get0_serialNumber(srv)), 0);
        X509_free(dev);
        X509_free(srv);
        X509_free(claim);
        pki_free(&p);
}

static void test_issue_refusals(void **state)
{
        struct ca_cert_req req = {
                .kind = CA_KIND_DEVICE,
                .cn = "acme.gw-1",
                .now = NOW,
                .validity_s = DAY,
        };
        EVP_PKEY *key, *weak;
        struct pki p;
        X509 *x = NULL;

        (void)state;
        pki_make(&p);
        assert_int_equal(ca_key_generate(CA_KEY_P256, &key), 0);
        req.pubkey = key;
        /* the wrong issuer for the kind, or none */
        assert_int_equal(ca_issue(p.server, &req, &x), -EINVAL);
        assert_int_equal(ca_issue(p.claim, &req, &x), -EINVAL);
        assert_int_equal(ca_issue(NULL, &req, &x), -EINVAL);
        /* names */
        req.cn = "acme/gw-1";
        assert_int_equal(ca_issue(p.device, &req, &x), -EINVAL);
        req.cn = "acme.gw-1";
        req.org = "evil";
        assert_int_equal(ca_issue(p.device, &req, &x), -EINVAL); /* O must be the tenant */
        req.org = NULL;
        /* validity */
        req.validity_s = 0;
        assert_int_equal(ca_issue(p.device, &req, &x), -EINVAL);
        req.validity_s = 4000 * DAY;
        assert_int_equal(ca_issue(p.device, &req, &x), -ERANGE);
        req.validity_s = DAY;
        req.backdate_s = (uint64_t)NOW + 1;
        assert_int_equal(ca_issue(p.device, &req, &x), -ERANGE);
        req.backdate_s = 0;
        /* a CA request is never a leaf; self-signed only for anchors */
        req.kind = CA_KIND_CA;
        req.role = CA_ROLE_DEVICE;
        req.cn = "x CA";
        assert_int_equal(ca_issue(NULL, &req, &x), -EINVAL);
        req.role = CA_ROLE_ROOT;
        assert_int_equal(ca_issue(p.root, &req, &x), -EINVAL);
        req.kind = CA_KIND_DEVICE;
        req.cn = "acme.gw-1";
        /* weak keys */
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        assert_non_null(weak);
        req.pubkey = weak;
        assert_int_equal(ca_issue(p.device, &req, &x), -EPROTONOSUPPORT);
        EVP_PKEY_free(weak);
        assert_null(x);
        EVP_PKEY_free(key);
        pki_free(&p);
}

/* A certificate whose CN has an embedded NUL, or two CNs: never a name. */
static void test_cert_cn_refuses_tricks(void **state)
{
        static const unsigned char nul_cn[] = {'a', 'c', 'm', 'e', '.', 'a', 0, 'b'};
        X509 *x = X509_new();
        X509_NAME *name = X509_get_subject_name(x);
        char buf[64];

        (void)state;
        assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING, nul_cn,
                                                    sizeof(nul_cn), -1, 0),
                         1);
        assert_int_equal(ca_cert_cn(x, buf, sizeof(buf)), -EBADMSG);
        X509_free(x);
        x = X509_new();
        name = X509_get_subject_name(x);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)"acme.a", -1, -1, 0),
                         1);
        assert_int_equal(ca_cert_cn(x, buf, sizeof(buf)), 0);
        assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                                    (const unsigned char *)"acme.b", -1, -1, 0),
                         1);
        assert_int_equal(ca_cert_cn(x, buf, sizeof(buf)), -EBADMSG);
        X509_free(x);
        x = X509_new();
        assert_int_equal(ca_cert_cn(x, buf, sizeof(buf)), -EBADMSG);
        X509_free(x);
}

/* -- CRLs ---------------------------------------------------------------------------------- */

static void test_crl(void **state)
{
        struct ca_revoked rv[2] = {{.revoked_at = NOW - 10, .reason = CA_REASON_KEY_COMPROMISE},
                                   {.revoked_at = NOW - 5, .reason = CA_REASON_UNSPECIFIED}};
        X509 *a, *b, *c, *chain[1];
        STACK_OF(X509_REVOKED) * entries;
        X509_CRL *crl = NULL;
        ASN1_INTEGER *num;
        ASN1_ENUMERATED *reason;
        struct pki p;
        int crit = 0;

        (void)state;
        pki_make(&p);
        a = leaf(p.device, CA_KIND_DEVICE, "acme.gw-1", NULL, 0, NULL);
        b = leaf(p.device, CA_KIND_DEVICE, "acme.gw-2", NULL, 0, NULL);
        c = leaf(p.device, CA_KIND_DEVICE, "acme.gw-3", NULL, 0, NULL);
        assert_int_equal(ca_serial_hex(X509_get0_serialNumber(a), rv[0].serial), 0);
        assert_int_equal(ca_serial_hex(X509_get0_serialNumber(b), rv[1].serial), 0);
        assert_int_equal(ca_crl_build(p.device, rv, 2, 7, NOW, 7 * DAY, &crl), 0);
        assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
        assert_int_equal(
                X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(p.device->cert)), 0);
        assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(p.device->cert)), 1);
        assert_int_equal(ASN1_TIME_cmp_time_t(X509_CRL_get0_lastUpdate(crl), (time_t)NOW), 0);
        assert_int_equal(
                ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), (time_t)(NOW + 7 * DAY)), 0);
        num = X509_CRL_get_ext_d2i(crl, NID_crl_number, &crit, NULL);
        assert_non_null(num);
        assert_int_equal(ASN1_INTEGER_get(num), 7);
        ASN1_INTEGER_free(num);
        assert_int_not_equal(X509_CRL_get_ext_by_NID(crl, NID_authority_key_identifier, -1), -1);
        entries = X509_CRL_get_REVOKED(crl);
        assert_int_equal(sk_X509_REVOKED_num(entries), 2);
        for (int i = 0; i < 2; i++) {
                const X509_REVOKED *e = sk_X509_REVOKED_value(entries, i);
                bool is_a = ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(e),
                                             X509_get0_serialNumber(a)) == 0;

                reason = X509_REVOKED_get_ext_d2i(e, NID_crl_reason, NULL, NULL);
                if (is_a) {
                        assert_non_null(reason);
                        assert_int_equal(ASN1_ENUMERATED_get(reason), 1);
                        assert_int_equal(ASN1_TIME_cmp_time_t(X509_REVOKED_get0_revocationDate(e),
                                                              (time_t)(NOW - 10)),
                                         0);
                } else {
                        assert_null(reason); /* unspecified: no reason code */
                }
                ASN1_ENUMERATED_free(reason);
        }
        /* verification with CRL checking */
        chain[0] = p.device->cert;
        assert_int_equal(verify(a, &p.root->cert, 1, chain, 1, "sslclient", crl),
                         X509_V_ERR_CERT_REVOKED);
        assert_int_equal(verify(c, &p.root->cert, 1, chain, 1, "sslclient", crl), X509_V_OK);
        X509_CRL_free(crl);
        crl = NULL;
        /* bad input */
        assert_int_equal(ca_crl_build(p.device, rv, 2, 0, NOW, DAY, &crl), -EINVAL);
        assert_int_equal(ca_crl_build(p.device, rv, 2, 1, NOW, 0, &crl), -EINVAL);
        snprintf(rv[0].serial, sizeof(rv[0].serial), "XYZ");
        assert_int_equal(ca_crl_build(p.device, rv, 2, 1, NOW, DAY, &crl), -EINVAL);
        assert_null(crl);
        X509_free(a);
        X509_free(b);
        X509_free(c);
        pki_free(&p);
}

static void test_pem_roundtrip(void **state)
{
        STACK_OF(X509) *sk = NULL;
        X509 *certs[2], *back = NULL;
        struct pki p;
        char *pem;
        size_t len;

        (void)state;
        pki_make(&p);
        certs[0] = p.device->cert;
        certs[1] = p.root->cert;
        assert_int_equal(ca_pem_write_certs(tmp("chain.pem"), certs, 2), 0);
        assert_int_equal(ca_pem_write_certs(tmp("chain.pem"), certs, 2), -EEXIST);
        assert_int_equal(ca_pem_read_certs(tmp("chain.pem"), &sk), 0);
        assert_int_equal(sk_X509_num(sk), 2);
        assert_int_equal(X509_cmp(sk_X509_value(sk, 1), p.root->cert), 0);
        sk_X509_pop_free(sk, X509_free);
        assert_int_equal(ca_pem_read_cert(tmp("chain.pem"), &back), 0);
        assert_int_equal(X509_cmp(back, p.device->cert), 0);
        X509_free(back);
        assert_int_equal(ca_pem_certs(certs, 1, &pem, &len), 0);
        assert_int_equal(ca_pem_parse_cert(pem, len, &back), 0);
        assert_int_equal(X509_cmp(back, p.device->cert), 0);
        X509_free(back);
        assert_int_equal(ca_pem_parse_cert(pem, 20, &back), -EBADMSG);
        floe_free(pem);
        pki_free(&p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_san_parse),
                cmocka_unit_test(test_serials),
                cmocka_unit_test_setup_teardown(test_keys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_files, setup, teardown),
                cmocka_unit_test(test_ca_certificates),
                cmocka_unit_test(test_leaf_certificates),
                cmocka_unit_test(test_issue_refusals),
                cmocka_unit_test(test_cert_cn_refuses_tricks),
                cmocka_unit_test(test_crl),
                cmocka_unit_test_setup_teardown(test_pem_roundtrip, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
