/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#include "floe-alloc.h"
#include "floe-log.h"

#define ELLIPSIS "\xe2\x80\xa6"

/* Captured stderr of the current test. */
static int capture_fd = -1;
static int saved_stderr = -1;
static char out[64 * 1024];

/*
 * Stand-in for libsystemd's sd_journal_sendv: a definition in the executable
 * takes precedence over the shared library, so the fields floe-log hands to
 * journald can be checked without a running journald.
 */
static char journal[16 * 1024];
static size_t journal_len;
static int journal_calls;
static int journal_ret;

int sd_journal_sendv(const struct iovec *iov, int n)
{
        journal_calls++;
        for (int i = 0; i < n; i++) {
                size_t l = iov[i].iov_len;

                if (journal_len + l + 1 >= sizeof(journal))
                        return -ENOBUFS;
                memcpy(journal + journal_len, iov[i].iov_base, l);
                journal_len += l;
                journal[journal_len++] = '\x1e'; /* field separator for the tests */
        }
        journal[journal_len] = '\0';
        return journal_ret;
}

static void capture_begin(void)
{
        capture_fd = memfd_create("stderr", MFD_CLOEXEC);
        assert_true(capture_fd >= 0);
        saved_stderr = fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
        assert_true(saved_stderr >= 0);
        assert_int_equal(dup2(capture_fd, STDERR_FILENO), STDERR_FILENO);
}

static void capture_restore(void)
{
        if (saved_stderr >= 0) {
                dup2(saved_stderr, STDERR_FILENO);
                close(saved_stderr);
                saved_stderr = -1;
        }
        if (capture_fd >= 0) {
                close(capture_fd);
                capture_fd = -1;
        }
}

/* Everything written to stderr since capture_begin(), NUL-terminated in out. */
static const char *captured(void)
{
        ssize_t n;

        assert_true(capture_fd >= 0);
        n = pread(capture_fd, out, sizeof(out) - 1, 0);
        assert_true(n >= 0);
        out[n] = '\0';
        return out;
}

/* Empties the capture so the next assertion sees only new output. */
static void capture_reset(void)
{
        assert_int_equal(ftruncate(capture_fd, 0), 0);
        assert_int_equal(lseek(STDERR_FILENO, 0, SEEK_SET), 0);
}

static int setup(void **state)
{
        (void)state;
        unsetenv("FLOE_LOG_TARGET");
        unsetenv("FLOE_LOG_LEVEL");
        unsetenv("FLOE_LOG_TIME");
        unsetenv("JOURNAL_STREAM");
        floe_log_close();
        journal_len = 0;
        journal[0] = '\0';
        journal_calls = 0;
        journal_ret = 0;
        capture_begin();
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        capture_restore();
        floe_log_close();
        unsetenv("FLOE_LOG_TARGET");
        unsetenv("FLOE_LOG_LEVEL");
        unsetenv("FLOE_LOG_TIME");
        unsetenv("JOURNAL_STREAM");
        return 0;
}

static void test_prefix_per_level(void **state)
{
        (void)state;
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_STDERR);
        assert_int_equal(floe_log_get_max_level(), LOG_INFO);

        log_info("hello %d", 42);
        log_notice("n");
        log_warning("w");
        log_error("e");
        log_full(LOG_CRIT, "c");
        assert_string_equal(captured(), "<6>hello 42\n<5>n\n<4>w\n<3>e\n<2>c\n");
        assert_int_equal(journal_calls, 0);
}

static int side_effects;

static int side_effect(void)
{
        return ++side_effects;
}

static void test_max_level(void **state)
{
        (void)state;
        log_debug("hidden %d", side_effect());
        assert_string_equal(captured(), "");
        assert_int_equal(side_effects, 0); /* arguments of filtered events are not evaluated */

        assert_int_equal(floe_log_set_max_level(LOG_DEBUG), 0);
        log_debug("shown %d", side_effect());
        assert_string_equal(captured(), "<7>shown 1\n");
        capture_reset();

        assert_int_equal(floe_log_set_max_level(LOG_WARNING), 0);
        log_info("i");
        log_notice("n");
        log_warning("w");
        log_error("e");
        assert_string_equal(captured(), "<4>w\n<3>e\n");
        /* Filtered error logs still hand back the errno. */
        assert_int_equal(log_notice_errno(EIO, "x"), -EIO);

        assert_int_equal(floe_log_set_max_level(8), -EINVAL);
        assert_int_equal(floe_log_set_max_level(-1), -EINVAL);
        assert_int_equal(floe_log_get_max_level(), LOG_WARNING);
}

static void test_errno_suffix(void **state)
{
        int r;

        (void)state;
        r = log_error_errno(-ENOENT, "Failed to open %s", "/etc/floe/agent.conf");
        assert_int_equal(r, -ENOENT);
        r = log_warning_errno(EACCES, "Positive errno");
        assert_int_equal(r, -EACCES);
        r = log_error_errno(0, "No errno");
        assert_int_equal(r, 0);
        /* %m means the event's error, not whatever errno happened to be. */
        errno = EPERM;
        log_error_errno(EIO, "m=%m");
        assert_string_equal(captured(),
                            "<3>Failed to open /etc/floe/agent.conf: No such file or directory\n"
                            "<4>Positive errno: Permission denied\n"
                            "<3>No errno\n"
                            "<3>m=Input/output error: Input/output error\n");
        capture_reset();

        log_error_errno(4242, "Odd");
        assert_string_equal(captured(), "<3>Odd: Unknown error 4242\n");
        assert_int_equal(floe_log_neg_errno(INT_MIN), -ERANGE);
}

static void test_errno_preserved(void **state)
{
        (void)state;
        errno = EBUSY;
        log_info("x");
        log_error_errno(EIO, "y");
        assert_int_equal(errno, EBUSY);
}

static void test_fields_on_stderr(void **state)
{
        (void)state;
        log_struct(LOG_WARNING,
                   FLOE_LOG_FIELDS(
                           "FLOE_IDENTITY=acme.gw-1", FLOE_LOG_FIELD("FLOE_BATCH_SEQ", "%d", 12),
                           "FLOE_NOTE=two words", "FLOE_EMPTY=", "FLOE_Q=a\"b\\c", "FLOE_NL=x\ny"),
                   "Rejected batch");
        assert_string_equal(captured(),
                            "<4>Rejected batch FLOE_IDENTITY=acme.gw-1 FLOE_BATCH_SEQ=12 "
                            "FLOE_NOTE=\"two words\" FLOE_EMPTY= FLOE_Q=\"a\\\"b\\\\c\" "
                            "FLOE_NL=\"x\\ny\"\n");
        capture_reset();

        log_struct_errno(LOG_ERR, -ECONNREFUSED, FLOE_LOG_FIELDS("FLOE_BROKER=mqtt.local"),
                         "Connect failed");
        assert_string_equal(captured(),
                            "<3>Connect failed: Connection refused FLOE_BROKER=mqtt.local\n");
}

static void test_fields_invalid_dropped(void **state)
{
        (void)state;
        log_struct(LOG_INFO,
                   FLOE_LOG_FIELDS(
                           "lower=x", "_TRUSTED=x", "1ABC=x", "NOEQUALS", "=x", "MESSAGE=evil",
                           "PRIORITY=0", "ERRNO=1", "CODE_LINE=1",
                           "K2345678901234567890123456789012345678901234567890123456789012345=x",
                           "OK_1=y"),
                   "m");
        assert_string_equal(captured(), "<6>m OK_1=y\n");
}

static void test_field_truncated(void **state)
{
        char big[400];

        (void)state;
        memset(big, 'v', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        log_struct(LOG_INFO, FLOE_LOG_FIELDS(FLOE_LOG_FIELD("FLOE_BIG", "%s", big)), "m");
        /* "FLOE_BIG=" plus value fills FLOE_LOG_FIELD_MAX - 1 bytes. */
        assert_int_equal(strlen(captured()), strlen("<6>m ") + FLOE_LOG_FIELD_MAX - 1 + 1);
}

static void test_escaping(void **state)
{
        const char *o;

        (void)state;
        log_info("line1\nline2\r\tx\x01\x7f\xc3\xa9 \"q\" \\");
        o = captured();
        assert_string_equal(o, "<6>line1\\nline2\\r\\tx\\x01\\x7f\xc3\xa9 \"q\" \\\n");
        assert_ptr_equal(strchr(o, '\n'), o + strlen(o) - 1); /* one event, one line */
}

static void test_truncation(void **state)
{
        char msg[3000], expect[4000];
        size_t n;

        (void)state;
        memset(msg, 'a', sizeof(msg) - 1);
        msg[sizeof(msg) - 1] = '\0';

        /* Exactly FLOE_LOG_MESSAGE_MAX bytes fit untouched. */
        log_info("%.*s", FLOE_LOG_MESSAGE_MAX, msg);
        n = strlen(captured());
        assert_int_equal(n, 3 + FLOE_LOG_MESSAGE_MAX + 1);
        assert_null(strstr(out, ELLIPSIS));
        capture_reset();

        log_info("%s", msg);
        snprintf(expect, sizeof(expect), "<6>%.*s" ELLIPSIS "\n", FLOE_LOG_MESSAGE_MAX - 3, msg);
        assert_string_equal(captured(), expect);
        capture_reset();

        /* The errno suffix survives; the text gives way. */
        log_error_errno(EIO, "%s", msg);
        snprintf(expect, sizeof(expect), "<3>%.*s" ELLIPSIS ": Input/output error\n",
                 FLOE_LOG_MESSAGE_MAX - 3 - (int)strlen(": Input/output error"), msg);
        assert_string_equal(captured(), expect);
}

static void test_truncation_utf8(void **state)
{
        char msg[2044 + 2 * 100 + 1], expect[2100];
        size_t p = 0;

        (void)state;
        memset(msg, 'a', 2044);
        p = 2044;
        for (int i = 0; i < 100; i++) {
                msg[p++] = '\xc3';
                msg[p++] = '\xa9';
        }
        msg[p] = '\0';
        /* A cut at 2045 bytes would split the first "é": it backs off to 2044. */
        log_info("%s", msg);
        snprintf(expect, sizeof(expect), "<6>%.2044s" ELLIPSIS "\n", msg);
        assert_string_equal(captured(), expect);
}

static void test_line_bounded(void **state)
{
        char ctl[FLOE_LOG_MESSAGE_MAX + 1], value[FLOE_LOG_FIELD_MAX];
        const char *fields[FLOE_LOG_FIELDS_MAX + 1];
        const char *o;
        size_t n;

        (void)state;
        memset(ctl, '\x01', sizeof(ctl) - 1);
        ctl[sizeof(ctl) - 1] = '\0';
        snprintf(value, sizeof(value), "FLOE_V=%0*d", (int)sizeof(value) - 8, 0);
        for (size_t i = 0; i < FLOE_LOG_FIELDS_MAX; i++)
                fields[i] = value;
        fields[FLOE_LOG_FIELDS_MAX] = NULL;

        log_struct(LOG_INFO, fields, "%s", ctl);
        o = captured();
        n = strlen(o);
        assert_true(n <= 16 * 1024);
        assert_true(n > 4 * FLOE_LOG_MESSAGE_MAX);
        assert_ptr_equal(strchr(o, '\n'), o + n - 1);
        assert_memory_equal(o + n - 4, ELLIPSIS "\n", 4);
        /* The message itself is complete; only fields gave way. */
        for (size_t i = 0; i < FLOE_LOG_MESSAGE_MAX; i++)
                assert_memory_equal(o + 3 + 4 * i, "\\x01", 4);
        assert_memory_equal(o + 3 + 4 * FLOE_LOG_MESSAGE_MAX, " FLOE_V=", 8);
}

static void test_ratelimit_window(void **state)
{
        struct floe_ratelimit rl = FLOE_RATELIMIT_INIT(1000000, 3);

        (void)state;
        assert_true(floe_ratelimit_test_at(&rl, 100));
        assert_true(floe_ratelimit_test_at(&rl, 200));
        assert_true(floe_ratelimit_test_at(&rl, 300));
        assert_false(floe_ratelimit_test_at(&rl, 400));
        assert_false(floe_ratelimit_test_at(&rl, 500));
        assert_int_equal(floe_ratelimit_take_suppressed(&rl), 2);
        assert_int_equal(floe_ratelimit_take_suppressed(&rl), 0);
        /* The window runs from the first line: 100 + 1 s - 1 µs is still inside. */
        assert_false(floe_ratelimit_test_at(&rl, 100 + 999999));
        assert_true(floe_ratelimit_test_at(&rl, 100 + 1000000));
        assert_int_equal(floe_ratelimit_take_suppressed(&rl), 1);
        assert_true(floe_ratelimit_test_at(&rl, 100 + 1000001));
        assert_true(floe_ratelimit_test_at(&rl, 100 + 1000002));
        assert_false(floe_ratelimit_test_at(&rl, 100 + 1000003));
        /* A clock that goes backwards starts a new window instead of blocking forever. */
        assert_true(floe_ratelimit_test_at(&rl, 50));
}

static void test_ratelimit_unlimited(void **state)
{
        struct floe_ratelimit no_interval = FLOE_RATELIMIT_INIT(0, 1);
        struct floe_ratelimit no_burst = FLOE_RATELIMIT_INIT(1000, 0);

        (void)state;
        for (int i = 0; i < 100; i++) {
                assert_true(floe_ratelimit_test_at(&no_interval, 5));
                assert_true(floe_ratelimit_test_at(&no_burst, 5));
        }
        assert_int_equal(floe_ratelimit_take_suppressed(&no_interval), 0);
}

static void test_ratelimit_log(void **state)
{
        struct floe_ratelimit hour = FLOE_RATELIMIT_INIT(3600ULL * 1000000, 2);
        struct floe_ratelimit ms = FLOE_RATELIMIT_INIT(1000, 1);
        int r;

        (void)state;
        for (int i = 0; i < 5; i++) {
                r = log_ratelimit_errno(&hour, LOG_WARNING, EBADMSG, "Bad payload %d", i);
                assert_int_equal(r, -EBADMSG);
        }
        assert_string_equal(captured(), "<4>Bad payload 0: Bad message\n"
                                        "<4>Bad payload 1: Bad message\n");
        assert_int_equal(floe_ratelimit_take_suppressed(&hour), 3);
        capture_reset();

        /* Suppressions at fake times near 0; real CLOCK_MONOTONIC is far past the window. */
        assert_true(floe_ratelimit_test_at(&ms, 0));
        assert_false(floe_ratelimit_test_at(&ms, 1));
        assert_false(floe_ratelimit_test_at(&ms, 2));
        log_ratelimit(&ms, LOG_WARNING, "Bad payload from %s", "gw-7");
        assert_string_equal(captured(),
                            "<4>Bad payload from gw-7 (2 similar messages suppressed)\n");
        assert_int_equal(floe_ratelimit_take_suppressed(&ms), 0);
        capture_reset();

        /* Filtered levels do not use up the budget. */
        struct floe_ratelimit one = FLOE_RATELIMIT_INIT(3600ULL * 1000000, 1);
        log_ratelimit(&one, LOG_DEBUG, "filtered");
        log_ratelimit(&one, LOG_INFO, "shown");
        assert_string_equal(captured(), "<6>shown\n");
}

static void test_parse_level(void **state)
{
        (void)state;
        assert_int_equal(floe_log_parse_level("debug"), LOG_DEBUG);
        assert_int_equal(floe_log_parse_level("info"), LOG_INFO);
        assert_int_equal(floe_log_parse_level("notice"), LOG_NOTICE);
        assert_int_equal(floe_log_parse_level("warning"), LOG_WARNING);
        assert_int_equal(floe_log_parse_level("warn"), LOG_WARNING);
        assert_int_equal(floe_log_parse_level("err"), LOG_ERR);
        assert_int_equal(floe_log_parse_level("error"), LOG_ERR);
        assert_int_equal(floe_log_parse_level("crit"), LOG_CRIT);
        assert_int_equal(floe_log_parse_level("alert"), LOG_ALERT);
        assert_int_equal(floe_log_parse_level("emerg"), LOG_EMERG);
        assert_int_equal(floe_log_parse_level("DEBUG"), LOG_DEBUG);
        assert_int_equal(floe_log_parse_level("0"), 0);
        assert_int_equal(floe_log_parse_level("7"), 7);
        assert_int_equal(floe_log_parse_level("8"), -EINVAL);
        assert_int_equal(floe_log_parse_level("07"), -EINVAL);
        assert_int_equal(floe_log_parse_level(""), -EINVAL);
        assert_int_equal(floe_log_parse_level("debugx"), -EINVAL);
        assert_int_equal(floe_log_parse_level(NULL), -EINVAL);

        assert_int_equal(floe_log_parse_target("auto"), FLOE_LOG_TARGET_AUTO);
        assert_int_equal(floe_log_parse_target("stderr"), FLOE_LOG_TARGET_STDERR);
        assert_int_equal(floe_log_parse_target("journal"), FLOE_LOG_TARGET_JOURNAL);
        assert_int_equal(floe_log_parse_target("syslog"), -EINVAL);
        assert_int_equal(floe_log_parse_target(NULL), -EINVAL);
}

static void format_stream(char *buf, size_t size, int fd, int ino_delta)
{
        struct stat st;

        assert_int_equal(fstat(fd, &st), 0);
        snprintf(buf, size, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
}

static void test_journal_stream_detection(void **state)
{
        char path[] = "/tmp/floe-test-log-XXXXXX";
        char s[64];
        int fd;

        (void)state;
        fd = mkostemp(path, O_CLOEXEC);
        assert_true(fd >= 0);
        unlink(path);

        format_stream(s, sizeof(s), fd, 0);
        assert_int_equal(floe_log_stream_is_journal(s, fd), 1);
        format_stream(s, sizeof(s), fd, 1);
        assert_int_equal(floe_log_stream_is_journal(s, fd), 0);
        format_stream(s, sizeof(s), capture_fd, 0);
        assert_int_equal(floe_log_stream_is_journal(s, fd), 0); /* another file */
        assert_int_equal(floe_log_stream_is_journal(NULL, fd), 0);
        assert_int_equal(floe_log_stream_is_journal("", fd), 0);

        assert_int_equal(floe_log_stream_is_journal("abc", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("1:", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal(":1", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("1", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("-1:2", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal(" 1:2", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("1: 2", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("1:2x", fd), -EINVAL);
        assert_int_equal(floe_log_stream_is_journal("99999999999999999999999:1", fd), -EINVAL);
        close(fd);
        assert_int_equal(floe_log_stream_is_journal("1:2", fd), -EBADF);
}

static void test_open_auto_target(void **state)
{
        char s[64];

        (void)state;
        /* stderr is the capture memfd here: pretend systemd connected it to the journal. */
        format_stream(s, sizeof(s), STDERR_FILENO, 0);
        setenv("JOURNAL_STREAM", s, 1);
        assert_int_equal(floe_log_open("floe-test"), 0);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_JOURNAL);

        format_stream(s, sizeof(s), STDERR_FILENO, 1);
        setenv("JOURNAL_STREAM", s, 1);
        assert_int_equal(floe_log_open("floe-test"), 0);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_STDERR);

        /* FLOE_LOG_TARGET overrides detection both ways. */
        format_stream(s, sizeof(s), STDERR_FILENO, 0);
        setenv("JOURNAL_STREAM", s, 1);
        setenv("FLOE_LOG_TARGET", "stderr", 1);
        assert_int_equal(floe_log_open("floe-test"), 0);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_STDERR);
        unsetenv("JOURNAL_STREAM");
        setenv("FLOE_LOG_TARGET", "journal", 1);
        assert_int_equal(floe_log_open("floe-test"), 0);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_JOURNAL);
        setenv("FLOE_LOG_TARGET", "auto", 1);
        assert_int_equal(floe_log_open("floe-test"), 0);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_STDERR);
}

static void test_open_env(void **state)
{
        (void)state;
        setenv("FLOE_LOG_LEVEL", "debug", 1);
        assert_int_equal(floe_log_open(NULL), 0);
        assert_int_equal(floe_log_get_max_level(), LOG_DEBUG);
        log_debug("d");
        assert_string_equal(captured(), "<7>d\n");
        floe_log_close();
        assert_int_equal(floe_log_get_max_level(), LOG_INFO);

        /* A bad value is reported, the good ones still apply. */
        setenv("FLOE_LOG_LEVEL", "loud", 1);
        setenv("FLOE_LOG_TARGET", "journal", 1);
        assert_int_equal(floe_log_open(NULL), -EINVAL);
        assert_int_equal(floe_log_get_max_level(), LOG_INFO);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_JOURNAL);

        setenv("FLOE_LOG_LEVEL", "notice", 1);
        setenv("FLOE_LOG_TARGET", "syslog", 1);
        assert_int_equal(floe_log_open(NULL), -EINVAL);
        assert_int_equal(floe_log_get_max_level(), LOG_NOTICE);
        assert_int_equal(floe_log_get_target(), FLOE_LOG_TARGET_STDERR);

        unsetenv("FLOE_LOG_LEVEL");
        unsetenv("FLOE_LOG_TARGET");
        setenv("FLOE_LOG_TIME", "maybe", 1);
        assert_int_equal(floe_log_open(NULL), -EINVAL);
}

static void test_time_prefix(void **state)
{
        regex_t re;
        int m;

        (void)state;
        setenv("FLOE_LOG_TIME", "1", 1);
        assert_int_equal(floe_log_open("t"), 0);
        log_info("hello");
        assert_int_equal(
                regcomp(&re,
                        "^<6>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{6}Z "
                        "hello\n$",
                        REG_EXTENDED | REG_NOSUB),
                0);
        m = regexec(&re, captured(), 0, NULL, 0);
        regfree(&re);
        assert_int_equal(m, 0);
        capture_reset();

        floe_log_set_time(false);
        log_info("hello");
        assert_string_equal(captured(), "<6>hello\n");
}

/* One journald field of the captured sd_journal_sendv() call, or NULL. */
static const char *journal_field(const char *key, char *buf, size_t size)
{
        size_t klen = strlen(key);
        const char *p = journal;

        while (*p) {
                const char *end = strchr(p, '\x1e');

                assert_non_null(end);
                if ((size_t)(end - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
                        snprintf(buf, size, "%.*s", (int)(end - p - (ptrdiff_t)klen - 1),
                                 p + klen + 1);
                        return buf;
                }
                p = end + 1;
        }
        return NULL;
}

static int count_fields(void)
{
        int n = 0;

        for (const char *p = journal; *p; p++)
                n += *p == '\x1e';
        return n;
}

static void test_journal_fields(void **state)
{
        static const char *const fields[] = {"FLOE_IDENTITY=acme.gw-1", "FLOE_BATCH_SEQ=12",
                                             "bad=x", NULL};
        char b[256], line[16];
        int r, at;

        (void)state;
        assert_int_equal(floe_log_open("floe-agent"), 0);
        assert_int_equal(floe_log_set_target(FLOE_LOG_TARGET_JOURNAL), 0);

        at = __LINE__ + 1;
        r = log_struct_errno(LOG_WARNING, EIO, fields, "Upload\nfailed");
        assert_int_equal(r, -EIO);
        assert_int_equal(journal_calls, 1);
        assert_string_equal(captured(), ""); /* nothing doubled onto stderr */

        assert_string_equal(journal_field("MESSAGE", b, sizeof(b)),
                            "Upload\nfailed: Input/output error"); /* no escaping for journald */
        assert_string_equal(journal_field("PRIORITY", b, sizeof(b)), "4");
        assert_string_equal(journal_field("SYSLOG_IDENTIFIER", b, sizeof(b)), "floe-agent");
        assert_string_equal(journal_field("CODE_FILE", b, sizeof(b)), __FILE__);
        snprintf(line, sizeof(line), "%d", at);
        assert_string_equal(journal_field("CODE_LINE", b, sizeof(b)), line);
        assert_string_equal(journal_field("CODE_FUNC", b, sizeof(b)), "test_journal_fields");
        assert_string_equal(journal_field("ERRNO", b, sizeof(b)), "5");
        assert_string_equal(journal_field("FLOE_IDENTITY", b, sizeof(b)), "acme.gw-1");
        assert_string_equal(journal_field("FLOE_BATCH_SEQ", b, sizeof(b)), "12");
        assert_null(journal_field("bad", b, sizeof(b)));
        assert_int_equal(count_fields(), 9);

        /* Without an errno there is no ERRNO field. */
        journal_len = 0;
        journal[0] = '\0';
        log_info("plain");
        assert_string_equal(journal_field("MESSAGE", b, sizeof(b)), "plain");
        assert_string_equal(journal_field("PRIORITY", b, sizeof(b)), "6");
        assert_null(journal_field("ERRNO", b, sizeof(b)));
        assert_int_equal(count_fields(), 6);
}

static void test_journal_fallback(void **state)
{
        (void)state;
        assert_int_equal(floe_log_set_target(FLOE_LOG_TARGET_JOURNAL), 0);
        journal_ret = -ECONNREFUSED;
        log_error("journald is down");
        assert_int_equal(journal_calls, 1);
        assert_string_equal(captured(), "<3>journald is down\n");
}

static void test_default_ident(void **state)
{
        char b[256];

        (void)state;
        assert_int_equal(floe_log_set_target(FLOE_LOG_TARGET_JOURNAL), 0);
        log_info("x");
        assert_string_equal(journal_field("SYSLOG_IDENTIFIER", b, sizeof(b)),
                            program_invocation_short_name);

        /* A long ident is cut to 63 bytes, not overflowed. */
        char ident[100];
        memset(ident, 'i', sizeof(ident) - 1);
        ident[sizeof(ident) - 1] = '\0';
        setenv("FLOE_LOG_TARGET", "journal", 1);
        assert_int_equal(floe_log_open(ident), 0);
        journal_len = 0;
        journal[0] = '\0';
        log_info("y");
        ident[63] = '\0';
        assert_string_equal(journal_field("SYSLOG_IDENTIFIER", b, sizeof(b)), ident);
}

static void test_no_allocation(void **state)
{
        (void)state;
        floe_alloc_fail_at(1);
        log_struct(LOG_INFO, FLOE_LOG_FIELDS(FLOE_LOG_FIELD("FLOE_N", "%d", 1)), "x");
        assert_int_equal(floe_alloc_count(), 0);
        floe_alloc_fail_at(0);
        assert_string_equal(captured(), "<6>x FLOE_N=1\n");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
        const struct CMUnitTest tests[] = {
                T(test_prefix_per_level),    T(test_max_level),
                T(test_errno_suffix),        T(test_errno_preserved),
                T(test_fields_on_stderr),    T(test_fields_invalid_dropped),
                T(test_field_truncated),     T(test_escaping),
                T(test_truncation),          T(test_truncation_utf8),
                T(test_line_bounded),        T(test_ratelimit_window),
                T(test_ratelimit_unlimited), T(test_ratelimit_log),
                T(test_parse_level),         T(test_journal_stream_detection),
                T(test_open_auto_target),    T(test_open_env),
                T(test_time_prefix),         T(test_journal_fields),
                T(test_journal_fallback),    T(test_default_ident),
                T(test_no_allocation),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
