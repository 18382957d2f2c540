/* SPDX-License-Identifier: Apache-2.0 */
/* The CA directory (certs/ca-dir.h), claims and the broker configuration (certs/ca-broker.h). */
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
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca-broker.h"
#include "ca-dir.h"
#include "floe-alloc.h"

#define NOW 1800000000LL
#define DAY 86400ULL

struct fx {
        char base[64];
        char dir[96];
        struct ca_dir *d;
};

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static char *path_in(const struct fx *f, const char *rel)
{
        static char buf[4][256];
        static int i;

        i = (i + 1) % 4;
        snprintf(buf[i], sizeof(buf[i]), "%s/%s", f->dir, rel);
        return buf[i];
}

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct ca_settings s;

        assert_non_null(f);
        snprintf(f->base, sizeof(f->base), "/tmp/floe-test-ca-dir-XXXXXX");
        assert_non_null(mkdtemp(f->base));
        snprintf(f->dir, sizeof(f->dir), "%s/ca", f->base);
        ca_settings_default(&s);
        assert_int_equal(ca_dir_init(f->dir, &s, NOW), 0);
        assert_int_equal(ca_dir_open(f->dir, NULL, &f->d, NULL), 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        ca_dir_close(f->d);
        assert_int_equal(nftw(f->base, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        free(f);
        return 0;
}

static bool exists(const char *path)
{
        struct stat st;

        return lstat(path, &st) == 0;
}

static X509 *read_cert(const char *path)
{
        X509 *x = NULL;

        assert_int_equal(ca_pem_read_cert(path, &x), 0);
        return x;
}

/* -- init, open, settings ------------------------------------------------------------- */

static void test_init_and_open(void **state)
{
        static const char *const roles[] = {"root", "device", "server", "claim", "service"};
        struct fx *f = *state;
        struct floe_config_error err = {0};
        struct ca_settings s;
        struct ca_dir *d = NULL;
        char empty[128], other[128];
        struct stat st;

        for (size_t i = 0; i < ELEMENTSOF(roles); i++) {
                char rel[64];

                snprintf(rel, sizeof(rel), "%s/ca.key", roles[i]);
                assert_int_equal(stat(path_in(f, rel), &st), 0);
                assert_int_equal(st.st_mode & 0777, 0600);
                snprintf(rel, sizeof(rel), "%s/crl.pem", roles[i]);
                assert_true(exists(path_in(f, rel)));
        }
        assert_int_equal(stat(f->dir, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0700);
        /* never over an existing CA, nothing left behind */
        ca_settings_default(&s);
        assert_int_equal(ca_dir_init(f->dir, &s, NOW), -EEXIST);
        /* an empty directory is fine (e.g. made beforehand with the right owner) */
        snprintf(empty, sizeof(empty), "%s/empty", f->base);
        assert_int_equal(mkdir(empty, 0700), 0);
        s.key_type = CA_KEY_P384;
        assert_int_equal(ca_dir_init(empty, &s, NOW), 0);
        assert_int_equal(ca_dir_open(empty, NULL, &d, NULL), 0);
        assert_int_equal(ca_dir_settings(d)->key_type, CA_KEY_P384);
        d = ca_dir_close(d);
        assert_null(d);
        assert_null(ca_dir_close(NULL));
        /* not a CA directory */
        snprintf(other, sizeof(other), "%s/other", f->base);
        assert_int_equal(mkdir(other, 0700), 0);
        assert_int_equal(ca_dir_open(other, NULL, &d, &err), -ENOENT);
        assert_int_equal(ca_dir_init("", &s, NOW), -EINVAL);
        /* a bad settings file names its line */
        assert_int_equal(
                ca_file_replace(path_in(f, "floe-ca.conf"), "[crl]\nnext_update = 2y\n", 21, 0644),
                0);
        assert_int_equal(ca_dir_open(f->dir, NULL, &d, &err), -EINVAL);
        assert_int_equal(err.line, 2);
        assert_non_null(strstr(err.msg, "next_update"));
        assert_int_equal(
                ca_file_replace(path_in(f, "floe-ca.conf"), "[ca]\ncolour = red\n", 18, 0644), 0);
        assert_int_equal(ca_dir_open(f->dir, NULL, &d, &err), -EINVAL);
        assert_null(d);
}

static void test_settings_roundtrip(void **state)
{
        struct floe_config_error err = {0};
        struct ca_settings s, back;
        struct floe_config *cfg = NULL;
        char *text = NULL;

        (void)state;
        ca_settings_default(&s);
        s.key_type = CA_KEY_RSA3072;
        s.validity_s[CA_KIND_CLAIM] = 30 * DAY;
        s.crl_next_update_s = 36 * 3600;
        snprintf(s.organization, sizeof(s.organization), "Example Ops");
        assert_int_equal(ca_settings_format(&s, &text), 0);
        assert_int_equal(floe_config_load_string("t", text, strlen(text), &cfg, &err), 0);
        ca_settings_default(&back);
        assert_int_equal(ca_settings_apply(cfg, &back, &err), 0);
        assert_memory_equal(&s, &back, sizeof(s));
        floe_config_free(cfg);
        floe_free(text);
        assert_int_equal(
                floe_config_load_string("t", "[validity]\ndevice = 1500ms\n", 27, &cfg, &err), 0);
        assert_int_equal(ca_settings_apply(cfg, &back, &err), -EINVAL);
        assert_non_null(strstr(err.msg, "whole seconds"));
        floe_config_free(cfg);
}

/* -- issue -------------------------------------------------------------------------------- */

static int failing_hook(struct registry *reg, X509 *cert, void *userdata)
{
        (void)reg;
        (void)cert;
        (*(int *)userdata)++;
        return -ECANCELED;
}

static void test_issue(void **state)
{
        struct fx *f = *state;
        struct ca_issue_opts o = {.kind = CA_KIND_DEVICE, .name = "acme.gw-1", .now = NOW};
        struct registry_cert rc;
        struct ca_issued out;
        X509 *x, *chain[2];
        STACK_OF(X509) *sk = NULL;
        int calls = 0;
        struct stat st;

        assert_int_equal(ca_dir_issue(f->d, &o, &out), 0);
        assert_string_equal(out.key_path, path_in(f, "issued/acme.gw-1.key"));
        assert_int_equal(stat(out.key_path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        assert_int_equal(out.not_before, NOW - 300);
        assert_int_equal(out.not_after, NOW + (int64_t)(90 * DAY));
        x = read_cert(out.cert_path);
        assert_int_equal(registry_cert_get(ca_dir_registry(f->d), out.serial, &rc), 0);
        assert_int_equal(rc.kind, CA_KIND_DEVICE);
        assert_int_equal(rc.issuer, CA_ROLE_DEVICE);
        assert_string_equal(rc.identity, "acme.gw-1");
        registry_cert_clear(&rc);
        /* chain: leaf + device CA */
        assert_int_equal(ca_pem_read_certs(out.chain_path, &sk), 0);
        assert_int_equal(sk_X509_num(sk), 2);
        assert_int_equal(X509_cmp(sk_X509_value(sk, 0), x), 0);
        chain[1] = read_cert(path_in(f, "device/ca.pem"));
        assert_int_equal(X509_cmp(sk_X509_value(sk, 1), chain[1]), 0);
        sk_X509_pop_free(sk, X509_free);
        X509_free(chain[1]);
        X509_free(x);
        /* never overwritten */
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -EEXIST);
        /* a failing hook undoes everything */
        o.name = "acme.gw-2";
        o.hook = failing_hook;
        o.userdata = &calls;
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -ECANCELED);
        assert_int_equal(calls, 1);
        assert_false(exists(path_in(f, "issued/acme.gw-2.key")));
        assert_false(exists(path_in(f, "issued/acme.gw-2.pem")));
        o.hook = NULL;
        /* bad names, kinds and lifetimes */
        o.name = "acme/gw-2";
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -EINVAL);
        o.name = "acme.gw-2";
        o.kind = CA_KIND_CA;
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -EINVAL);
        o.kind = CA_KIND_DEVICE;
        o.validity_s = 20000 * DAY;
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -ERANGE);
        assert_false(exists(path_in(f, "issued/acme.gw-2.key")));
        o.validity_s = 0;
        o.csr_path = path_in(f, "missing.csr");
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -ENOENT);
        /* the device CA key must stay private */
        assert_int_equal(chmod(path_in(f, "device/ca.key"), 0644), 0);
        o.csr_path = NULL;
        assert_int_equal(ca_dir_issue(f->d, &o, &out), -EPERM);
        assert_int_equal(chmod(path_in(f, "device/ca.key"), 0600), 0);
        /* server names become DNS SANs; services have no chain beyond the leaf */
        o = (struct ca_issue_opts){.kind = CA_KIND_SERVICE, .name = "floe-uploader", .now = NOW};
        assert_int_equal(ca_dir_issue(f->d, &o, &out), 0);
        assert_int_equal(ca_pem_read_certs(out.chain_path, &sk), 0);
        assert_int_equal(sk_X509_num(sk), 1);
        sk_X509_pop_free(sk, X509_free);
}

static void test_claim(void **state)
{
        static const char *const allow[] = {"acme.gw-1", "acme.gw-2", "acme.gw-1"};
        static const char *const bound[] = {"acme.gw-3"};
        struct fx *f = *state;
        struct ca_claim_opts o = {
                .id = "batch-1",
                .tenant = "acme",
                .allow = allow,
                .n_allow = 3,
                .n_tokens = 2,
                .tokens_for = bound,
                .n_tokens_for = 1,
                .now = NOW,
        };
        struct registry *reg = ca_dir_registry(f->d);
        struct ca_claim_token *tokens = NULL;
        struct registry_claim claim;
        uint64_t total = 0, unused = 0;
        struct ca_issued out;
        size_t n = 0, len = 0;
        bool replay = true;
        char *text = NULL;

        assert_int_equal(ca_dir_issue_claim(f->d, &o, &out, &tokens, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(out.cert_path, path_in(f, "issued/claim-batch-1.pem"));
        assert_int_equal(registry_claim_get(reg, "claim-batch-1", &claim), 0);
        assert_string_equal(claim.tenant, "acme");
        assert_int_equal(claim.expires_at, out.not_after);
        assert_int_equal(registry_token_count(reg, "claim-batch-1", &total, &unused), 0);
        assert_int_equal(total, 3);
        assert_string_equal(tokens[0].identity, "");
        assert_string_equal(tokens[2].identity, "acme.gw-3");
        /* what floe-enrolld will do with them */
        assert_int_equal(registry_token_burn(reg, "claim-batch-1", tokens[0].token, "acme.gw-9",
                                             "k1", NOW, &replay),
                         0);
        assert_false(replay);
        assert_int_equal(registry_token_burn(reg, "claim-batch-1", tokens[2].token, "acme.gw-4",
                                             "k1", NOW, &replay),
                         -EPERM);
        assert_int_equal(
                registry_entitlement_use(reg, "claim-batch-1", "acme.gw-2", "k2", NOW, &replay), 0);
        assert_int_equal(ca_claim_tokens_format(tokens, n, "acme", &text, &len), 0);
        assert_int_equal(len, 3 * (REGISTRY_TOKEN_LEN + 1) + 7 + 7 + 10);
        assert_non_null(strstr(text, " acme.*\n"));
        assert_non_null(strstr(text, " acme.gw-3\n"));
        floe_free(text);
        tokens = ca_claim_tokens_free(tokens, n);
        assert_null(tokens);

        /* refusals, before anything is made */
        o.id = "batch-2";
        o.tenant = NULL;
        assert_non_null(ca_claim_opts_problem(&o)); /* tokens need a tenant */
        assert_int_equal(ca_dir_issue_claim(f->d, &o, &out, &tokens, &n), -EINVAL);
        o.tenant = "other";
        assert_non_null(ca_claim_opts_problem(&o)); /* identities outside the tenant */
        o.tenant = "acme";
        o.id = "Batch";
        assert_non_null(ca_claim_opts_problem(&o));
        assert_false(exists(path_in(f, "issued/claim-batch-2.key")));
        o.id = "batch-1";
        assert_int_equal(ca_dir_issue_claim(f->d, &o, &out, &tokens, &n), -EEXIST);
}

static void test_names_lists(void **state)
{
        struct fx *f = *state;
        struct ca_names l = {0};

        assert_int_equal(ca_names_add_csv(&l, "a.b,,c.d"), 0);
        assert_int_equal(l.n, 2);
        assert_int_equal(ca_file_write_new(path_in(f, "list.txt"),
                                           "# header\n\n  e.f \r\ng.h\n#x.y\n", 28, 0644),
                         0);
        assert_int_equal(ca_names_add_file(&l, path_in(f, "list.txt")), 0);
        assert_int_equal(l.n, 4);
        assert_string_equal(l.v[2], "e.f");
        assert_string_equal(l.v[3], "g.h");
        assert_int_equal(ca_names_add_file(&l, path_in(f, "none.txt")), -ENOENT);
        ca_names_clear(&l);
        assert_int_equal(l.n, 0);
        assert_null(l.v);
}

/* -- CRLs --------------------------------------------------------------------------------- */

static void test_write_crl(void **state)
{
        struct fx *f = *state;
        struct ca_issue_opts o = {.kind = CA_KIND_DEVICE, .name = "acme.gw-1", .now = NOW};
        struct ca_issued a, b;
        X509_CRL *crl;
        uint64_t number = 0;
        char copy[128], cp[160];
        FILE *fp;

        assert_int_equal(ca_dir_issue(f->d, &o, &a), 0);
        o.name = "acme.gw-2";
        o.validity_s = 60;
        assert_int_equal(ca_dir_issue(f->d, &o, &b), 0);
        assert_int_equal(registry_revoke_serial(ca_dir_registry(f->d), a.serial,
                                                CA_REASON_KEY_COMPROMISE, NOW + 1),
                         0);
        assert_int_equal(registry_revoke_serial(ca_dir_registry(f->d), b.serial,
                                                CA_REASON_SUPERSEDED, NOW + 1),
                         0);
        snprintf(copy, sizeof(copy), "%s/broker", f->base);
        assert_int_equal(mkdir(copy, 0700), 0);
        /* at NOW + 120, b has expired and leaves the CRL */
        assert_int_equal(ca_dir_write_crl(f->d, CA_ROLE_DEVICE, NOW + 120, 3600, copy, &number), 0);
        assert_int_equal(number, 2); /* init wrote number 1 */
        fp = fopen(path_in(f, "device/crl.pem"), "re");
        assert_non_null(fp);
        crl = PEM_read_X509_CRL(fp, NULL, NULL, NULL);
        fclose(fp);
        assert_non_null(crl);
        assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
        assert_int_equal(
                ASN1_TIME_cmp_time_t(X509_CRL_get0_nextUpdate(crl), (time_t)(NOW + 120 + 3600)), 0);
        X509_CRL_free(crl);
        snprintf(cp, sizeof(cp), "%s/device.crl.pem", copy);
        assert_true(exists(cp));
        assert_int_equal(ca_dir_write_crl(f->d, CA_ROLE_DEVICE, NOW + 130, 0, NULL, &number), 0);
        assert_int_equal(number, 3);
        /* the root key kept offline */
        assert_int_equal(rename(path_in(f, "root/ca.key"), path_in(f, "root/offline.key")), 0);
        assert_int_equal(ca_dir_write_crl(f->d, CA_ROLE_ROOT, NOW, 0, NULL, &number), -ENOENT);
        assert_int_equal(ca_dir_write_crl(f->d, (enum ca_role)7, NOW, 0, NULL, &number), -EINVAL);
}

/* -- broker configuration ---------------------------------------------------------------- */

static void test_broker_config(void **state)
{
        struct fx *f = *state;
        struct ca_broker_opts o = {.hostnames = "mqtt.example.com,10.0.0.5", .now = NOW};
        char out[128], p[192], *text = NULL;
        size_t len;
        int issued = -1;
        X509 *x;

        snprintf(out, sizeof(out), "%s/broker", f->base);
        o.out_dir = out;
        assert_int_equal(ca_broker_parse_ports("18883,18884,18885", &o), 0);
        assert_int_equal(o.claim_port, 18884);
        assert_int_equal(ca_broker_parse_ports("1,2", &o), -EINVAL);
        assert_int_equal(ca_broker_parse_ports("1,2,3,4", &o), -EINVAL);
        assert_int_equal(ca_broker_parse_ports("1,2,70000", &o), -EINVAL);
        assert_int_equal(ca_broker_parse_ports("1,,3", &o), -EINVAL);
        assert_int_equal(o.service_port, 18885);
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), 0);
        assert_int_equal(issued, 1);
        snprintf(p, sizeof(p), "%s/broker.pem", out);
        x = read_cert(p);
        assert_int_equal(X509_check_host(x, "mqtt.example.com", 0, 0, NULL), 1);
        assert_int_equal(X509_check_host(x, "localhost", 0, 0, NULL), 1);
        assert_int_equal(X509_check_ip_asc(x, "10.0.0.5", 0), 1);
        assert_int_equal(X509_check_ip_asc(x, "127.0.0.1", 0), 1);
        X509_free(x);
        snprintf(p, sizeof(p), "%s/mosquitto.conf", out);
        assert_int_equal(ca_file_read(p, 65536, &text, &len), 0);
        assert_non_null(strstr(text, "listener 18883\n"));
        assert_non_null(strstr(text, "listener 18885 127.0.0.1\n"));
        assert_non_null(strstr(text, "use_username_as_clientid false\n"));
        floe_free(text);
        /* again: the broker key stays */
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), 0);
        assert_int_equal(issued, 0);
        o.install_dir = "relative/path";
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EINVAL);
        o.install_dir = "/etc/mos quitto";
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EINVAL);
        o.install_dir = NULL;
        o.bind = "0.0.0.0\nlistener 1883";
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EINVAL);
        o.bind = NULL;
        o.user = "root #";
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EINVAL);
        o.user = NULL;
        snprintf(out, sizeof(out), "%s/broker2", f->base);
        o.hostnames = NULL;
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EDESTADDRREQ);
        o.hostnames = "Bad_Name";
        assert_int_equal(ca_broker_config_write(f->d, &o, &issued), -EINVAL);

        assert_int_equal(ca_broker_acl("claim", &o, &text), 0);
        assert_non_null(strstr(text, "\npattern write floe/enroll/v1/%u/req\n"));
        assert_null(strstr(text, "floe/v1/"));
        floe_free(text);
        o.uploader = "up-1";
        assert_int_equal(ca_broker_acl("service", &o, &text), 0);
        assert_non_null(strstr(text, "\nuser up-1\ntopic read floe/v1/+/batch\n"));
        floe_free(text);
        o.uploader = "acme.gw-1"; /* a device name is never a service */
        assert_int_equal(ca_broker_acl("service", &o, &text), -EINVAL);
        assert_int_equal(ca_broker_acl("nope", &o, &text), -EINVAL);
}

static char *csr_pem(EVP_PKEY *key, bool tamper, size_t *ret_len)
{
        X509_REQ *req = X509_REQ_new();
        BIO *bio = BIO_new(BIO_s_mem());
        char *data = NULL, *copy;
        long len;

        assert_non_null(req);
        assert_non_null(bio);
        assert_int_equal(X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN",
                                                    MBSTRING_ASC, (const unsigned char *)"evil/+#",
                                                    -1, -1, 0),
                         1);
        assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
        assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
        if (tamper) {
                const ASN1_BIT_STRING *sig = NULL;

                X509_REQ_get0_signature(req, &sig, NULL);
                ((unsigned char *)ASN1_STRING_get0_data(sig))[10] ^= 0x01;
        }
        assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
        len = BIO_get_mem_data(bio, &data);
        copy = malloc((size_t)len + 1);
        assert_non_null(copy);
        memcpy(copy, data, (size_t)len);
        copy[len] = '\0';
        *ret_len = (size_t)len;
        BIO_free(bio);
        X509_REQ_free(req);
        return copy;
}

static void test_csr(void **state)
{
        EVP_PKEY *key, *weak, *got = NULL;
        char *pem;
        size_t len;

        (void)state;
        assert_int_equal(ca_key_generate(CA_KEY_P384, &key), 0);
        pem = csr_pem(key, false, &len);
        assert_int_equal(ca_csr_key(pem, len, &got), 0);
        assert_int_equal(EVP_PKEY_eq(key, got), 1);
        EVP_PKEY_free(got);
        got = NULL;
        assert_int_equal(ca_csr_key(pem, 0, &got), -EINVAL);
        assert_int_equal(ca_csr_key(pem, CA_CSR_MAX + 1, &got), -EINVAL);
        assert_int_equal(ca_csr_key("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n", 40, &got),
                         -EBADMSG);
        free(pem);
        /* no proof of possession */
        pem = csr_pem(key, true, &len);
        assert_int_equal(ca_csr_key(pem, len, &got), -EBADMSG);
        free(pem);
        EVP_PKEY_free(key);
        /* a weak key, properly signed */
        weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
        assert_non_null(weak);
        pem = csr_pem(weak, false, &len);
        assert_int_equal(ca_csr_key(pem, len, &got), -EPROTONOSUPPORT);
        assert_null(got);
        free(pem);
        EVP_PKEY_free(weak);
}

static void test_server_cn_as_address(void **state)
{
        struct fx *f = *state;
        struct ca_issue_opts o = {.kind = CA_KIND_SERVER, .name = "10.0.0.5", .now = NOW};
        struct ca_issued out;
        GENERAL_NAMES *gens;
        X509 *x;

        assert_int_equal(ca_dir_issue(f->d, &o, &out), 0);
        x = read_cert(out.cert_path);
        gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
        assert_non_null(gens);
        assert_int_equal(sk_GENERAL_NAME_num(gens), 1);
        assert_int_equal(sk_GENERAL_NAME_value(gens, 0)->type, GEN_IPADD);
        assert_int_equal(X509_check_ip_asc(x, "10.0.0.5", 0), 1);
        GENERAL_NAMES_free(gens);
        X509_free(x);
}

/* Every floe allocation on the issuing path fails in turn: an error, no leak, no file. */
static void test_issue_allocation_failures(void **state)
{
        struct fx *f = *state;

        for (uint64_t n = 1; n < 200; n++) {
                struct ca_issue_opts o = {.kind = CA_KIND_DEVICE, .name = "acme.gw-77", .now = NOW};
                struct ca_issued out;
                int r;

                floe_alloc_fail_at(n);
                r = ca_dir_issue(f->d, &o, &out);
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(r, 0);
                        return;
                }
                floe_alloc_fail_at(0);
                assert_int_equal(r, -ENOMEM);
                assert_false(exists(path_in(f, "issued/acme.gw-77.key")));
                assert_false(exists(path_in(f, "issued/acme.gw-77.pem")));
        }
        fail_msg("more than 200 allocations");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_init_and_open, setup, teardown),
                cmocka_unit_test(test_settings_roundtrip),
                cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_names_lists, setup, teardown),
                cmocka_unit_test_setup_teardown(test_write_crl, setup, teardown),
                cmocka_unit_test_setup_teardown(test_broker_config, setup, teardown),
                cmocka_unit_test(test_csr),
                cmocka_unit_test_setup_teardown(test_server_cn_as_address, setup, teardown),
                cmocka_unit_test_setup_teardown(test_issue_allocation_failures, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
