/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
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

#include "floe-alloc.h"
#include "floe-config.h"

static const char *fmt_err(const struct floe_config_error *err)
{
        static char buf[600];

        return floe_config_error_format(err, buf, sizeof(buf));
}

static int load(const char *text, struct floe_config **ret, struct floe_config_error *err)
{
        return floe_config_load_string("t.conf", text, strlen(text), ret, err);
}

static struct floe_config *load_ok(const char *text)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        int r = load(text, &cfg, &err);

        if (r < 0)
                fail_msg("unexpected error %d: %s", r, fmt_err(&err));
        return cfg;
}

/* Loads len bytes of text, expects error r and "t.conf:..." message. */
static void expect_load_error_len(const char *text, size_t len, int r, const char *msg)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;

        assert_int_equal(floe_config_load_string("t.conf", text, len, &cfg, &err), r);
        assert_null(cfg);
        assert_string_equal(fmt_err(&err), msg);
}

static void expect_load_error(const char *text, int r, const char *msg)
{
        expect_load_error_len(text, strlen(text), r, msg);
}

static const char *get(const struct floe_config *cfg, const char *s, const char *k)
{
        const char *v = NULL;

        assert_int_equal(floe_config_get_string(cfg, s, k, NULL, &v), 0);
        return v;
}

/* Temporary directory, removed after each test that creates one. */
static char tmpdir[64];

static void tmp_create(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/floe-test-config-XXXXXX");
        assert_non_null(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)ftw;
        return flag == FTW_DP ? rmdir(path) : unlink(path);
}

static void tmp_remove(void)
{
        assert_int_equal(nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

static const char *tmp_path(const char *name)
{
        static char buf[4][PATH_MAX];
        static unsigned n;
        char *p = buf[n++ % 4];

        snprintf(p, PATH_MAX, "%s/%s", tmpdir, name);
        return p;
}

static void tmp_write_len(const char *name, const char *text, size_t len)
{
        int fd = open(tmp_path(name), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, len), (ssize_t)len);
        assert_int_equal(close(fd), 0);
}

static void tmp_write(const char *name, const char *text)
{
        tmp_write_len(name, text, strlen(text));
}

static void tmp_mkdir(const char *name)
{
        assert_int_equal(mkdir(tmp_path(name), 0755), 0);
}

static const char agent_conf[] = "# floe agent\n"
                                 "[agent]\n"
                                 "name = gw-17\n"
                                 "spool = /var/lib/floe/spool\n"
                                 "\n"
                                 "[uplink]\n"
                                 "url = https://lake.example.com/ingest\n"
                                 "keepalive = 15m\n"
                                 "batch_max = 64MiB\n"
                                 "compress = zstd\n"
                                 "\n"
                                 "[source.local]\n"
                                 "interval = 500ms\n"
                                 "enabled = yes\n";

static void test_parse_valid(void **state)
{
        struct floe_config *cfg = load_ok(agent_conf);
        const char *file = NULL;
        unsigned line = 0;

        (void)state;
        assert_string_equal(get(cfg, "agent", "name"), "gw-17");
        assert_string_equal(get(cfg, "uplink", "url"), "https://lake.example.com/ingest");
        assert_string_equal(get(cfg, "source.local", "enabled"), "yes");
        assert_null(get(cfg, "uplink", "name"));
        assert_null(get(cfg, "nosuch", "name"));
        assert_int_equal(floe_config_locate(cfg, "uplink", "keepalive", &file, &line), 0);
        assert_string_equal(file, "t.conf");
        assert_int_equal(line, 8);
        assert_int_equal(floe_config_locate(cfg, "uplink", "nosuch", &file, &line), -ENOENT);
        assert_null(floe_config_free(cfg));
        assert_null(floe_config_free(NULL));
}

static void test_empty_file(void **state)
{
        struct floe_config *cfg = load_ok("");
        const char *v = "x";

        (void)state;
        assert_int_equal(floe_config_get_string(cfg, "a", "b", "def", &v), 0);
        assert_string_equal(v, "def");
        floe_config_free(cfg);
        cfg = load_ok("\xef\xbb\xbf");
        floe_config_free(cfg);
        cfg = load_ok("\n\n# only comments\n; and more\n   \t\n");
        floe_config_free(cfg);
}

static void test_comments_blank_crlf_bom(void **state)
{
        struct floe_config *cfg = load_ok("\xef\xbb\xbf# comment\r\n"
                                          "; also a comment\r\n"
                                          "\r\n"
                                          "  [a]  \r\n"
                                          "\tk \t=  v  w \t\r\n"
                                          "   # indented comment\r\n"
                                          "url = http://h/p#frag\r\n"
                                          "semi = x ; not a comment\r\n"
                                          "eq = a=b\r\n"
                                          "empty =\r\n"
                                          "last=1");
        const char *file;
        unsigned line;

        (void)state;
        assert_string_equal(get(cfg, "a", "k"), "v  w");
        assert_string_equal(get(cfg, "a", "url"), "http://h/p#frag");
        assert_string_equal(get(cfg, "a", "semi"), "x ; not a comment");
        assert_string_equal(get(cfg, "a", "eq"), "a=b");
        assert_string_equal(get(cfg, "a", "empty"), "");
        assert_string_equal(get(cfg, "a", "last"), "1");
        assert_int_equal(floe_config_locate(cfg, "a", "last", &file, &line), 0);
        assert_int_equal(line, 11);
        floe_config_free(cfg);

        /* A BOM is only skipped at the start of the file. */
        expect_load_error("[a]\n\xef\xbb\xbf"
                          "k = v\n",
                          -EINVAL,
                          "t.conf:2: invalid key \"\xef\xbb\xbfk\", allowed: A-Z a-z 0-9 _ . -");
}

static void test_quoted_values(void **state)
{
        struct floe_config *cfg = load_ok("[q]\n"
                                          "a = \"  spaced  \"\n"
                                          "b = \"q\\\"uote \\\\back \\nnl \\ttab\"\n"
                                          "c = \"\"\n"
                                          "d = say \"hi\"\n"
                                          "e = \"# not a comment ; either\"\n"
                                          "f = \"caf\xc3\xa9\"\n");

        (void)state;
        assert_string_equal(get(cfg, "q", "a"), "  spaced  ");
        assert_string_equal(get(cfg, "q", "b"), "q\"uote \\back \nnl \ttab");
        assert_string_equal(get(cfg, "q", "c"), "");
        assert_string_equal(get(cfg, "q", "d"), "say \"hi\"");
        assert_string_equal(get(cfg, "q", "e"), "# not a comment ; either");
        assert_string_equal(get(cfg, "q", "f"), "caf\xc3\xa9");
        floe_config_free(cfg);
}

struct error_case {
        const char *text;
        int r;
        const char *msg;
};

static void test_syntax_errors(void **state)
{
        static const struct error_case cases[] = {
                {"k = v\n", -EINVAL, "t.conf:1: key \"k\" before any [section] header"},
                {"# c\n\nk = v\n[a]\n", -EINVAL, "t.conf:3: key \"k\" before any [section] header"},
                {"[a]\nnovalue\n", -EINVAL,
                 "t.conf:2: expected \"key = value\", a [section] header or a comment"},
                {"[a]\n  = v\n", -EINVAL, "t.conf:2: missing key before \"=\""},
                {"[a]\nbad key = v\n", -EINVAL,
                 "t.conf:2: invalid key \"bad key\", allowed: A-Z a-z 0-9 _ . -"},
                {"[a]\nk\xc3\xa9 = v\n", -EINVAL,
                 "t.conf:2: invalid key \"k\xc3\xa9\", allowed: A-Z a-z 0-9 _ . -"},
                {"[a b]\n", -EINVAL,
                 "t.conf:1: invalid section name \"a b\", allowed: A-Z a-z 0-9 _ . -"},
                {"[]\n", -EINVAL,
                 "t.conf:1: invalid section name \"\", allowed: A-Z a-z 0-9 _ . -"},
                {"[ a ]\n", -EINVAL,
                 "t.conf:1: invalid section name \" a \", allowed: A-Z a-z 0-9 _ . -"},
                {"[a\n", -EINVAL, "t.conf:1: expected \"]\" at the end of the section header"},
                {"[\n", -EINVAL, "t.conf:1: expected \"]\" at the end of the section header"},
                {"[a] # c\n", -EINVAL, "t.conf:1: expected \"]\" at the end of the section header"},
                {"[a]\nk = \"x\n", -EINVAL, "t.conf:2: missing closing quote"},
                {"[a]\nk = \"\n", -EINVAL, "t.conf:2: missing closing quote"},
                {"[a]\nk = \"x\\\"\n", -EINVAL, "t.conf:2: missing closing quote"},
                {"[a]\nk = \"x\\\n", -EINVAL, "t.conf:2: missing closing quote"},
                {"[a]\nk = \"x\" y\n", -EINVAL,
                 "t.conf:2: unexpected text after the closing quote"},
                {"[a]\nk = \"x\" # c\n", -EINVAL,
                 "t.conf:2: unexpected text after the closing quote"},
                {"[a]\nk = \"\\q\"\n", -EINVAL,
                 "t.conf:2: invalid escape \"\\q\", allowed: \\\" \\\\ \\n \\t"},
                {"[a]\nk = \"\\\xc3\xa9\"\n", -EINVAL,
                 "t.conf:2: invalid escape, allowed: \\\" \\\\ \\n \\t"},
                {"[a]\n\x01\n", -EINVAL, "t.conf:2: control character 0x01 at column 1"},
                {"[a]\nk = v\rw\n", -EINVAL, "t.conf:2: control character 0x0d at column 6"},
                {"[a]\nk = v\r\r\n", -EINVAL, "t.conf:2: control character 0x0d at column 6"},
                {"[a]\nk = \x7f\n", -EINVAL, "t.conf:2: control character 0x7f at column 5"},
                {"[a]\n\n\n[b c]", -EINVAL,
                 "t.conf:4: invalid section name \"b c\", allowed: A-Z a-z 0-9 _ . -"},
                {"[a]\r\nk=1\r\nx\r\n", -EINVAL,
                 "t.conf:3: expected \"key = value\", a [section] header or a comment"},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct floe_config_error err = {0};
                struct floe_config *cfg = NULL;
                int r = load(cases[i].text, &cfg, &err);

                if (r != cases[i].r || strcmp(fmt_err(&err), cases[i].msg) != 0)
                        fail_msg("case %zu: got %d \"%s\", want %d \"%s\"", i, r, fmt_err(&err),
                                 cases[i].r, cases[i].msg);
                assert_null(cfg);
        }
}

static void test_duplicate_key(void **state)
{
        struct floe_config *cfg;

        (void)state;
        expect_load_error("[a]\nk = 1\n[b]\nk = 2\n[a]\nk = 3\n", -EEXIST,
                          "t.conf:6: duplicate key [a] k, first set at t.conf:2");
        expect_load_error("[a]\nk=1\nk=1\n", -EEXIST,
                          "t.conf:3: duplicate key [a] k, first set at t.conf:2");
        /* Same key in other sections, keys differing in case: fine. */
        cfg = load_ok("[a]\nk = 1\n[b]\nk = 2\n[a]\nK = 3\n");
        assert_string_equal(get(cfg, "a", "k"), "1");
        assert_string_equal(get(cfg, "a", "K"), "3");
        assert_string_equal(get(cfg, "b", "k"), "2");
        floe_config_free(cfg);
}

struct collected {
        char text[512];
};

static int collect_key(const char *section, const char *key, const char *value, void *userdata)
{
        struct collected *c = userdata;
        size_t n = strlen(c->text);

        snprintf(c->text + n, sizeof(c->text) - n, "[%s]%s=%s;", section, key, value);
        return 0;
}

static int collect_section(const char *section, void *userdata)
{
        struct collected *c = userdata;
        size_t n = strlen(c->text);

        snprintf(c->text + n, sizeof(c->text) - n, "%s;", section);
        return 0;
}

static void test_dropins(void **state)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct collected c = {{0}};
        const char *file;
        unsigned line;
        char dir[PATH_MAX];

        (void)state;
        tmp_create();
        tmp_write("main.conf", "[uplink]\nkeepalive = 15m\nurl = https://a\nretries = 3\n");
        tmp_mkdir("conf.d");
        tmp_write("conf.d/20-b.conf", "# b\n[uplink]\n\nkeepalive = 30s\n");
        tmp_write("conf.d/10-a.conf", "[uplink]\nkeepalive = 1m\nurl = https://b\n[extra]\n");
        tmp_write("conf.d/.hidden.conf", "[uplink]\nhidden = 1\n");
        tmp_write("conf.d/x.txt", "[uplink]\ntxt = 1\n");
        tmp_write("conf.d/30-c.conf.bak", "[uplink]\nbak = 1\n");
        tmp_write("conf.d/99-z.conf~", "[uplink]\nbackup = 1\n");
        tmp_write("conf.d/.conf", "garbage\n");
        assert_int_equal(symlink("/dev/null", tmp_path("conf.d/15-masked.conf")), 0);
        snprintf(dir, sizeof(dir), "%s", tmp_path("conf.d"));

        assert_int_equal(floe_config_load(tmp_path("main.conf"), dir, &cfg, &err), 0);
        assert_string_equal(get(cfg, "uplink", "keepalive"), "30s");
        assert_string_equal(get(cfg, "uplink", "url"), "https://b");
        assert_string_equal(get(cfg, "uplink", "retries"), "3");
        assert_null(get(cfg, "uplink", "hidden"));
        assert_null(get(cfg, "uplink", "txt"));
        assert_null(get(cfg, "uplink", "bak"));
        assert_null(get(cfg, "uplink", "backup"));
        assert_int_equal(floe_config_locate(cfg, "uplink", "keepalive", &file, &line), 0);
        assert_string_equal(file, tmp_path("conf.d/20-b.conf"));
        assert_int_equal(line, 4);
        assert_int_equal(floe_config_locate(cfg, "uplink", "url", &file, &line), 0);
        assert_string_equal(file, tmp_path("conf.d/10-a.conf"));
        assert_int_equal(line, 3);
        assert_int_equal(floe_config_locate(cfg, "uplink", "retries", &file, &line), 0);
        assert_string_equal(file, tmp_path("main.conf"));
        assert_int_equal(line, 4);

        /* Winning assignments only, in reading order. */
        assert_int_equal(floe_config_foreach_key(cfg, "uplink", collect_key, &c), 0);
        assert_string_equal(c.text, "[uplink]retries=3;[uplink]url=https://b;"
                                    "[uplink]keepalive=30s;");
        memset(&c, 0, sizeof(c));
        assert_int_equal(floe_config_foreach_section(cfg, NULL, collect_section, &c), 0);
        assert_string_equal(c.text, "uplink;extra;");
        floe_config_free(cfg);

        /* A trailing slash does not double up in reported names. */
        snprintf(dir, sizeof(dir), "%s/", tmp_path("conf.d"));
        assert_int_equal(floe_config_load(tmp_path("main.conf"), dir, &cfg, &err), 0);
        assert_int_equal(floe_config_locate(cfg, "uplink", "keepalive", &file, &line), 0);
        assert_string_equal(file, tmp_path("conf.d/20-b.conf"));
        floe_config_free(cfg);

        /* Without a drop-in directory only the main file counts. */
        assert_int_equal(floe_config_load(tmp_path("main.conf"), NULL, &cfg, &err), 0);
        assert_string_equal(get(cfg, "uplink", "keepalive"), "15m");
        floe_config_free(cfg);
        tmp_remove();
}

static void test_dropin_errors(void **state)
{
        struct floe_config_limits limits = floe_config_limits_default();
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct collected c = {{0}};
        char want[PATH_MAX + 100];
        const char *file;
        unsigned line;

        (void)state;
        tmp_create();
        tmp_write("main.conf", "[s]\nk = main\n");
        tmp_mkdir("d");
        tmp_write("d/10-a.conf", "[s]\nk = a\n[new]\nx = 1\n");
        tmp_write("d/20-b.conf", "[s]\n\nk = b\nk = again\n");

        assert_int_equal(floe_config_load(tmp_path("main.conf"), tmp_path("d"), &cfg, &err),
                         -EEXIST);
        assert_null(cfg);
        snprintf(want, sizeof(want), "%s:4: duplicate key [s] k, first set at %s:3",
                 tmp_path("d/20-b.conf"), tmp_path("d/20-b.conf"));
        assert_string_equal(fmt_err(&err), want);

        /* A failed add_dropins() leaves the config as it was. */
        assert_int_equal(floe_config_new(NULL, &cfg), 0);
        assert_int_equal(floe_config_add_file(cfg, tmp_path("main.conf"), &err), 0);
        assert_int_equal(floe_config_add_dropins(cfg, tmp_path("d"), &err), -EEXIST);
        assert_string_equal(get(cfg, "s", "k"), "main");
        assert_null(get(cfg, "new", "x"));
        assert_int_equal(floe_config_locate(cfg, "s", "k", &file, &line), 0);
        assert_string_equal(file, tmp_path("main.conf"));
        assert_int_equal(floe_config_foreach_key(cfg, "s", collect_key, &c), 0);
        assert_string_equal(c.text, "[s]k=main;");
        assert_int_equal(floe_config_foreach_section(cfg, NULL, collect_section, &c), 0);
        assert_string_equal(c.text, "[s]k=main;s;");
        floe_config_free(cfg);

        /* Too many drop-ins. */
        tmp_write("d/20-b.conf", "[s]\nk = b\n");
        tmp_write("d/30-c.conf", "");
        limits.max_dropins = 2;
        assert_int_equal(floe_config_new(&limits, &cfg), 0);
        assert_int_equal(floe_config_add_dropins(cfg, tmp_path("d"), &err), -E2BIG);
        snprintf(want, sizeof(want), "%s: too many drop-in files (more than 2)", tmp_path("d"));
        assert_string_equal(fmt_err(&err), want);
        limits.max_dropins = 3;
        floe_config_free(cfg);
        assert_int_equal(floe_config_new(&limits, &cfg), 0);
        assert_int_equal(floe_config_add_dropins(cfg, tmp_path("d"), &err), 0);
        assert_string_equal(get(cfg, "s", "k"), "b");
        floe_config_free(cfg);

        /* A drop-in directory that is a file, a *.conf that is a directory. */
        assert_int_equal(floe_config_load(tmp_path("main.conf"), tmp_path("main.conf"), &cfg, &err),
                         -ENOTDIR);
        snprintf(want, sizeof(want), "%s: cannot open drop-in directory: Not a directory",
                 tmp_path("main.conf"));
        assert_string_equal(fmt_err(&err), want);
        tmp_mkdir("d/40-dir.conf");
        assert_int_equal(floe_config_load(tmp_path("main.conf"), tmp_path("d"), &cfg, &err),
                         -EISDIR);
        snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmp_path("d/40-dir.conf"));
        assert_string_equal(fmt_err(&err), want);
        tmp_remove();
}

static void test_missing_files(void **state)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        char want[PATH_MAX + 100];

        (void)state;
        tmp_create();
        tmp_write("main.conf", "[s]\nk = v\n");
        assert_int_equal(floe_config_load(tmp_path("main.conf"), tmp_path("nope.d"), &cfg, &err),
                         0);
        assert_string_equal(get(cfg, "s", "k"), "v");
        floe_config_free(cfg);
        cfg = NULL;

        assert_int_equal(floe_config_load(tmp_path("nope.conf"), tmp_path("nope.d"), &cfg, &err),
                         -ENOENT);
        assert_null(cfg);
        assert_string_equal(err.file, tmp_path("nope.conf"));
        assert_int_equal(err.line, 0);
        snprintf(want, sizeof(want), "%s: cannot read: No such file or directory",
                 tmp_path("nope.conf"));
        assert_string_equal(fmt_err(&err), want);

        assert_int_equal(floe_config_load(tmpdir, NULL, &cfg, &err), -EISDIR);
        tmp_remove();
}

static void test_line_too_long(void **state)
{
        static char text[4200];
        struct floe_config *cfg;
        size_t n;

        (void)state;
        /* A line of exactly 4096 bytes, then one with CRLF, are fine. */
        n = (size_t)snprintf(text, sizeof(text), "[a]\nk = ");
        memset(text + n, 'x', 4096 - 4);
        n += 4096 - 4;
        memcpy(text + n, "\r\n[b]\n", 7);
        cfg = load_ok(text);
        assert_int_equal(strlen(get(cfg, "a", "k")), 4096 - 4);
        floe_config_free(cfg);

        text[n - 1] = 'y';
        text[n] = 'z';
        text[n + 1] = '\n';
        expect_load_error(text, -E2BIG, "t.conf:2: line too long (more than 4096 bytes)");
        /* No newline at the end: same. */
        text[n + 1] = '\0';
        expect_load_error(text, -E2BIG, "t.conf:2: line too long (more than 4096 bytes)");
        /* Comments count too. */
        memset(text, '#', 4098);
        text[4097] = '\0';
        expect_load_error(text, -E2BIG, "t.conf:1: line too long (more than 4096 bytes)");
        text[4096] = '\0';
        floe_config_free(load_ok(text));
}

static void test_file_too_large(void **state)
{
        const size_t max = 1024 * 1024;
        struct floe_config_limits limits = floe_config_limits_default();
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        char *text = floe_malloc(max + 2);
        char want[PATH_MAX + 100];

        (void)state;
        assert_non_null(text);
        memset(text, '\n', max + 1);
        memcpy(text, "[a]\nk = 1\n", 10);
        text[max + 1] = '\0';
        expect_load_error(text, -EFBIG, "t.conf: file too large (more than 1048576 bytes)");
        text[max] = '\0';
        floe_config_free(load_ok(text));

        /* From disk, where the size is found by reading. */
        tmp_create();
        tmp_write_len("big.conf", text, max + 1);
        assert_int_equal(floe_config_load(tmp_path("big.conf"), NULL, &cfg, &err), -EFBIG);
        snprintf(want, sizeof(want), "%s: file too large (more than 1048576 bytes)",
                 tmp_path("big.conf"));
        assert_string_equal(fmt_err(&err), want);
        tmp_write_len("big.conf", text, max);
        assert_int_equal(floe_config_load(tmp_path("big.conf"), NULL, &cfg, &err), 0);
        assert_string_equal(get(cfg, "a", "k"), "1");
        floe_config_free(cfg);

        limits.max_file = 10;
        assert_int_equal(floe_config_new(&limits, &cfg), 0);
        tmp_write("small.conf", "[a]\nk = 1\n");
        assert_int_equal(floe_config_add_file(cfg, tmp_path("small.conf"), &err), 0);
        tmp_write("small.conf", "[a]\nk = 12\n");
        assert_int_equal(floe_config_add_file(cfg, tmp_path("small.conf"), &err), -EFBIG);
        assert_string_equal(get(cfg, "a", "k"), "1");
        floe_config_free(cfg);
        /* A pipe-like file that reports size 0 is still bounded. */
        assert_int_equal(floe_config_new(&limits, &cfg), 0);
        assert_int_equal(floe_config_add_file(cfg, "/proc/self/status", &err), -EFBIG);
        floe_config_free(cfg);
        tmp_remove();
        floe_free(text);
}

static void test_nul_byte(void **state)
{
        static const char text[] = "[a]\nk = v\0w\n";

        (void)state;
        expect_load_error_len(text, sizeof(text) - 1, -EINVAL, "t.conf:2: NUL byte at column 6");
        expect_load_error_len("\0", 1, -EINVAL, "t.conf:1: NUL byte at column 1");
        /* A sequence cut by the end of the input is invalid, whatever follows in memory. */
        expect_load_error_len("[a]\nk = \xe2\x82\xac", 10, -EINVAL,
                              "t.conf:2: invalid UTF-8 at column 5");
}

static void test_invalid_utf8(void **state)
{
        static const struct error_case cases[] = {
                {"[a]\nk = \xc3\x28\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xc0\xaf\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xe0\x80\xaf\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xed\xa0\x80\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xf4\x90\x80\x80\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xf8\x88\x80\x80\x80\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = ab\x80\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 7"},
                {"[a]\nk = \xe2\x82", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"[a]\nk = \xe2\x82\n", -EINVAL, "t.conf:2: invalid UTF-8 at column 5"},
                {"# \xff\n", -EINVAL, "t.conf:1: invalid UTF-8 at column 3"},
                {"\xef\xbb\n", -EINVAL, "t.conf:1: invalid UTF-8 at column 1"},
        };
        struct floe_config *cfg;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                expect_load_error(cases[i].text, cases[i].r, cases[i].msg);
        cfg = load_ok("[a]\nk = caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf\n");
        assert_string_equal(get(cfg, "a", "k"),
                            "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
        floe_config_free(cfg);
}

/* Sets [t] v = value in a fresh config at line 2. */
static struct floe_config *one_value(const char *value)
{
        char text[256];

        snprintf(text, sizeof(text), "[t]\nv = \"%s\"\n", value);
        return load_ok(text);
}

static void test_get_bool(void **state)
{
        static const char *const yes[] = {"1", "yes", "YES", "true", "True", "on", "oN"};
        static const char *const no[] = {"0", "no", "No", "false", "FALSE", "off", "Off"};
        static const char *const bad[] = {"", "2", "y", "n", "yes ", "truee", "enable", "-1"};
        struct floe_config_error err = {0};
        struct floe_config *cfg;
        bool b;

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                cfg = one_value(yes[i]);
                b = false;
                assert_int_equal(floe_config_get_bool(cfg, "t", "v", false, &b, &err), 0);
                assert_true(b);
                floe_config_free(cfg);
                cfg = one_value(no[i]);
                b = true;
                assert_int_equal(floe_config_get_bool(cfg, "t", "v", true, &b, &err), 0);
                assert_false(b);
                floe_config_free(cfg);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                cfg = one_value(bad[i]);
                b = true;
                assert_int_equal(floe_config_get_bool(cfg, "t", "v", false, &b, &err), -EINVAL);
                assert_true(b); /* untouched */
                floe_config_free(cfg);
        }
        assert_string_equal(fmt_err(&err), "t.conf:2: [t] v: expected a boolean (yes/no, "
                                           "true/false, on/off, 1/0), got \"-1\"");
        cfg = one_value("on");
        assert_int_equal(floe_config_get_bool(cfg, "t", "missing", true, &b, &err), 0);
        assert_true(b);
        assert_int_equal(floe_config_get_bool(NULL, "t", "v", false, &b, NULL), 0);
        assert_false(b);
        floe_config_free(cfg);
}

static void check_int64(const char *value, int64_t min, int64_t max, int r, int64_t want,
                        const char *msg)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = one_value(value);
        int64_t v = 42;

        assert_int_equal(floe_config_get_int64(cfg, "t", "v", 0, min, max, &v, &err), r);
        if (r == 0) {
                assert_true(v == want);
        } else {
                assert_true(v == 42);
                assert_string_equal(fmt_err(&err), msg);
        }
        floe_config_free(cfg);
}

static void test_get_int64(void **state)
{
        (void)state;
        check_int64("0", INT64_MIN, INT64_MAX, 0, 0, NULL);
        check_int64("-0", INT64_MIN, INT64_MAX, 0, 0, NULL);
        check_int64("+17", INT64_MIN, INT64_MAX, 0, 17, NULL);
        check_int64("007", INT64_MIN, INT64_MAX, 0, 7, NULL);
        check_int64("9223372036854775807", INT64_MIN, INT64_MAX, 0, INT64_MAX, NULL);
        check_int64("-9223372036854775808", INT64_MIN, INT64_MAX, 0, INT64_MIN, NULL);
        check_int64("9223372036854775808", INT64_MIN, INT64_MAX, -ERANGE, 0,
                    "t.conf:2: [t] v: \"9223372036854775808\" out of range "
                    "-9223372036854775808..9223372036854775807");
        check_int64("-9223372036854775809", INT64_MIN, INT64_MAX, -ERANGE, 0,
                    "t.conf:2: [t] v: \"-9223372036854775809\" out of range "
                    "-9223372036854775808..9223372036854775807");
        check_int64("99999999999999999999999", INT64_MIN, INT64_MAX, -ERANGE, 0,
                    "t.conf:2: [t] v: \"99999999999999999999999\" out of range "
                    "-9223372036854775808..9223372036854775807");
        check_int64("12abc", 0, 100, -EINVAL, 0,
                    "t.conf:2: [t] v: expected an integer, got \"12abc\"");
        check_int64("99999999999999999999999x", 0, 100, -EINVAL, 0,
                    "t.conf:2: [t] v: expected an integer, got \"99999999999999999999999x\"");
        check_int64(" 1", 0, 100, -EINVAL, 0, "t.conf:2: [t] v: expected an integer, got \" 1\"");
        check_int64("", 0, 100, -EINVAL, 0, "t.conf:2: [t] v: expected an integer, got \"\"");
        check_int64("-", 0, 100, -EINVAL, 0, "t.conf:2: [t] v: expected an integer, got \"-\"");
        check_int64("0x10", 0, 100, -EINVAL, 0,
                    "t.conf:2: [t] v: expected an integer, got \"0x10\"");
        check_int64("1.0", 0, 100, -EINVAL, 0, "t.conf:2: [t] v: expected an integer, got \"1.0\"");
        check_int64("--1", -5, 5, -EINVAL, 0, "t.conf:2: [t] v: expected an integer, got \"--1\"");
        check_int64("-5", -5, 5, 0, -5, NULL);
        check_int64("5", -5, 5, 0, 5, NULL);
        check_int64("-6", -5, 5, -ERANGE, 0, "t.conf:2: [t] v: \"-6\" out of range -5..5");
        check_int64("6", -5, 5, -ERANGE, 0, "t.conf:2: [t] v: \"6\" out of range -5..5");
}

static void check_uint64(const char *value, uint64_t min, uint64_t max, int r, uint64_t want,
                         const char *msg)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = one_value(value);
        uint64_t v = 42;

        assert_int_equal(floe_config_get_uint64(cfg, "t", "v", 0, min, max, &v, &err), r);
        if (r == 0) {
                assert_true(v == want);
        } else {
                assert_true(v == 42);
                assert_string_equal(fmt_err(&err), msg);
        }
        floe_config_free(cfg);
}

static void test_get_uint64(void **state)
{
        (void)state;
        check_uint64("0", 0, UINT64_MAX, 0, 0, NULL);
        check_uint64("+3", 0, UINT64_MAX, 0, 3, NULL);
        check_uint64("18446744073709551615", 0, UINT64_MAX, 0, UINT64_MAX, NULL);
        check_uint64("18446744073709551616", 0, UINT64_MAX, -ERANGE, 0,
                     "t.conf:2: [t] v: \"18446744073709551616\" out of range "
                     "0..18446744073709551615");
        check_uint64("-1", 0, UINT64_MAX, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a non-negative integer, got \"-1\"");
        check_uint64("-0", 0, UINT64_MAX, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a non-negative integer, got \"-0\"");
        check_uint64("1e3", 0, UINT64_MAX, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a non-negative integer, got \"1e3\"");
        check_uint64("10", 10, 20, 0, 10, NULL);
        check_uint64("20", 10, 20, 0, 20, NULL);
        check_uint64("9", 10, 20, -ERANGE, 0, "t.conf:2: [t] v: \"9\" out of range 10..20");
        check_uint64("21", 10, 20, -ERANGE, 0, "t.conf:2: [t] v: \"21\" out of range 10..20");
}

static void check_double(const char *value, double min, double max, int r, double want,
                         const char *msg)
{
        struct floe_config_error err = {0};
        struct floe_config *cfg = one_value(value);
        double v = 42;

        assert_int_equal(floe_config_get_double(cfg, "t", "v", 0, min, max, &v, &err), r);
        if (r == 0) {
                assert_true(v == want);
        } else {
                assert_true(v == 42);
                assert_string_equal(fmt_err(&err), msg);
        }
        floe_config_free(cfg);
}

static void test_get_double(void **state)
{
        (void)state;
        check_double("0.25", -1e300, 1e300, 0, 0.25, NULL);
        check_double("-1e3", -1e300, 1e300, 0, -1000.0, NULL);
        check_double("+2.5E-1", -1e300, 1e300, 0, 0.25, NULL);
        check_double("7", -1e300, 1e300, 0, 7.0, NULL);
        check_double("1e999", -1e300, 1e300, -ERANGE, 0,
                     "t.conf:2: [t] v: \"1e999\" out of range -1e+300..1e+300");
        check_double("1e-999", -1e300, 1e300, -ERANGE, 0,
                     "t.conf:2: [t] v: \"1e-999\" out of range -1e+300..1e+300");
        check_double("nan", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"nan\"");
        check_double("inf", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"inf\"");
        check_double("0x1p3", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"0x1p3\"");
        check_double("1.", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"1.\"");
        check_double(".5", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \".5\"");
        check_double("1e", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"1e\"");
        check_double("0,5", -1, 1, -EINVAL, 0,
                     "t.conf:2: [t] v: expected a number like 0.25 or 1e-3, got \"0,5\"");
        check_double("1", 0, 1, 0, 1.0, NULL);
        check_double("0", 0, 1, 0, 0.0, NULL);
        check_double("1.5", 0, 1, -ERANGE, 0, "t.conf:2: [t] v: \"1.5\" out of range 0..1");
        check_double("-0.1", 0, 1, -ERANGE, 0, "t.conf:2: [t] v: \"-0.1\" out of range 0..1");
}

struct parse_case {
        const char *s;
        int r;
        uint64_t v;
};

static void test_parse_size(void **state)
{
        static const struct parse_case cases[] = {
                {"0", 0, 0},
                {"0B", 0, 0},
                {"123", 0, 123},
                {"123B", 0, 123},
                {"64MiB", 0, 64ULL << 20},
                {"1.5GiB", 0, 1610612736ULL},
                {"10kB", 0, 10000},
                {"1K", 0, 1024},
                {"1KiB", 0, 1024},
                {"2M", 0, 2ULL << 20},
                {"3G", 0, 3ULL << 30},
                {"4T", 0, 4ULL << 40},
                {"4TiB", 0, 4ULL << 40},
                {"5MB", 0, 5000000},
                {"6GB", 0, 6000000000ULL},
                {"7TB", 0, 7000000000000ULL},
                {"0.5K", 0, 512},
                {"1.0009765625KiB", 0, 1025},
                {"0.0009765625KiB", 0, 1},
                {"0.0009765624KiB", 0, 0},
                {"0.0000000000009094947017729282379150390625TiB", 0, 1},
                {"0.0000000000009094947017729282379150390624TiB", 0, 0},
                {"1.9999kB", 0, 1999},
                {"18446744073709551615", 0, UINT64_MAX},
                {"18446744073709551615B", 0, UINT64_MAX},
                {"16777215TiB", 0, UINT64_MAX - (1ULL << 40) + 1},
                {"16777215.9999999999999TiB", 0, UINT64_MAX},
                {"18446744073709551616", -ERANGE, 0},
                {"16777216TiB", -ERANGE, 0},
                {"16777216.0TiB", -ERANGE, 0},
                {"99999999999999999999999TiB", -ERANGE, 0},
                {"12 MiB", -EINVAL, 0},
                {" 12MiB", -EINVAL, 0},
                {"12MiB ", -EINVAL, 0},
                {"1KB", -EINVAL, 0},
                {"1kb", -EINVAL, 0},
                {"1mib", -EINVAL, 0},
                {"1PiB", -EINVAL, 0},
                {"1.5", -EINVAL, 0},
                {"1.5B", -EINVAL, 0},
                {".5K", -EINVAL, 0},
                {"1.K", -EINVAL, 0},
                {"-1", -EINVAL, 0},
                {"+1", -EINVAL, 0},
                {"", -EINVAL, 0},
                {"K", -EINVAL, 0},
                {"1e3", -EINVAL, 0},
                {"99999999999999999999999X", -EINVAL, 0},
                {"1.5.5K", -EINVAL, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 4242;
                int r = floe_parse_size(cases[i].s, &v);

                if (r != cases[i].r || (r == 0 && v != cases[i].v) || (r < 0 && v != 4242))
                        fail_msg("\"%s\": got %d %llu, want %d %llu", cases[i].s, r,
                                 (unsigned long long)v, cases[i].r, (unsigned long long)cases[i].v);
        }
}

static void test_get_size(void **state)
{
        struct floe_config *cfg = load_ok("[t]\na = 64MiB\nb = 2GiB\nc = 12 MiB\nd = 1023\n");
        struct floe_config_error err = {0};
        uint64_t v = 0;

        (void)state;
        assert_int_equal(floe_config_get_size(cfg, "t", "a", 0, 0, 1ULL << 30, &v, &err), 0);
        assert_true(v == 64ULL << 20);
        assert_int_equal(floe_config_get_size(cfg, "t", "b", 0, 0, 1ULL << 30, &v, &err), -ERANGE);
        assert_string_equal(fmt_err(&err), "t.conf:3: [t] b: \"2GiB\" out of range 0B..1GiB");
        assert_int_equal(floe_config_get_size(cfg, "t", "c", 0, 0, 1ULL << 30, &v, &err), -EINVAL);
        assert_string_equal(fmt_err(&err),
                            "t.conf:4: [t] c: expected a size like 64MiB or 10kB, got \"12 MiB\"");
        assert_int_equal(floe_config_get_size(cfg, "t", "d", 0, 1024, 10000, &v, &err), -ERANGE);
        assert_string_equal(fmt_err(&err), "t.conf:5: [t] d: \"1023\" out of range 1KiB..10kB");
        assert_int_equal(floe_config_get_size(cfg, "t", "d", 0, 1023, 1023, &v, &err), 0);
        assert_true(v == 1023);
        assert_int_equal(floe_config_get_size(cfg, "t", "e", 77, 1000, 2000, &v, &err), 0);
        assert_true(v == 77);
        floe_config_free(cfg);
}

static void test_parse_duration(void **state)
{
        static const struct parse_case cases[] = {
                {"0", 0, 0},
                {"0s", 0, 0},
                {"0ms", 0, 0},
                {"1us", 0, 1},
                {"500ms", 0, 500000},
                {"1s", 0, 1000000},
                {"1.5s", 0, 1500000},
                {"0.0000015s", 0, 1},
                {"15m", 0, 900000000ULL},
                {"15min", 0, 900000000ULL},
                {"1h30m", 0, 5400000000ULL},
                {"1h30min", 0, 5400000000ULL},
                {"2d", 0, 172800000000ULL},
                {"1d2h3m4s5ms6us", 0, 93784005006ULL},
                {"1s500ms", 0, 1500000},
                {"1.5h", 0, 5400000000ULL},
                {"213503982d", 0, 18446744044800000000ULL},
                {"213503982d8h1m", 0, 18446744044800000000ULL + 28860000000ULL},
                {"18446744073709551615us", 0, UINT64_MAX},
                {"18446744073709551616us", -ERANGE, 0},
                {"213503983d", -ERANGE, 0},
                {"213503982d8h2m", -ERANGE, 0},
                {"99999999999999999999999d", -ERANGE, 0},
                {"10", -EINVAL, 0},
                {"0.0", -EINVAL, 0},
                {"00", -EINVAL, 0},
                {"5 s", -EINVAL, 0},
                {"1h 30m", -EINVAL, 0},
                {"30m1h", -EINVAL, 0},
                {"1m1m", -EINVAL, 0},
                {"1m1min", -EINVAL, 0},
                {"1min1m", -EINVAL, 0},
                {"1x", -EINVAL, 0},
                {"1S", -EINVAL, 0},
                {"1sec", -EINVAL, 0},
                {"", -EINVAL, 0},
                {"s", -EINVAL, 0},
                {"-1s", -EINVAL, 0},
                {"1.s", -EINVAL, 0},
                {"1s2", -EINVAL, 0},
                {"99999999999999999999999x", -EINVAL, 0},
                {"1d99999999999999999999999h1m1m", -EINVAL, 0},
        };

        (void)state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 4242;
                int r = floe_parse_duration(cases[i].s, &v);

                if (r != cases[i].r || (r == 0 && v != cases[i].v) || (r < 0 && v != 4242))
                        fail_msg("\"%s\": got %d %llu, want %d %llu", cases[i].s, r,
                                 (unsigned long long)v, cases[i].r, (unsigned long long)cases[i].v);
        }
}

static void test_get_duration(void **state)
{
        struct floe_config *cfg = load_ok("# agent.conf\n[uplink]\n\n\n\n\n\n\n\n\n\n"
                                          "keepalive = fast\nretry = 2h\nidle = 10\n");
        struct floe_config_error err = {0};
        const uint64_t s = 1000000;
        uint64_t v = 0;

        (void)state;
        assert_int_equal(
                floe_config_get_duration(cfg, "uplink", "keepalive", 0, s, 3600 * s, &v, &err),
                -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:12: [uplink] keepalive: expected a duration "
                                           "like 500ms or 15m, got \"fast\"");
        assert_int_equal(floe_config_get_duration(cfg, "uplink", "retry", 0, s, 3600 * s, &v, &err),
                         -ERANGE);
        assert_string_equal(fmt_err(&err), "t.conf:13: [uplink] retry: \"2h\" out of range 1s..1h");
        assert_int_equal(floe_config_get_duration(cfg, "uplink", "retry", 0, s, 7200 * s, &v, &err),
                         0);
        assert_true(v == 7200 * s);
        assert_int_equal(
                floe_config_get_duration(cfg, "uplink", "idle", 0, 0, UINT64_MAX, &v, &err),
                -EINVAL);
        assert_int_equal(floe_config_get_duration(cfg, "uplink", "none", 5 * s, s, 2 * s, &v, &err),
                         0);
        assert_true(v == 5 * s);
        floe_config_free(cfg);
}

static void test_format(void **state)
{
        char buf[64];
        struct floe_config_error err = {.file = "a.conf", .line = 3, .msg = "boom"};

        (void)state;
        assert_string_equal(floe_format_size(0, buf, sizeof(buf)), "0B");
        assert_string_equal(floe_format_size(1, buf, sizeof(buf)), "1B");
        assert_string_equal(floe_format_size(1500, buf, sizeof(buf)), "1500B");
        assert_string_equal(floe_format_size(1024, buf, sizeof(buf)), "1KiB");
        assert_string_equal(floe_format_size(64ULL << 20, buf, sizeof(buf)), "64MiB");
        assert_string_equal(floe_format_size(1536ULL << 20, buf, sizeof(buf)), "1536MiB");
        assert_string_equal(floe_format_size(5000000, buf, sizeof(buf)), "5MB");
        assert_string_equal(floe_format_size(UINT64_MAX, buf, sizeof(buf)),
                            "18446744073709551615B");
        assert_string_equal(floe_format_size(1ULL << 50, buf, sizeof(buf)), "1024TiB");
        assert_string_equal(floe_format_duration(0, buf, sizeof(buf)), "0");
        assert_string_equal(floe_format_duration(5400000000ULL, buf, sizeof(buf)), "1h30m");
        assert_string_equal(floe_format_duration(500000, buf, sizeof(buf)), "500ms");
        assert_string_equal(floe_format_duration(93784005006ULL, buf, sizeof(buf)),
                            "1d2h3m4s5ms6us");
        assert_string_equal(floe_format_duration(93784005006ULL, buf, 8), "1d2h3m");
        assert_string_equal(floe_format_duration(UINT64_MAX, buf, sizeof(buf)),
                            "213503982d8h1m49s551ms615us");

        assert_string_equal(floe_config_error_format(&err, buf, sizeof(buf)), "a.conf:3: boom");
        err.line = 0;
        assert_string_equal(floe_config_error_format(&err, buf, sizeof(buf)), "a.conf: boom");
        err.file[0] = '\0';
        assert_string_equal(floe_config_error_format(&err, buf, sizeof(buf)), "boom");
        assert_string_equal(floe_config_error_format(&err, buf, 3), "bo");
}

static void test_long_names_in_errors(void **state)
{
        char path[600], text[300], want[300];
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;

        (void)state;
        /* Long paths keep their tail. */
        memset(path, 'p', sizeof(path));
        memcpy(path + sizeof(path) - 11, "/tail.conf", 11);
        assert_int_equal(floe_config_load(path, NULL, &cfg, &err), -ENAMETOOLONG);
        assert_int_equal(strlen(err.file), 255);
        assert_memory_equal(err.file, "...ppp", 6);
        assert_string_equal(err.file + 255 - 10, "/tail.conf");

        /* Long values are cut in messages, at a character boundary. */
        memset(text, 0, sizeof(text));
        memcpy(text, "[t]\nv = ", 8);
        for (size_t i = 0; i < 30; i++)
                memcpy(text + 8 + 2 * i, "\xc3\xa9", 2);
        cfg = load_ok(text);
        assert_int_equal(floe_config_get_bool(cfg, "t", "v", false, &(bool){0}, &err), -EINVAL);
        snprintf(want, sizeof(want),
                 "t.conf:2: [t] v: expected a boolean (yes/no, true/false, on/off, 1/0), got "
                 "\"%.40s...\"",
                 text + 8);
        assert_string_equal(fmt_err(&err), want);
        floe_config_free(cfg);

        cfg = one_value("a\\\"b\\\\c\\nd\\te");
        assert_int_equal(floe_config_get_bool(cfg, "t", "v", false, &(bool){0}, &err), -EINVAL);
        assert_string_equal(err.msg, "[t] v: expected a boolean (yes/no, true/false, on/off, "
                                     "1/0), got \"a\\\"b\\\\c\\nd\\te\"");
        floe_config_free(cfg);
}

static void test_get_enum(void **state)
{
        static const char *const names[] = {"none", "zstd", "gzip", NULL};
        struct floe_config *cfg = load_ok("[u]\na = zstd\nb = ZSTD\nc = gzip\n");
        struct floe_config_error err = {0};
        int v = -1;

        (void)state;
        assert_int_equal(floe_config_get_enum(cfg, "u", "a", names, 0, &v, &err), 0);
        assert_int_equal(v, 1);
        assert_int_equal(floe_config_get_enum(cfg, "u", "c", names, 0, &v, &err), 0);
        assert_int_equal(v, 2);
        assert_int_equal(floe_config_get_enum(cfg, "u", "missing", names, 0, &v, &err), 0);
        assert_int_equal(v, 0);
        v = -1;
        assert_int_equal(floe_config_get_enum(cfg, "u", "b", names, 0, &v, &err), -EINVAL);
        assert_int_equal(v, -1);
        assert_string_equal(fmt_err(&err),
                            "t.conf:3: [u] b: expected one of none, zstd, gzip; got \"ZSTD\"");
        floe_config_free(cfg);
}

static void test_get_missing_and_defaults(void **state)
{
        struct floe_config *cfg = load_ok("[s]\nk = v\n");
        const char *str = NULL;
        int64_t i64 = 0;
        uint64_t u64 = 0;
        double d = 0;

        (void)state;
        assert_int_equal(floe_config_get_string(cfg, "s", "x", "dflt", &str), 0);
        assert_string_equal(str, "dflt");
        assert_int_equal(floe_config_get_string(NULL, "s", "k", NULL, &str), 0);
        assert_null(str);
        /* Defaults are not range-checked. */
        assert_int_equal(floe_config_get_int64(cfg, "s", "x", -7, 0, 5, &i64, NULL), 0);
        assert_true(i64 == -7);
        assert_int_equal(floe_config_get_uint64(cfg, "x", "x", 9, 0, 5, &u64, NULL), 0);
        assert_true(u64 == 9);
        assert_int_equal(floe_config_get_double(cfg, "s", "x", 0.5, 0, 1, &d, NULL), 0);
        assert_true(d == 0.5);
        /* A bad value with err NULL still fails. */
        assert_int_equal(floe_config_get_int64(cfg, "s", "k", 0, 0, 5, &i64, NULL), -EINVAL);
        floe_config_free(cfg);
}

static void test_check_known(void **state)
{
        static const struct floe_config_key known[] = {
                {"agent", "name"},
                {"agent", "spool"},
                {"uplink", "url"},
                {"uplink", "keepalive"},
                {"uplink", "batch_max"},
                {"uplink", "compress"},
                {"source.local", "interval"},
                {"source.local", "enabled"},
                {NULL, NULL},
        };
        static const struct floe_config_key none[] = {{NULL, NULL}};
        struct floe_config_error err = {0};
        struct floe_config *cfg = load_ok(agent_conf);

        (void)state;
        assert_int_equal(floe_config_check_known(cfg, known, &err), 0);
        assert_int_equal(floe_config_check_known(cfg, none, &err), -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:3: unknown key [agent] name");
        floe_config_free(cfg);

        cfg = load_ok("[uplink]\nurl = x\nkepalive = 5s\n[agent]\nnmae = 1\n");
        assert_int_equal(floe_config_check_known(cfg, known, &err), -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:3: unknown key [uplink] kepalive");
        floe_config_free(cfg);

        cfg = load_ok("[uplink]\nurl = x\n[agent]\n[uplnk]\n");
        assert_int_equal(floe_config_check_known(cfg, known, &err), -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:4: unknown section [uplnk]");
        floe_config_free(cfg);

        /* A known key in an unknown section is unknown. */
        cfg = load_ok("[uplink2]\nurl = x\n");
        assert_int_equal(floe_config_check_known(cfg, known, &err), -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:2: unknown key [uplink2] url");
        floe_config_free(cfg);

        /* Only the listed sections are checked: another program's sections pass, a typo in
         * a listed one does not, and an unlisted unknown section is not ours to refuse. */
        static const char *const uplink_only[] = {"uplink", NULL};

        cfg = load_ok("[agent]\nnmae = 1\n[uplink]\nurl = x\n[other]\n");
        assert_int_equal(floe_config_check_known_in(cfg, known, uplink_only, &err), 0);
        floe_config_free(cfg);
        cfg = load_ok("[agent]\nnmae = 1\n[uplink]\nurl = x\nkepalive = 5s\n");
        assert_int_equal(floe_config_check_known_in(cfg, known, uplink_only, &err), -EINVAL);
        assert_string_equal(fmt_err(&err), "t.conf:5: unknown key [uplink] kepalive");
        floe_config_free(cfg);
        cfg = load_ok("[agent]\nnmae = 1\n");
        assert_int_equal(floe_config_check_known_in(cfg, known, NULL, &err), 0);
        floe_config_free(cfg);
}

static int stop_at_second(const char *section, void *userdata)
{
        struct collected *c = userdata;
        size_t n = strlen(c->text);

        snprintf(c->text + n, sizeof(c->text) - n, "%s;", section);
        return n > 0 ? 7 : 0;
}

static void test_iteration(void **state)
{
        struct floe_config *cfg = load_ok("[source.local]\na = 1\n[uplink]\n[source.mqtt]\nb = 2\n"
                                          "[sourcex]\n[source.local]\nc = 3\n");
        struct collected c = {{0}};

        (void)state;
        assert_int_equal(floe_config_foreach_section(cfg, "source.", collect_section, &c), 0);
        assert_string_equal(c.text, "source.local;source.mqtt;");
        memset(&c, 0, sizeof(c));
        assert_int_equal(floe_config_foreach_section(cfg, "", collect_section, &c), 0);
        assert_string_equal(c.text, "source.local;uplink;source.mqtt;sourcex;");
        memset(&c, 0, sizeof(c));
        assert_int_equal(floe_config_foreach_section(cfg, NULL, stop_at_second, &c), 7);
        assert_string_equal(c.text, "source.local;uplink;");
        memset(&c, 0, sizeof(c));
        assert_int_equal(floe_config_foreach_key(cfg, "source.local", collect_key, &c), 0);
        assert_string_equal(c.text, "[source.local]a=1;[source.local]c=3;");
        memset(&c, 0, sizeof(c));
        assert_int_equal(floe_config_foreach_key(cfg, "nosuch", collect_key, &c), 0);
        assert_int_equal(floe_config_foreach_key(cfg, "uplink", collect_key, &c), 0);
        assert_string_equal(c.text, "");
        assert_int_equal(floe_config_foreach_section(NULL, NULL, collect_section, &c), 0);
        floe_config_free(cfg);
}

static void test_key_error(void **state)
{
        struct floe_config *cfg = load_ok("[uplink]\n\nurl = http://x\n");
        struct floe_config_error err = {0};

        (void)state;
        assert_int_equal(floe_config_key_error(cfg, "uplink", "url", -EINVAL, &err,
                                               "expected an https:// URL, got %s", "http"),
                         -EINVAL);
        assert_string_equal(fmt_err(&err),
                            "t.conf:3: [uplink] url: expected an https:// URL, got http");
        assert_int_equal(floe_config_key_error(cfg, "uplink", "token", -EINVAL, &err, "required"),
                         -EINVAL);
        assert_string_equal(fmt_err(&err), "[uplink] token: required");
        floe_config_free(cfg);
}

static void test_check_file(void **state)
{
        struct floe_config *cfg = load_ok("[uplink]\ncert_file = x\n");
        struct floe_config_error err = {0};
        char dir[] = "/tmp/floe-config-XXXXXX", file[64];
        FILE *f;

        (void)state;
        assert_non_null(mkdtemp(dir));
        snprintf(file, sizeof(file), "%s/cert.pem", dir);
        f = fopen(file, "we");
        assert_non_null(f);
        fclose(f);
        assert_int_equal(floe_config_check_file(cfg, "uplink", "cert_file", file, &err), 0);
        assert_int_equal(floe_config_check_file(cfg, "uplink", "cert_file", dir, &err), -EINVAL);
        assert_non_null(strstr(fmt_err(&err), "t.conf:2: [uplink] cert_file: /tmp/floe-config-"));
        assert_non_null(strstr(fmt_err(&err), ": not a regular file"));
        assert_int_equal(unlink(file), 0);
        assert_int_equal(floe_config_check_file(cfg, "uplink", "cert_file", file, &err), -ENOENT);
        assert_non_null(strstr(fmt_err(&err), "cert.pem: No such file or directory"));
        assert_int_equal(rmdir(dir), 0);
        floe_config_free(cfg);
}

static void test_limits(void **state)
{
        struct floe_config_limits limits = floe_config_limits_default();
        struct floe_config_error err = {0};
        struct floe_config *cfg = NULL;
        struct collected c = {{0}};
        const char *text;

        (void)state;
        assert_int_equal(limits.max_line, 4096);
        assert_int_equal(limits.max_file, 1024 * 1024);
        assert_int_equal(limits.max_keys, 10000);
        assert_int_equal(limits.max_sections, 1024);
        assert_int_equal(limits.max_dropins, 256);

        limits.max_keys = 3;
        limits.max_sections = 2;
        assert_int_equal(floe_config_new(&limits, &cfg), 0);
        text = "[a]\nx = 1\ny = 2\n";
        assert_int_equal(floe_config_add_string(cfg, "1.conf", text, strlen(text), &err), 0);
        text = "[a]\nx = 3\n[b]\nz = 4\n";
        assert_int_equal(floe_config_add_string(cfg, "2.conf", text, strlen(text), &err), -E2BIG);
        assert_string_equal(fmt_err(&err), "2.conf:4: too many keys (more than 3)");
        /* The failed file left nothing behind: x is still 1 and not overridden. */
        assert_string_equal(get(cfg, "a", "x"), "1");
        assert_null(get(cfg, "b", "z"));
        assert_int_equal(floe_config_foreach_key(cfg, "a", collect_key, &c), 0);
        assert_string_equal(c.text, "[a]x=1;[a]y=2;");
        text = "[b]\n[c]\n";
        assert_int_equal(floe_config_add_string(cfg, "3.conf", text, strlen(text), &err), -E2BIG);
        assert_string_equal(fmt_err(&err), "3.conf:2: too many sections (more than 2)");
        text = "[b]\nz = 5\n";
        assert_int_equal(floe_config_add_string(cfg, "4.conf", text, strlen(text), &err), 0);
        assert_string_equal(get(cfg, "b", "z"), "5");
        floe_config_free(cfg);

        limits.max_file = SIZE_MAX;
        assert_int_equal(floe_config_new(&limits, &cfg), -EINVAL);
}

static void test_alloc_failures(void **state)
{
        struct floe_config_error err;
        unsigned ok = 0, failed = 0;
        char dir[PATH_MAX];

        (void)state;
        tmp_create();
        tmp_write("agent.conf", agent_conf);
        tmp_mkdir("agent.conf.d");
        tmp_write("agent.conf.d/10-site.conf", "[uplink]\nkeepalive = 1m\n[source.mqtt]\n"
                                               "topic = \"sensors/#\"\n");
        tmp_write("agent.conf.d/20-local.conf", "[agent]\nname = gw-99\n[labels]\nroom = 4\n");
        snprintf(dir, sizeof(dir), "%s", tmp_path("agent.conf.d"));

        for (uint64_t n = 1;; n++) {
                struct floe_config *cfg = NULL;
                int r;

                floe_alloc_fail_at(n);
                r = floe_config_load(tmp_path("agent.conf"), dir, &cfg, &err);
                if (!floe_alloc_failed()) {
                        floe_alloc_fail_at(0);
                        assert_int_equal(r, 0);
                        assert_string_equal(get(cfg, "uplink", "keepalive"), "1m");
                        assert_string_equal(get(cfg, "agent", "name"), "gw-99");
                        assert_string_equal(get(cfg, "source.mqtt", "topic"), "sensors/#");
                        floe_config_free(cfg);
                        break;
                }
                floe_alloc_fail_at(0);
                if (r == 0) {
                        ok++;
                        floe_config_free(cfg);
                } else {
                        if (r != -ENOMEM)
                                fail_msg("allocation %llu: %d %s", (unsigned long long)n, r,
                                         fmt_err(&err));
                        assert_null(cfg);
                        assert_string_equal(err.msg, "out of memory");
                        failed++;
                }
        }
        /* Every allocation of a load is on an error path. */
        assert_int_equal(ok, 0);
        assert_true(failed > 20);
        tmp_remove();
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_valid),
                cmocka_unit_test(test_empty_file),
                cmocka_unit_test(test_comments_blank_crlf_bom),
                cmocka_unit_test(test_quoted_values),
                cmocka_unit_test(test_syntax_errors),
                cmocka_unit_test(test_duplicate_key),
                cmocka_unit_test(test_dropins),
                cmocka_unit_test(test_dropin_errors),
                cmocka_unit_test(test_missing_files),
                cmocka_unit_test(test_line_too_long),
                cmocka_unit_test(test_file_too_large),
                cmocka_unit_test(test_nul_byte),
                cmocka_unit_test(test_invalid_utf8),
                cmocka_unit_test(test_get_bool),
                cmocka_unit_test(test_get_int64),
                cmocka_unit_test(test_get_uint64),
                cmocka_unit_test(test_get_double),
                cmocka_unit_test(test_parse_size),
                cmocka_unit_test(test_get_size),
                cmocka_unit_test(test_parse_duration),
                cmocka_unit_test(test_get_duration),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_long_names_in_errors),
                cmocka_unit_test(test_get_enum),
                cmocka_unit_test(test_get_missing_and_defaults),
                cmocka_unit_test(test_check_known),
                cmocka_unit_test(test_iteration),
                cmocka_unit_test(test_key_error),
                cmocka_unit_test(test_check_file),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_alloc_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
