/* SPDX-License-Identifier: Apache-2.0 */
/* Bucket lifecycle configurations (uploader/store/store-lifecycle-xml.c): the caller's rules read
 * from what Ceph RGW and AWS answer, the others kept byte for byte, comparison in any order,
 * the document to PUT (escaped, round trip), malformed answers, rule checks, allocation
 * failures; -EOPNOTSUPP on file:// stores; and the requests lake_lifecycle_install() sends,
 * recorded by a loopback socket: GET, PUT with a Content-MD5 of its body, GET to read back, and
 * only GET when nothing changed (Ceph RGW checks a Content-MD5 it gets:
 * tests/system/test_tiers.py).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "floe-alloc.h"
#include "store-lifecycle.h"
#include "store.h"

/* Ceph RGW 16.2's answer to GET ?lifecycle after a PUT of a foreign rule and one of ours (it
 * sorts rules by ID and lists transitions its own way). */
static const char RGW[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><LifecycleConfiguration "
        "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Rule><ID>floe-floe/events/data/</ID>"
        "<Filter><Prefix>wh/floe/events/data/</Prefix></Filter><Status>Enabled</Status>"
        "<Transition><Days>3</Days><StorageClass>COLD</StorageClass></Transition><Transition>"
        "<Days>2</Days><StorageClass>STANDARD_IA</StorageClass></Transition></Rule><Rule>"
        "<ID>other</ID><Filter><Prefix>tmp/</Prefix></Filter><Status>Enabled</Status>"
        "<Expiration><Days>100</Days></Expiration></Rule></LifecycleConfiguration>";

static const char OTHER_RULE[] = "<Rule><ID>other</ID><Filter><Prefix>tmp/</Prefix></Filter>"
                                 "<Status>Enabled</Status><Expiration><Days>100</Days>"
                                 "</Expiration></Rule>";

static struct lake_lifecycle_rule events(void)
{
        return (struct lake_lifecycle_rule){
                .id = "floe-floe/events/data/",
                .prefix = "floe/events/data/",
                .transitions = {{2, "STANDARD_IA"}, {3, "COLD"}},
                .n_transitions = 2,
        };
}

static void test_parse_rgw(void **state)
{
        struct lake_lifecycle_config c;
        struct lake_lifecycle_rule r = events();

        (void)state;
        assert_int_equal(lake_lifecycle_parse(RGW, strlen(RGW), NULL, &c), 0);
        assert_int_equal(c.n_ours, 1);
        assert_string_equal(c.ours[0].id, "floe-floe/events/data/");
        assert_string_equal(c.ours[0].prefix, "wh/floe/events/data/");
        assert_true(c.ours[0].enabled);
        assert_false(c.ours[0].other);
        assert_int_equal(c.ours[0].n_transitions, 2);
        assert_int_equal(c.ours[0].transitions[0].days, 3);
        assert_string_equal(c.ours[0].transitions[0].storage_class, "COLD");
        /* the other rule, byte for byte */
        assert_int_equal(c.n_keep, 1);
        assert_int_equal(c.keep_len, strlen(OTHER_RULE));
        assert_memory_equal(c.keep, OTHER_RULE, c.keep_len);
        /* equal under the store's prefix "wh", transitions in any order */
        assert_true(lake_lifecycle_same(&c, &r, 1, "wh"));
        assert_false(lake_lifecycle_same(&c, &r, 1, ""));
        r.transitions[1].days = 4;
        assert_false(lake_lifecycle_same(&c, &r, 1, "wh"));
        r = events();
        r.transitions[1].storage_class = "GLACIER";
        assert_false(lake_lifecycle_same(&c, &r, 1, "wh"));
        r = events();
        r.n_transitions = 1;
        assert_false(lake_lifecycle_same(&c, &r, 1, "wh"));
        r = events();
        r.abort_multipart_days = 7;
        assert_false(lake_lifecycle_same(&c, &r, 1, "wh"));
        r = events();
        r.id = "floe-floe/other/data/";
        assert_false(lake_lifecycle_same(&c, &r, 1, "wh"));
        assert_false(lake_lifecycle_same(&c, NULL, 0, "wh")); /* ours must go */
        lake_lifecycle_config_clear(&c);

        /* owned by ID prefix: with "floe-floe/x" nothing here is ours */
        assert_int_equal(lake_lifecycle_parse(RGW, strlen(RGW), "floe-floe/x", &c), 0);
        assert_int_equal(c.n_ours, 0);
        assert_int_equal(c.n_keep, 2);
        assert_true(lake_lifecycle_same(&c, NULL, 0, "wh"));
        lake_lifecycle_config_clear(&c);
}

/* Rules of ours that floe would not write are different (rewritten). */
static void test_parse_other_forms(void **state)
{
        static const char *const docs[] = {
                /* disabled */
                "<LifecycleConfiguration><Rule><ID>floe-a</ID><Filter><Prefix>p/</Prefix>"
                "</Filter><Status>Disabled</Status><Transition><Days>1</Days><StorageClass>GLACIER"
                "</StorageClass></Transition></Rule></LifecycleConfiguration>",
                /* an expiration beside */
                "<LifecycleConfiguration><Rule><ID>floe-a</ID><Filter><Prefix>p/</Prefix>"
                "</Filter><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER"
                "</StorageClass></Transition><Expiration><Days>9</Days></Expiration></Rule>"
                "</LifecycleConfiguration>",
                /* the old rule-level prefix */
                "<LifecycleConfiguration><Rule><ID>floe-a</ID><Prefix>p/</Prefix>"
                "<Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER"
                "</StorageClass></Transition></Rule></LifecycleConfiguration>",
                /* a transition by date */
                "<LifecycleConfiguration><Rule><ID>floe-a</ID><Filter><Prefix>p/</Prefix>"
                "</Filter><Status>Enabled</Status><Transition><Date>2030-01-01T00:00:00Z</Date>"
                "<StorageClass>GLACIER</StorageClass></Transition></Rule>"
                "</LifecycleConfiguration>",
                /* a filter with tags */
                "<LifecycleConfiguration><Rule><ID>floe-a</ID><Filter><And><Prefix>p/</Prefix>"
                "<Tag><Key>k</Key><Value>v</Value></Tag></And></Filter><Status>Enabled</Status>"
                "<Transition><Days>1</Days><StorageClass>GLACIER</StorageClass></Transition>"
                "</Rule></LifecycleConfiguration>",
        };
        static const char same[] =
                "<LifecycleConfiguration><!-- <Rule><ID>floe-x</ID></Rule> -->"
                "<Rule><ID>floe-a</ID><Filter><Prefix>p/</Prefix></Filter>"
                "<Status>Enabled</Status><Transition><Days>1</Days><StorageClass>GLACIER"
                "</StorageClass></Transition></Rule><Rule/></LifecycleConfiguration>";
        struct lake_lifecycle_rule r = {.id = "floe-a",
                                        .prefix = "p/",
                                        .transitions = {{1, "GLACIER"}},
                                        .n_transitions = 1};
        struct lake_lifecycle_config c;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(docs); i++) {
                assert_int_equal(lake_lifecycle_parse(docs[i], strlen(docs[i]), NULL, &c), 0);
                assert_int_equal(c.n_ours, 1);
                assert_false(lake_lifecycle_same(&c, &r, 1, ""));
                lake_lifecycle_config_clear(&c);
        }
        /* a comment is no rule; an empty rule is someone else's, kept */
        assert_int_equal(lake_lifecycle_parse(same, strlen(same), NULL, &c), 0);
        assert_int_equal(c.n_ours, 1);
        assert_true(lake_lifecycle_same(&c, &r, 1, ""));
        assert_int_equal(c.n_keep, 1);
        assert_string_equal(c.keep, "<Rule/>");
        lake_lifecycle_config_clear(&c);
}

static void test_malformed(void **state)
{
        static const char *const bad[] = {
                "",
                "<Error><Code>NoSuchLifecycleConfiguration</Code></Error>",
                "<LifecycleConfiguration><Rule><ID>floe-a</ID></Rule>",
                "<LifecycleConfiguration><Rule><ID>floe-a</Rule></LifecycleConfiguration>",
                "<LifecycleConfiguration><![CDATA[<Rule/>]]></LifecycleConfiguration>",
                "<LifecycleConfiguration></LifecycleConfiguration><Rule/>",
        };
        struct lake_lifecycle_config c;
        char *big;
        size_t len = 0;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(lake_lifecycle_parse(bad[i], strlen(bad[i]), NULL, &c), -EBADMSG);
        /* a cut answer: each prefix of a good one */
        for (size_t n = 0; n < sizeof(RGW) - 1; n += 7)
                assert_int_equal(lake_lifecycle_parse(RGW, n, NULL, &c), -EBADMSG);
        /* more rules than S3 allows */
        big = malloc(1002 * 24 + 64);
        assert_non_null(big);
        len += (size_t)snprintf(big, 64, "<LifecycleConfiguration>");
        for (int i = 0; i < 1001; i++)
                len += (size_t)snprintf(big + len, 24, "<Rule><ID>r</ID></Rule>");
        len += (size_t)snprintf(big + len, 64, "</LifecycleConfiguration>");
        assert_int_equal(lake_lifecycle_parse(big, len, NULL, &c), -E2BIG);
        free(big);
}

static void test_check(void **state)
{
        struct lake_lifecycle_rule ok = events(), r[2];
        char longid[300];

        (void)state;
        assert_int_equal(lake_lifecycle_check(NULL, &ok, 1), 0);
        assert_int_equal(lake_lifecycle_check(NULL, NULL, 0), 0);
        r[0] = ok;
        r[0].id = "mine";
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL); /* not owned */
        assert_int_equal(lake_lifecycle_check("mi", r, 1), 0);
        r[0] = ok;
        r[0].transitions[1].days = 2;
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL); /* not ascending */
        r[0] = ok;
        r[0].transitions[0].days = 0;
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL);
        r[0] = ok;
        r[0].transitions[0].storage_class = "standard_ia";
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL);
        r[0].transitions[0].storage_class = "STANDARD";
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL);
        r[0] = ok;
        r[0].n_transitions = 0;
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL); /* does nothing */
        r[0].abort_multipart_days = 3;
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), 0);
        r[0] = ok;
        r[0].prefix = "a\nb";
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL);
        r[0] = ok;
        memset(longid, 'x', sizeof(longid) - 1);
        memcpy(longid, "floe-", 5);
        longid[sizeof(longid) - 1] = '\0';
        r[0].id = longid;
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), -EINVAL);
        longid[255] = '\0';
        assert_int_equal(lake_lifecycle_check(NULL, r, 1), 0);
        r[0] = r[1] = ok;
        assert_int_equal(lake_lifecycle_check(NULL, r, 2), -EINVAL); /* the same ID twice */
}

static void test_xml_round_trip(void **state)
{
        struct lake_lifecycle_rule r[2] = {events(), events()};
        struct lake_lifecycle_config keep, back;
        char *xml = NULL;
        size_t len = 0;

        (void)state;
        r[1].id = "floe-<a&b>/\"q'/";
        r[1].prefix = "t&<x>/data/";
        r[1].n_transitions = 1;
        r[1].abort_multipart_days = 7;
        assert_int_equal(lake_lifecycle_parse(RGW, strlen(RGW), NULL, &keep), 0);
        assert_int_equal(lake_lifecycle_xml(&keep, r, 2, "pre/fix", &xml, &len), 0);
        assert_int_equal(strlen(xml), len);
        /* kept rules first, verbatim; then ours, escaped */
        assert_non_null(strstr(xml, OTHER_RULE));
        assert_true(strstr(xml, OTHER_RULE) < strstr(xml, "<ID>floe-floe/events/data/</ID>"));
        assert_non_null(strstr(xml, "<ID>floe-&lt;a&amp;b&gt;/&quot;q&apos;/</ID>"));
        assert_non_null(strstr(xml, "<Filter><Prefix>pre/fix/t&amp;&lt;x&gt;/data/</Prefix>"));
        assert_non_null(strstr(xml, "<AbortIncompleteMultipartUpload><DaysAfterInitiation>7"
                                    "</DaysAfterInitiation></AbortIncompleteMultipartUpload>"));
        assert_non_null(strstr(xml, "<LifecycleConfiguration "
                                    "xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"));
        /* read back: the same rules, the other one kept */
        assert_int_equal(lake_lifecycle_parse(xml, len, NULL, &back), 0);
        assert_int_equal(back.n_ours, 2);
        assert_int_equal(back.n_keep, 1);
        assert_true(lake_lifecycle_same(&back, r, 2, "pre/fix"));
        assert_false(lake_lifecycle_same(&back, r, 2, "pre"));
        assert_false(lake_lifecycle_same(&back, r, 1, "pre/fix"));
        lake_lifecycle_config_clear(&back);
        lake_lifecycle_config_clear(&keep);
        floe_free(xml);
        /* nothing kept: only ours */
        assert_int_equal(lake_lifecycle_xml(NULL, r, 1, "", &xml, &len), 0);
        assert_non_null(strstr(xml, "<Prefix>floe/events/data/</Prefix>"));
        assert_null(strstr(xml, "other"));
        floe_free(xml);
}

static void test_alloc_failures(void **state)
{
        struct lake_lifecycle_rule r = events();
        uint64_t total;

        (void)state;
        floe_alloc_fail_at(0);
        {
                struct lake_lifecycle_config c;
                char *xml;
                size_t len;

                assert_int_equal(lake_lifecycle_parse(RGW, strlen(RGW), NULL, &c), 0);
                assert_int_equal(lake_lifecycle_xml(&c, &r, 1, "wh", &xml, &len), 0);
                total = floe_alloc_count();
                lake_lifecycle_config_clear(&c);
                floe_free(xml);
        }
        for (uint64_t n = 1; n <= total; n++) {
                struct lake_lifecycle_config c;
                char *xml = NULL;
                size_t len;
                int rc;

                floe_alloc_fail_at(n);
                rc = lake_lifecycle_parse(RGW, strlen(RGW), NULL, &c);
                if (rc == 0) {
                        rc = lake_lifecycle_xml(&c, &r, 1, "wh", &xml, &len);
                        lake_lifecycle_config_clear(&c);
                }
                floe_alloc_fail_at(0);
                assert_int_equal(rc, -ENOMEM);
                floe_free(xml);
        }
}

static void test_file_store(void **state)
{
        struct lake_lifecycle_rule r = events();
        struct lake_store *s;
        char dir[] = "/tmp/floe-lc-XXXXXX", url[64], cls[32];

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(url, sizeof(url), "file://%s", dir);
        assert_int_equal(lake_store_open(url, NULL, &s), 0);
        assert_int_equal(lake_lifecycle_install(s, NULL, &r, 1, NULL), -EOPNOTSUPP);
        assert_non_null(strstr(lake_store_error(s), "S3"));
        assert_int_equal(lake_lifecycle_apply(s, &r, 1, 0, 1000, NULL, NULL, NULL), -EOPNOTSUPP);
        assert_int_equal(lake_store_get_class(s, "a", cls, sizeof(cls)), -EOPNOTSUPP);
        lake_store_close(s);
        assert_int_equal(rmdir(dir), 0);
}

/* A loopback S3 bucket for ?lifecycle: 404 NoSuchLifecycleConfiguration until a PUT, then the
 * PUT's body; or 501 NotImplemented for everything. Records each request's head and body. */
struct lc_server {
        int fd;
        bool not_implemented;
        int count;
        char head[8][4096];
        char body[8][4096];
        char config[4096];
};

static void *lc_serve(void *ud)
{
        struct lc_server *c = ud;

        for (int i = 0; i < 8; i++) {
                int s = accept4(c->fd, NULL, NULL, SOCK_CLOEXEC);
                char buf[8192], resp[6000];
                size_t len = 0, want = 0, hlen;
                const char *end = NULL, *cl;
                int n;

                if (s < 0)
                        break;
                while (len < sizeof(buf) - 1) {
                        ssize_t got = read(s, buf + len, sizeof(buf) - 1 - len);

                        if (got <= 0)
                                break;
                        len += (size_t)got;
                        buf[len] = '\0';
                        if (!end && (end = strstr(buf, "\r\n\r\n")) &&
                            strcasestr(buf, "\r\nExpect: 100-continue") &&
                            write(s, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
                                break;
                        if (end) {
                                cl = strcasestr(buf, "\r\nContent-Length:");
                                want = cl ? strtoul(cl + 17, NULL, 10) : 0;
                                if (len - (size_t)(end + 4 - buf) >= want)
                                        break;
                        }
                }
                if (!end) {
                        close(s);
                        break;
                }
                hlen = (size_t)(end - buf);
                snprintf(c->head[c->count], sizeof(c->head[0]), "%.*s", (int)hlen, buf);
                snprintf(c->body[c->count], sizeof(c->body[0]), "%.*s", (int)want, end + 4);
                if (c->not_implemented) {
                        static const char e[] = "<Error><Code>NotImplemented</Code></Error>";

                        n = snprintf(resp, sizeof(resp),
                                     "HTTP/1.1 501 Not Implemented\r\nContent-Length: %zu\r\n"
                                     "Connection: close\r\n\r\n%s",
                                     strlen(e), e);
                } else if (strncmp(buf, "PUT ", 4) == 0) {
                        snprintf(c->config, sizeof(c->config), "%s", c->body[c->count]);
                        n = snprintf(resp, sizeof(resp),
                                     "HTTP/1.1 200 OK\r\nContent-Length: "
                                     "0\r\nConnection: close\r\n\r\n");
                } else if (c->config[0]) {
                        n = snprintf(resp, sizeof(resp),
                                     "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n"
                                     "Connection: close\r\n\r\n%s",
                                     strlen(c->config), c->config);
                } else {
                        static const char e[] =
                                "<Error><Code>NoSuchLifecycleConfiguration</Code></Error>";

                        n = snprintf(resp, sizeof(resp),
                                     "HTTP/1.1 404 Not Found\r\nContent-Length: %zu\r\n"
                                     "Connection: close\r\n\r\n%s",
                                     strlen(e), e);
                }
                c->count++;
                if (write(s, resp, (size_t)n) < 0) {
                        close(s);
                        break;
                }
                close(s);
                if (c->not_implemented)
                        break;
        }
        return NULL;
}

static struct lake_store *lc_store(struct lc_server *srv, pthread_t *th)
{
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        socklen_t salen = sizeof(sa);
        struct lake_store_opts o;
        struct lake_store *s;
        char ep[64];

        srv->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(srv->fd >= 0);
        assert_int_equal(bind(srv->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(srv->fd, 8), 0);
        assert_int_equal(getsockname(srv->fd, (struct sockaddr *)&sa, &salen), 0);
        snprintf(ep, sizeof(ep), "http://127.0.0.1:%u", ntohs(sa.sin_port));
        assert_int_equal(pthread_create(th, NULL, lc_serve, srv), 0);
        lake_store_opts_default(&o);
        o.endpoint = ep;
        o.path_style = true;
        o.access_key = "AKIDEXAMPLE";
        o.secret_key = "secret";
        o.retries = 0;
        o.timeout_ms = 10000;
        assert_int_equal(lake_store_open("s3://bucket/wh", &o, &s), 0);
        return s;
}

static void test_install_requests(void **state)
{
        struct lake_lifecycle_rule r = events();
        struct lake_lifecycle_result res;
        struct lc_server srv = {0};
        struct lake_store *s;
        unsigned char md[EVP_MAX_MD_SIZE], b64[64];
        unsigned int mdlen = 0;
        char want[128];
        pthread_t th;

        (void)state;
        s = lc_store(&srv, &th);
        assert_int_equal(lake_lifecycle_install(s, NULL, &r, 1, &res), 0);
        assert_true(res.changed);
        assert_int_equal(res.ours, 1);
        assert_int_equal(res.foreign, 0);
        assert_int_equal(lake_lifecycle_install(s, NULL, &r, 1, &res), 0);
        assert_false(res.changed);
        shutdown(srv.fd, SHUT_RDWR);
        pthread_join(th, NULL);
        close(srv.fd);
        lake_store_close(s);

        assert_int_equal(srv.count, 4); /* GET, PUT, GET (read back); then GET only */
        assert_non_null(strstr(srv.head[0], "GET /bucket?lifecycle= HTTP/1.1"));
        assert_non_null(strstr(srv.head[1], "PUT /bucket?lifecycle= HTTP/1.1"));
        assert_non_null(strstr(srv.head[2], "GET /bucket?lifecycle= HTTP/1.1"));
        assert_non_null(strstr(srv.head[3], "GET /bucket?lifecycle= HTTP/1.1"));
        assert_non_null(strcasestr(srv.head[1], "\r\nContent-Type: application/xml"));
        /* Content-MD5: base64 of the MD5 of the body that came */
        assert_true(EVP_Digest(srv.body[1], strlen(srv.body[1]), md, &mdlen, EVP_md5(), NULL));
        EVP_EncodeBlock(b64, md, (int)mdlen);
        snprintf(want, sizeof(want), "\r\nContent-MD5: %s", (const char *)b64);
        assert_non_null(strstr(srv.head[1], want));
        assert_non_null(strstr(srv.body[1], "<Prefix>wh/floe/events/data/</Prefix>"));
}

static void test_install_not_implemented(void **state)
{
        struct lake_lifecycle_rule r = events();
        struct lc_server srv = {.not_implemented = true};
        struct lake_store *s;
        pthread_t th;

        (void)state;
        s = lc_store(&srv, &th);
        assert_int_equal(lake_lifecycle_install(s, NULL, &r, 1, NULL), -EOPNOTSUPP);
        assert_non_null(strstr(lake_store_error(s), "501 NotImplemented"));
        pthread_join(th, NULL);
        close(srv.fd);
        lake_store_close(s);
        assert_int_equal(srv.count, 1);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_rgw),
                cmocka_unit_test(test_parse_other_forms),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_check),
                cmocka_unit_test(test_xml_round_trip),
                cmocka_unit_test(test_alloc_failures),
                cmocka_unit_test(test_file_store),
                cmocka_unit_test(test_install_requests),
                cmocka_unit_test(test_install_not_implemented),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
