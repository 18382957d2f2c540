/* SPDX-License-Identifier: Apache-2.0 */
/* floe-enrolld's configuration (certs/enroll-settings.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "enroll-settings.h"

/* The settings borrow from the configuration: the caller frees *cfg. */
static int load_cfg(const char *text, struct floe_config **cfg, struct enroll_settings *s,
                    struct floe_config_error *err)
{
        int r;

        *cfg = NULL;
        r = floe_config_load_string("enrolld.conf", text, strlen(text), cfg, err);
        if (r == 0)
                r = enroll_settings_load(*cfg, s, err);
        return r;
}

static int load(const char *text, struct enroll_settings *s, struct floe_config_error *err)
{
        struct floe_config *cfg = NULL;
        int r = load_cfg(text, &cfg, s, err);

        floe_config_free(cfg);
        return r;
}

static void test_defaults(void **state)
{
        struct floe_config_error err = {0};
        struct enroll_settings s;

        (void)state;
        assert_int_equal(enroll_settings_load(NULL, &s, &err), 0);
        assert_string_equal(s.ca_dir, ENROLL_CA_DIR_DEFAULT);
        assert_null(s.ca_config);
        assert_string_equal(s.host, "localhost");
        assert_int_equal(s.port, 8885);
        assert_string_equal(s.ca_file, "/var/lib/floe-ca/root/ca.pem");
        assert_string_equal(s.cert_file, "/var/lib/floe-ca/issued/floe-enrolld.chain.pem");
        assert_string_equal(s.key_file, "/var/lib/floe-ca/issued/floe-enrolld.key");
        assert_null(s.client_id);
        assert_string_equal(s.share_group, "floe-enrolld");
        assert_int_equal(s.keepalive_us, 30000000);
        assert_int_equal(s.response_expiry_us, 300000000);
        assert_int_equal(s.policy.validity_s, 0);
        assert_int_equal(s.policy.rate_window_s, 3600);
        assert_int_equal(s.policy.claim_rate_limit, 20);
        assert_int_equal(s.policy.renew_rate_limit, 10);
        assert_int_equal(s.policy.renew_replay_s, 600);
        assert_int_equal(s.policy.rsa_min_bits, 3072);
        assert_int_equal(s.policy.max_payload, 16384);
}

static void test_values(void **state)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct enroll_settings s;

        (void)state;
        assert_int_equal(load_cfg("[enrolld]\nca_dir = /srv/ca\nvalidity = 30d\n"
                                  "[broker]\nhost = broker.example.com\nport = 18885\n"
                                  "key_file = /etc/floe/enrolld.key\nclient_id = enrolld-1\n"
                                  "share_group = enroll\nbackoff_min = 10ms\nbackoff_max = 2s\n"
                                  "[limits]\nmax_payload = 8KiB\nrate_window = 10min\n"
                                  "claim_rate = 5\nrenew_rate = 2\nrenew_replay = 0\n"
                                  "rsa_min_bits = 2048\n",
                                  &cfg, &s, &err),
                         0);
        assert_string_equal(s.ca_dir, "/srv/ca");
        assert_string_equal(s.ca_file, "/srv/ca/root/ca.pem");
        assert_string_equal(s.key_file, "/etc/floe/enrolld.key");
        assert_string_equal(s.client_id, "enrolld-1");
        assert_string_equal(s.share_group, "enroll");
        assert_int_equal(s.port, 18885);
        assert_int_equal(s.backoff_min_us, 10000);
        assert_int_equal(s.policy.validity_s, 30 * 86400);
        assert_int_equal(s.policy.max_payload, 8192);
        assert_int_equal(s.policy.rate_window_s, 600);
        assert_int_equal(s.policy.claim_rate_limit, 5);
        assert_int_equal(s.policy.renew_rate_limit, 2);
        assert_int_equal(s.policy.renew_replay_s, 0);
        assert_int_equal(s.policy.rsa_min_bits, 2048);
        floe_config_free(cfg);
}

static void refuse(const char *text, unsigned line, const char *what)
{
        struct floe_config_error err = {0};
        struct enroll_settings s;
        char msg[600];

        if (load(text, &s, &err) == 0)
                fail_msg("accepted: %s", text);
        floe_config_error_format(&err, msg, sizeof(msg));
        if (err.line != line || !strstr(msg, what))
                fail_msg("%s: got \"%s\", wanted line %u and \"%s\"", text, msg, line, what);
}

static void test_errors(void **state)
{
        (void)state;
        refuse("[enrolld]\nbogus = 1\n", 2, "bogus");
        refuse("[broker]\nport = 0\n", 2, "port");
        refuse("[broker]\nshare_group = a/b\n", 2, "share_group");
        refuse("[broker]\nclient_id = a+b\n", 2, "client_id");
        refuse("[broker]\nbackoff_min = 5s\nbackoff_max = 1s\n", 2, "backoff_max");
        refuse("[limits]\nrate_window = 1500ms\n", 2, "whole seconds");
        refuse("[limits]\nrsa_min_bits = 1024\n", 2, "rsa_min_bits");
        refuse("[limits]\nmax_payload = 1MiB\n", 2, "max_payload");
        refuse("[limits]\nclaim_rate = many\n", 2, "claim_rate");
        refuse("[enrolld]\nvalidity = 1s\n", 2, "validity");
        refuse("[enrolld]\nca_dir =\n", 2, "ca_dir");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_errors),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
