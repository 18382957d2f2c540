/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-log.h"
#include "floe-alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* We send our own CODE_FILE/CODE_LINE/CODE_FUNC: the caller's, not ours. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#define MESSAGE_KEY     "MESSAGE="
#define MESSAGE_KEY_LEN (sizeof(MESSAGE_KEY) - 1)
#define ELLIPSIS        "\xe2\x80\xa6" /* U+2026 */
#define ELLIPSIS_LEN    (sizeof(ELLIPSIS) - 1)
#define IDENT_MAX       64
#define FIELD_KEY_MAX   64
/* Escaping can quadruple the message; fields add at most this much more. */
#define LINE_MAX_BYTES (4 * FLOE_LOG_MESSAGE_MAX + 8192)
#define SUFFIX_MAX     160

static enum floe_log_target log_target = FLOE_LOG_TARGET_STDERR;
static int log_max_level = LOG_INFO;
static bool log_show_time;
static char log_ident[IDENT_MAX];

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "err",     [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

static const char *const target_names[_FLOE_LOG_TARGET_MAX] = {
        [FLOE_LOG_TARGET_AUTO] = "auto",
        [FLOE_LOG_TARGET_STDERR] = "stderr",
        [FLOE_LOG_TARGET_JOURNAL] = "journal",
};

/* Fields the logger itself sets; callers may not override them. */
static const char *const reserved_keys[] = {
        "MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER", "CODE_FILE", "CODE_LINE", "CODE_FUNC", "ERRNO",
};

int floe_log_parse_level(const char *s)
{
        if (!s)
                return -EINVAL;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == '\0')
                return s[0] - '0';
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcasecmp(s, level_names[i]) == 0)
                        return (int)i;
        if (strcasecmp(s, "error") == 0)
                return LOG_ERR;
        if (strcasecmp(s, "warn") == 0)
                return LOG_WARNING;
        return -EINVAL;
}

int floe_log_parse_target(const char *s)
{
        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(target_names); i++)
                if (strcasecmp(s, target_names[i]) == 0)
                        return (int)i;
        return -EINVAL;
}

static int parse_boolean(const char *s)
{
        static const char *const yes[] = {"1", "yes", "true", "on"};
        static const char *const no[] = {"0", "no", "false", "off"};

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0)
                        return 1;
                if (strcasecmp(s, no[i]) == 0)
                        return 0;
        }
        return -EINVAL;
}

/* Strict unsigned decimal: no sign, no blanks, no overflow. */
static int parse_u64(const char *s, const char **ret_end, unsigned long long *ret)
{
        unsigned long long v;
        char *end;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        *ret_end = end;
        *ret = v;
        return 0;
}

int floe_log_stream_is_journal(const char *journal_stream, int fd)
{
        unsigned long long dev, ino;
        const char *p;
        struct stat st;
        int saved_errno = errno, r;

        if (!journal_stream || !*journal_stream)
                return 0;
        r = parse_u64(journal_stream, &p, &dev);
        if (r == 0 && *p != ':')
                r = -EINVAL;
        if (r == 0)
                r = parse_u64(p + 1, &p, &ino);
        if (r == 0 && *p != '\0')
                r = -EINVAL;
        if (r == 0 && fstat(fd, &st) < 0)
                r = -errno;
        if (r == 0)
                r = (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
        errno = saved_errno;
        return r;
}

int floe_log_set_target(enum floe_log_target target)
{
        switch (target) {
        case FLOE_LOG_TARGET_AUTO:
                log_target = floe_log_stream_is_journal(getenv("JOURNAL_STREAM"), STDERR_FILENO) > 0
                                     ? FLOE_LOG_TARGET_JOURNAL
                                     : FLOE_LOG_TARGET_STDERR;
                return 0;
        case FLOE_LOG_TARGET_STDERR:
        case FLOE_LOG_TARGET_JOURNAL:
                log_target = target;
                return 0;
        default:
                return -EINVAL;
        }
}

enum floe_log_target floe_log_get_target(void)
{
        return log_target;
}

int floe_log_set_max_level(int level)
{
        if (level < LOG_EMERG || level > LOG_DEBUG)
                return -EINVAL;
        log_max_level = level;
        return 0;
}

int floe_log_get_max_level(void)
{
        return log_max_level;
}

void floe_log_set_time(bool show)
{
        log_show_time = show;
}

static void set_ident(const char *ident)
{
        size_t n;

        if (!ident) {
                log_ident[0] = '\0';
                return;
        }
        n = strnlen(ident, sizeof(log_ident) - 1);
        memcpy(log_ident, ident, n);
        log_ident[n] = '\0';
}

static const char *get_ident(void)
{
        return log_ident[0] ? log_ident : program_invocation_short_name;
}

int floe_log_open(const char *ident)
{
        enum floe_log_target target = FLOE_LOG_TARGET_AUTO;
        const char *e;
        int r = 0, v;

        set_ident(ident);

        e = getenv("FLOE_LOG_TARGET");
        if (e && *e) {
                v = floe_log_parse_target(e);
                if (v < 0)
                        r = -EINVAL;
                else
                        target = v;
        }
        (void)floe_log_set_target(target);

        e = getenv("FLOE_LOG_LEVEL");
        if (e && *e) {
                v = floe_log_parse_level(e);
                if (v < 0)
                        r = -EINVAL;
                else
                        log_max_level = v;
        }

        e = getenv("FLOE_LOG_TIME");
        if (e && *e) {
                v = parse_boolean(e);
                if (v < 0)
                        r = -EINVAL;
                else
                        log_show_time = v;
        }
        return r;
}

void floe_log_close(void)
{
        log_target = FLOE_LOG_TARGET_STDERR;
        log_max_level = LOG_INFO;
        log_show_time = false;
        log_ident[0] = '\0';
}

bool floe_ratelimit_test_at(struct floe_ratelimit *rl, uint64_t now_us)
{
        if (rl->interval_us == 0 || rl->burst == 0)
                return true;
        if (rl->num == 0 || now_us < rl->begin_us || now_us - rl->begin_us >= rl->interval_us) {
                rl->begin_us = now_us;
                rl->num = 0;
        }
        if (rl->num < rl->burst) {
                rl->num++;
                return true;
        }
        if (rl->suppressed < UINT_MAX)
                rl->suppressed++;
        return false;
}

bool floe_ratelimit_test(struct floe_ratelimit *rl)
{
        struct timespec ts;

        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return true;
        return floe_ratelimit_test_at(rl, (uint64_t)ts.tv_sec * 1000000u +
                                                  (uint64_t)ts.tv_nsec / 1000u);
}

unsigned floe_ratelimit_take_suppressed(struct floe_ratelimit *rl)
{
        unsigned n = rl->suppressed;

        rl->suppressed = 0;
        return n;
}

char *floe_log_field(char *buf, size_t size, const char *format, ...)
{
        va_list ap;

        if (size == 0)
                return buf;
        va_start(ap, format);
        if (vsnprintf(buf, size, format, ap) < 0)
                buf[0] = '\0';
        va_end(ap);
        return buf;
}

static bool field_key_valid(const char *field, size_t *ret_keylen)
{
        const char *eq = strchr(field, '=');
        size_t n;

        if (!eq)
                return false;
        n = (size_t)(eq - field);
        if (n == 0 || n > FIELD_KEY_MAX || field[0] == '_' || (field[0] >= '0' && field[0] <= '9'))
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = field[i];

                if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
                        return false;
        }
        for (size_t i = 0; i < ELEMENTSOF(reserved_keys); i++)
                if (strlen(reserved_keys[i]) == n && memcmp(reserved_keys[i], field, n) == 0)
                        return false;
        *ret_keylen = n;
        return true;
}

/*
 * Formats the message into buf (FLOE_LOG_MESSAGE_MAX + 1 bytes) and returns
 * its length. The suffixes always survive; the caller's text is cut instead.
 */
static size_t compose_message(char *buf, int error, unsigned suppressed, const char *format,
                              va_list ap)
{
        char suffix[SUFFIX_MAX], errbuf[128];
        size_t slen = 0, len, avail;
        int n;

        if (error != 0) {
                int e = -floe_log_neg_errno(error);
                const char *s = strerror_r(e, errbuf, sizeof(errbuf));

                n = snprintf(suffix, sizeof(suffix), ": %s", s);
                slen = n < 0 ? 0 : (size_t)n >= sizeof(suffix) ? sizeof(suffix) - 1 : (size_t)n;
        }
        if (suppressed > 0) {
                n = snprintf(suffix + slen, sizeof(suffix) - slen,
                             " (%u similar messages suppressed)", suppressed);
                if (n > 0)
                        slen += (size_t)n >= sizeof(suffix) - slen ? sizeof(suffix) - slen - 1
                                                                   : (size_t)n;
        }

        /* So that a %m in the format means this event's error. */
        errno = -floe_log_neg_errno(error);
        n = vsnprintf(buf, FLOE_LOG_MESSAGE_MAX + 1, format, ap);
        if (n < 0) {
                n = 0;
                buf[0] = '\0';
        }
        len = (size_t)n;
        avail = FLOE_LOG_MESSAGE_MAX - slen;
        if (len > avail) {
                size_t cut = avail - ELLIPSIS_LEN;

                /* Never leave half a UTF-8 sequence before the ellipsis. */
                while (cut > 0 && ((unsigned char)buf[cut] & 0xc0) == 0x80)
                        cut--;
                memcpy(buf + cut, ELLIPSIS, ELLIPSIS_LEN);
                len = cut + ELLIPSIS_LEN;
        }
        memcpy(buf + len, suffix, slen);
        len += slen;
        buf[len] = '\0';
        return len;
}

static int write_journal(int level, int error, const char *file, int line, const char *func,
                         const char *const *fields, const char *msgfield, size_t msgfield_len)
{
        struct iovec iov[7 + FLOE_LOG_FIELDS_MAX];
        char prio[sizeof("PRIORITY=") + 4];
        char ident[sizeof("SYSLOG_IDENTIFIER=") + IDENT_MAX];
        char code_file[sizeof("CODE_FILE=") + 256];
        char code_line[sizeof("CODE_LINE=") + 12];
        char code_func[sizeof("CODE_FUNC=") + 128];
        char errno_field[sizeof("ERRNO=") + 12];
        size_t n = 0, keylen;

        iov[n++] = (struct iovec){(void *)msgfield, msgfield_len};
        snprintf(prio, sizeof(prio), "PRIORITY=%d", level);
        iov[n++] = (struct iovec){prio, strlen(prio)};
        snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", get_ident());
        iov[n++] = (struct iovec){ident, strlen(ident)};
        if (file) {
                snprintf(code_file, sizeof(code_file), "CODE_FILE=%s", file);
                iov[n++] = (struct iovec){code_file, strlen(code_file)};
        }
        if (line > 0) {
                snprintf(code_line, sizeof(code_line), "CODE_LINE=%d", line);
                iov[n++] = (struct iovec){code_line, strlen(code_line)};
        }
        if (func) {
                snprintf(code_func, sizeof(code_func), "CODE_FUNC=%s", func);
                iov[n++] = (struct iovec){code_func, strlen(code_func)};
        }
        if (error != 0) {
                snprintf(errno_field, sizeof(errno_field), "ERRNO=%d", -floe_log_neg_errno(error));
                iov[n++] = (struct iovec){errno_field, strlen(errno_field)};
        }
        for (size_t i = 0; fields && fields[i] && i < FLOE_LOG_FIELDS_MAX; i++)
                if (field_key_valid(fields[i], &keylen))
                        iov[n++] = (struct iovec){(void *)fields[i], strlen(fields[i])};

        return sd_journal_sendv(iov, (int)n);
}

struct line_buf {
        char *buf;
        size_t len;
        size_t cap; /* room reserved for the trailing "…\n" is outside cap */
        bool full;
};

static void line_put(struct line_buf *l, const char *s, size_t n)
{
        if (l->full || n > l->cap - l->len) {
                l->full = true;
                return;
        }
        memcpy(l->buf + l->len, s, n);
        l->len += n;
}

static bool needs_quotes(const char *s)
{
        for (; *s; s++) {
                unsigned char c = (unsigned char)*s;

                if (c <= ' ' || c == '"' || c == '\\' || c == 0x7f)
                        return true;
        }
        return false;
}

/* One event = one line: control characters become C escapes. */
static void line_put_escaped(struct line_buf *l, const char *s, size_t n, bool quoted)
{
        size_t start = 0;

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];
                char esc[5];
                size_t elen;

                if (c == '\n')
                        elen = (size_t)snprintf(esc, sizeof(esc), "\\n");
                else if (c == '\r')
                        elen = (size_t)snprintf(esc, sizeof(esc), "\\r");
                else if (c == '\t')
                        elen = (size_t)snprintf(esc, sizeof(esc), "\\t");
                else if (c < ' ' || c == 0x7f)
                        elen = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", c);
                else if (quoted && (c == '"' || c == '\\'))
                        elen = (size_t)snprintf(esc, sizeof(esc), "\\%c", c);
                else
                        continue;
                line_put(l, s + start, i - start);
                line_put(l, esc, elen);
                start = i + 1;
        }
        line_put(l, s + start, n - start);
}

static void line_put_time(struct line_buf *l)
{
        struct timespec ts;
        struct tm tm;
        char buf[64];
        size_t n;
        int k;

        if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || !gmtime_r(&ts.tv_sec, &tm))
                return;
        n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
        if (n == 0)
                return;
        k = snprintf(buf + n, sizeof(buf) - n, ".%06ldZ ", ts.tv_nsec / 1000);
        if (k > 0 && (size_t)k < sizeof(buf) - n)
                line_put(l, buf, n + (size_t)k);
}

static void write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t k = write(fd, buf, len);

                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return;
                }
                buf += k;
                len -= (size_t)k;
        }
}

static void write_stderr(int level, const char *const *fields, const char *msg, size_t msg_len)
{
        char buf[LINE_MAX_BYTES];
        struct line_buf l = {
                .buf = buf,
                .cap = sizeof(buf) - ELLIPSIS_LEN - 1,
        };
        char prefix[4] = {'<', (char)('0' + level), '>', '\0'};
        size_t keylen;

        line_put(&l, prefix, 3);
        if (log_show_time)
                line_put_time(&l);
        line_put_escaped(&l, msg, msg_len, false);
        for (size_t i = 0; fields && fields[i] && i < FLOE_LOG_FIELDS_MAX; i++) {
                const char *value;
                bool quoted;

                if (!field_key_valid(fields[i], &keylen))
                        continue;
                value = fields[i] + keylen + 1;
                quoted = needs_quotes(value);
                line_put(&l, " ", 1);
                line_put(&l, fields[i], keylen + 1);
                if (quoted)
                        line_put(&l, "\"", 1);
                line_put_escaped(&l, value, strlen(value), quoted);
                if (quoted)
                        line_put(&l, "\"", 1);
        }
        if (l.full) {
                memcpy(l.buf + l.len, ELLIPSIS, ELLIPSIS_LEN);
                l.len += ELLIPSIS_LEN;
        }
        l.buf[l.len++] = '\n';
        write_all(STDERR_FILENO, l.buf, l.len);
}

int floe_log_internal(int level, int error, const char *file, int line, const char *func,
                      const char *const *fields, struct floe_ratelimit *rl, const char *format, ...)
{
        char msg[MESSAGE_KEY_LEN + FLOE_LOG_MESSAGE_MAX + 1];
        int saved_errno = errno;
        unsigned suppressed = 0;
        size_t len;
        va_list ap;

        level &= LOG_PRIMASK;
        if (level > log_max_level)
                goto out;
        if (rl) {
                if (!floe_ratelimit_test(rl))
                        goto out;
                suppressed = floe_ratelimit_take_suppressed(rl);
        }

        memcpy(msg, MESSAGE_KEY, MESSAGE_KEY_LEN);
        va_start(ap, format);
        len = compose_message(msg + MESSAGE_KEY_LEN, error, suppressed, format, ap);
        va_end(ap);

        /* If journald is unreachable the event still reaches stderr. */
        if (log_target == FLOE_LOG_TARGET_JOURNAL &&
            write_journal(level, error, file, line, func, fields, msg, MESSAGE_KEY_LEN + len) >= 0)
                goto out;
        write_stderr(level, fields, msg + MESSAGE_KEY_LEN, len);
out:
        errno = saved_errno;
        return floe_log_neg_errno(error);
}
