/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>

/*
 * Logging for floe daemons (systemd style).
 *
 * One event goes to one destination, chosen by floe_log_open():
 *   - journald native protocol (sd_journal_sendv) when stderr is the journal
 *     stream ($JOURNAL_STREAM matches fstat(2)), with MESSAGE, PRIORITY,
 *     SYSLOG_IDENTIFIER, CODE_FILE, CODE_LINE, CODE_FUNC, ERRNO and caller
 *     fields;
 *   - otherwise stderr, one line per event: "<N>[time ]message[ KEY=value]...\n"
 *     where <N> is the sd-daemon(3) level prefix, control characters in the
 *     message are escaped (\n, \r, \t, \xNN) and values containing a space,
 *     quote, backslash or control character are double-quoted with \" \\ and
 *     the same escapes. No timestamp unless FLOE_LOG_TIME=1 (journald adds its
 *     own); the timestamp is UTC, "YYYY-MM-DDTHH:MM:SS.uuuuuuZ".
 * Without floe_log_open() everything goes to stderr at LOG_INFO.
 *
 * The message (including the ": strerror" and suppression suffixes) is at
 * most FLOE_LOG_MESSAGE_MAX bytes; longer text is cut on a UTF-8 boundary and
 * ends in "…" before the suffixes. Logging never allocates and preserves
 * errno. Not meant for library code above LOG_DEBUG (STYLE.md rule 6).
 */

#define FLOE_LOG_MESSAGE_MAX 2048
/* Size of one formatted caller field built with FLOE_LOG_FIELD(), "KEY=value\0". */
#define FLOE_LOG_FIELD_MAX 256
/* Caller fields beyond this many are dropped. */
#define FLOE_LOG_FIELDS_MAX 32

enum floe_log_target {
        FLOE_LOG_TARGET_AUTO, /* journal if stderr is the journal stream, else stderr */
        FLOE_LOG_TARGET_STDERR,
        FLOE_LOG_TARGET_JOURNAL,
        _FLOE_LOG_TARGET_MAX,
        _FLOE_LOG_TARGET_INVALID = -EINVAL,
};

/*
 * Choose the destination once: ident (NULL: program_invocation_short_name,
 * truncated to 63 bytes) becomes SYSLOG_IDENTIFIER. Reads FLOE_LOG_TARGET
 * (stderr|journal|auto), FLOE_LOG_LEVEL (see floe_log_parse_level) and
 * FLOE_LOG_TIME (1|0). Valid settings are applied even when another one is
 * invalid; then -EINVAL is returned so main() can warn about it.
 */
int floe_log_open(const char *ident);
/* Back to the defaults: stderr, LOG_INFO, no time, default ident. */
void floe_log_close(void);

/* AUTO is resolved immediately; floe_log_get_target() never returns AUTO. */
int floe_log_set_target(enum floe_log_target target);
enum floe_log_target floe_log_get_target(void);
/* LOG_EMERG..LOG_DEBUG; events with a larger (less severe) level are dropped. */
int floe_log_set_max_level(int level);
int floe_log_get_max_level(void);
void floe_log_set_time(bool show);

/* "emerg|alert|crit|err|error|warning|warn|notice|info|debug" (any case) or
 * "0".."7" to LOG_*; -EINVAL otherwise. */
int floe_log_parse_level(const char *s);
/* "auto|stderr|journal" to enum floe_log_target; -EINVAL otherwise. */
int floe_log_parse_target(const char *s);

/*
 * Whether fd is the stream named by a $JOURNAL_STREAM value "<dev>:<ino>"
 * (decimal). 1 if it matches, 0 if journal_stream is NULL/empty or names
 * another file, -EINVAL if malformed, -errno if fstat fails.
 */
int floe_log_stream_is_journal(const char *journal_stream, int fd);

/*
 * Rate limit for noisy lines ("bad payload from ..."): at most burst lines
 * per interval_us (CLOCK_MONOTONIC). interval_us == 0 or burst == 0 means
 * unlimited. Initialise with FLOE_RATELIMIT_INIT or zero the private part.
 */
struct floe_ratelimit {
        uint64_t interval_us;
        unsigned burst;
        /* private */
        uint64_t begin_us;
        unsigned num;
        unsigned suppressed;
};

#define FLOE_RATELIMIT_INIT(interval, b)                 \
        {                                                \
                .interval_us = (interval), .burst = (b), \
        }

/* True if a line may be logged now; false counts one suppressed line. */
bool floe_ratelimit_test(struct floe_ratelimit *rl);
/* Same with an explicit monotonic time in µs (tests, or sd_event_now()). */
bool floe_ratelimit_test_at(struct floe_ratelimit *rl, uint64_t now_us);
/* Lines suppressed since the last call; resets the count. Call it after a
 * successful test to say "(N similar messages suppressed)". */
unsigned floe_ratelimit_take_suppressed(struct floe_ratelimit *rl);

/*
 * The one entry point behind the macros. error: errno value of either sign,
 * 0 for none. fields: NULL or NULL-terminated "KEY=value" strings; KEY must be
 * a journal field name ([A-Z0-9_], not starting with '_' or a digit, at most
 * 64 bytes) and not one set here (MESSAGE, PRIORITY, SYSLOG_IDENTIFIER,
 * CODE_*, ERRNO), otherwise the field is dropped. rl: NULL or a rate limit;
 * when it suppresses the line nothing is written. Returns -|error| (0 if
 * error is 0) whether or not anything was written.
 */
int floe_log_internal(int level, int error, const char *file, int line, const char *func,
                      const char *const *fields, struct floe_ratelimit *rl, const char *format, ...)
        __attribute__((format(printf, 8, 9)));

/* Formats "KEY=value" into buf (truncated to size) and returns buf. */
char *floe_log_field(char *buf, size_t size, const char *format, ...)
        __attribute__((format(printf, 3, 4)));

static inline int floe_log_neg_errno(int error)
{
        if (error == INT_MIN)
                return -ERANGE;
        return error < 0 ? error : -error;
}

/*
 * log_full_ex(level, error, fields, rl, fmt, ...): the general form. Arguments
 * (and fields) are not evaluated when level is filtered out. Evaluates to
 * -|error|, so `return log_error_errno(r, "Failed to open %s", path);` works.
 */
#define log_full_ex(level, error, fields, rl, ...)                                              \
        ({                                                                                      \
                int _floe_lvl = (level), _floe_err = (error);                                   \
                floe_log_get_max_level() >= (_floe_lvl & LOG_PRIMASK)                           \
                        ? floe_log_internal(_floe_lvl, _floe_err, __FILE__, __LINE__, __func__, \
                                            (fields), (rl), __VA_ARGS__)                        \
                        : floe_log_neg_errno(_floe_err);                                        \
        })

#define log_full_errno(level, error, ...) log_full_ex(level, error, NULL, NULL, __VA_ARGS__)
#define log_full(level, ...)              log_full_ex(level, 0, NULL, NULL, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

/* Append ": <strerror>" and evaluate to -|error|. */
#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, error, __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, error, __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, error, __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, error, __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, error, __VA_ARGS__)

/*
 * Structured events:
 *   log_struct(LOG_WARNING,
 *              FLOE_LOG_FIELDS("FLOE_IDENTITY=acme.gw-1",
 *                              FLOE_LOG_FIELD("FLOE_BATCH_SEQ", "%" PRIu64, seq)),
 *              "Rejected batch");
 * FLOE_LOG_FIELD formats into a block-scoped compound literal: use it only
 * inside the log macro call. Its format needs at least one argument; pass a
 * constant field as a plain "KEY=value" string.
 */
#define log_struct(level, fields, ...) log_full_ex(level, 0, fields, NULL, __VA_ARGS__)
#define log_struct_errno(level, error, fields, ...) \
        log_full_ex(level, error, fields, NULL, __VA_ARGS__)

#define FLOE_LOG_FIELDS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define FLOE_LOG_FIELD(key, format, ...)                                                  \
        floe_log_field((char[FLOE_LOG_FIELD_MAX]){0}, FLOE_LOG_FIELD_MAX, key "=" format, \
                       __VA_ARGS__)

/* Rate-limited: the next allowed line ends in "(N similar messages suppressed)". */
#define log_ratelimit(rl, level, ...)              log_full_ex(level, 0, NULL, rl, __VA_ARGS__)
#define log_ratelimit_errno(rl, level, error, ...) log_full_ex(level, error, NULL, rl, __VA_ARGS__)
