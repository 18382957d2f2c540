/* SPDX-License-Identifier: Apache-2.0 */
/* Payload parsers: format detection, limits, validation of readings, RFC 3339
 * times, duplicate keys and all-or-nothing emission. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "floe-alloc.h"
#include "floe-batch.h"
#include "bytes.h"
#include "parse-internal.h"

#define MAX_READINGS_LIMIT (1u << 20)
#define MAX_NAME_LIMIT     65535u
#define MAX_TEXT_LIMIT     (16u << 20)
#define MAX_PAYLOAD_LIMIT  ((size_t)256 << 20)
#define KEY_SHOWN          40 /* bytes of a key quoted in an error detail */

static const char *const reason_names[AGENT_PARSE_REASON_MAX] = {
        [AGENT_PARSE_OK] = "ok",
        [AGENT_PARSE_EMPTY] = "empty",
        [AGENT_PARSE_TOO_LARGE] = "too-large",
        [AGENT_PARSE_TOO_MANY_READINGS] = "too-many-readings",
        [AGENT_PARSE_TOO_COMPLEX] = "too-complex",
        [AGENT_PARSE_TOO_DEEP] = "too-deep",
        [AGENT_PARSE_BAD_JSON] = "bad-json",
        [AGENT_PARSE_BAD_CBOR] = "bad-cbor",
        [AGENT_PARSE_BAD_LINE_PROTOCOL] = "bad-line-protocol",
        [AGENT_PARSE_BAD_UTF8] = "bad-utf8",
        [AGENT_PARSE_BAD_NAME] = "bad-name",
        [AGENT_PARSE_NAME_TOO_LONG] = "name-too-long",
        [AGENT_PARSE_TEXT_TOO_LONG] = "text-too-long",
        [AGENT_PARSE_NO_SENSOR] = "no-sensor",
        [AGENT_PARSE_DUPLICATE_KEY] = "duplicate-key",
        [AGENT_PARSE_UNKNOWN_KEY] = "unknown-key",
        [AGENT_PARSE_MISSING_VALUE] = "missing-value",
        [AGENT_PARSE_BAD_VALUE_TYPE] = "bad-value-type",
        [AGENT_PARSE_BAD_NUMBER] = "bad-number",
        [AGENT_PARSE_NON_FINITE] = "non-finite",
        [AGENT_PARSE_BAD_TIME] = "bad-time",
        [AGENT_PARSE_CALLBACK] = "callback",
};

static const char *const format_names[AGENT_PARSE_FORMAT_MAX] = {
        [AGENT_PARSE_FORMAT_NONE] = "none",
        [AGENT_PARSE_FORMAT_JSON] = "json",
        [AGENT_PARSE_FORMAT_CBOR] = "cbor",
        [AGENT_PARSE_FORMAT_LINE] = "line-protocol",
};

const char *agent_parse_reason_name(enum agent_parse_reason r)
{
        return (unsigned)r < AGENT_PARSE_REASON_MAX ? reason_names[r] : "invalid";
}

const char *agent_parse_format_name(enum agent_parse_format f)
{
        return (unsigned)f < AGENT_PARSE_FORMAT_MAX ? format_names[f] : "invalid";
}

void agent_parse_opts_default(struct agent_parse_opts *ret)
{
        struct floe_wire_limits lim;

        floe_wire_limits_default(&lim);
        *ret = (struct agent_parse_opts){
                .topic_prefix_strip = "sensors/",
                .max_payload = 64u << 10,
                .max_name_len = lim.max_name_len,
                .max_text_len = lim.max_text_len,
                .max_readings = 1000,
        };
}

/* ---- errors ---- */

/* Details end up in logs: no control characters, valid UTF-8. */
static void sanitize(char *s)
{
        size_t n = strlen(s);
        bool utf8 = floe_utf8_valid(s, n);

        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)s[i];

                if (c < 0x20 || c == 0x7f || (!utf8 && c >= 0x80))
                        s[i] = '?';
        }
}

static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void append(char *buf, size_t size, size_t *pos, const char *fmt, ...)
{
        va_list ap;
        int r;

        if (*pos >= size - 1)
                return;
        va_start(ap, fmt);
        r = vsnprintf(buf + *pos, size - *pos, fmt, ap);
        va_end(ap);
        if (r > 0)
                *pos = *pos + (size_t)r < size ? *pos + (size_t)r : size - 1;
}

static int reason_errno(enum agent_parse_reason r)
{
        switch (r) {
        case AGENT_PARSE_EMPTY:
                return -ENODATA;
        case AGENT_PARSE_TOO_LARGE:
        case AGENT_PARSE_TOO_MANY_READINGS:
        case AGENT_PARSE_TOO_COMPLEX:
        case AGENT_PARSE_TOO_DEEP:
        case AGENT_PARSE_NAME_TOO_LONG:
        case AGENT_PARSE_TEXT_TOO_LONG:
                return -EMSGSIZE;
        default:
                return -EBADMSG;
        }
}

int agent_parse_fail(struct agent_parser *p, enum agent_parse_reason reason, const char *fmt, ...)
{
        struct agent_parse_error *e = p->err;
        const struct agent_parse_loc *l = &p->loc;
        const char *sep = " at ";
        size_t pos;
        va_list ap;
        int r;

        e->reason = reason;
        va_start(ap, fmt);
        r = vsnprintf(e->detail, sizeof(e->detail), fmt, ap);
        va_end(ap);
        pos = r < 0 ? 0 : (size_t)r < sizeof(e->detail) ? (size_t)r : sizeof(e->detail) - 1;
        if (l->line) {
                append(e->detail, sizeof(e->detail), &pos, "%sline %" PRIu32, sep, l->line);
                sep = ", ";
        }
        if (l->byte != SIZE_MAX) {
                append(e->detail, sizeof(e->detail), &pos, "%sbyte %zu", sep, l->byte);
                sep = ", ";
        }
        if (l->object) {
                append(e->detail, sizeof(e->detail), &pos, "%sobject %" PRIu32, sep, l->object);
                sep = ", ";
        }
        if (l->key) {
                int shown = l->key_len > KEY_SHOWN ? KEY_SHOWN : (int)l->key_len;

                append(e->detail, sizeof(e->detail), &pos, "%skey \"%.*s\"%s", sep, shown, l->key,
                       l->key_len > KEY_SHOWN ? "..." : "");
        }
        sanitize(e->detail);
        return reason_errno(reason);
}

char *agent_parse_str_alloc(struct agent_parser *p, size_t n)
{
        char *s;

        if (n > p->str_cap - p->str_used) {
                agent_parse_fail(p, AGENT_PARSE_TOO_COMPLEX,
                                 "string scratch of %zu bytes exhausted", p->str_cap);
                return NULL;
        }
        s = p->str + p->str_used;
        p->str_used += n;
        return s;
}

/* ---- readings ---- */

static int check_name(struct agent_parser *p, const char *s, size_t len, const char *what)
{
        int r = floe_name_check(s, len, p->o.max_name_len);

        switch (r) {
        case 0:
                return 0;
        case -EINVAL:
                return agent_parse_fail(p, AGENT_PARSE_BAD_NAME, "empty %s name", what);
        case -ENAMETOOLONG:
                return agent_parse_fail(p, AGENT_PARSE_NAME_TOO_LONG,
                                        "%s name of %zu bytes, limit %" PRIu32, what, len,
                                        p->o.max_name_len);
        default:
                if (!floe_utf8_valid(s, len))
                        return agent_parse_fail(p, AGENT_PARSE_BAD_UTF8, "%s name is not UTF-8",
                                                what);
                return agent_parse_fail(p, AGENT_PARSE_BAD_NAME, "control character in %s name",
                                        what);
        }
}

int agent_parse_stage_full(struct agent_parser *p, const char *sensor, size_t sensor_len,
                           const char *metric, size_t metric_len, int64_t ts_us, double value,
                           bool value_null, const char *text, size_t text_len, unsigned checked)
{
        int r;

        if (p->n >= p->o.max_readings)
                return agent_parse_fail(p, AGENT_PARSE_TOO_MANY_READINGS,
                                        "more than %" PRIu32 " readings", p->o.max_readings);
        if (!sensor) {
                if (!p->topic_sensor)
                        return agent_parse_fail(p, AGENT_PARSE_NO_SENSOR,
                                                "no topic and no sensor in the payload");
                if (p->topic_sensor_ok == 0) {
                        r = check_name(p, p->topic_sensor, p->topic_sensor_len, "topic sensor");
                        if (r < 0)
                                return r;
                        p->topic_sensor_ok = 1;
                }
                sensor = p->topic_sensor;
                sensor_len = p->topic_sensor_len;
        } else if (sensor != p->last_sensor || sensor_len != p->last_sensor_len) {
                r = check_name(p, sensor, sensor_len, "sensor");
                if (r < 0)
                        return r;
                p->last_sensor = sensor;
                p->last_sensor_len = sensor_len;
        }
        if (!(checked & AGENT_STAGE_METRIC_OK) || metric_len == 0 ||
            metric_len > p->o.max_name_len) {
                r = check_name(p, metric, metric_len, "metric");
                if (r < 0)
                        return r;
        }
        if (!value_null && !isfinite(value))
                return agent_parse_fail(p, AGENT_PARSE_NON_FINITE, "value is not finite");
        if (text) {
                if (text_len > p->o.max_text_len)
                        return agent_parse_fail(p, AGENT_PARSE_TEXT_TOO_LONG,
                                                "text of %zu bytes, limit %" PRIu32, text_len,
                                                p->o.max_text_len);
                if (!(checked & AGENT_STAGE_TEXT_UTF8) && !floe_utf8_valid(text, text_len))
                        return agent_parse_fail(p, AGENT_PARSE_BAD_UTF8, "text is not UTF-8");
        }
        p->rd[p->n++] = (struct agent_reading){
                .sensor = sensor,
                .sensor_len = sensor_len,
                .metric = metric,
                .metric_len = metric_len,
                .ts_us = ts_us,
                .value = value_null ? 0.0 : value,
                .value_null = value_null,
                .text = text,
                .text_len = text ? text_len : 0,
        };
        return 0;
}

/* ---- time ---- */

static bool digits(const char *s, size_t n, unsigned *ret)
{
        unsigned v = 0;

        for (size_t i = 0; i < n; i++) {
                if (s[i] < '0' || s[i] > '9')
                        return false;
                v = v * 10 + (unsigned)(s[i] - '0');
        }
        *ret = v;
        return true;
}

static unsigned days_in_month(unsigned y, unsigned m)
{
        static const unsigned char dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

        return m == 2 && leap ? 29 : dm[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
        int64_t era;
        unsigned yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = (unsigned)(y - era * 400);
        doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + (int64_t)doe - 719468;
}

int agent_parse_rfc3339(const char *s, size_t len, int64_t *ret_us)
{
        unsigned y, mo, d, h, mi, sec, oh = 0, om = 0;
        int64_t frac = 0, t;
        int sign = 0;
        size_t i = 19;

        if (len < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) || s[7] != '-' ||
            !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
            s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &sec))
                return -EINVAL;
        if (s[i] == '.') {
                unsigned nd = 0;

                for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
                        if (nd < 6)
                                frac = frac * 10 + (s[i] - '0');
                if (nd == 0 || nd > 9)
                        return -EINVAL;
                for (; nd < 6; nd++)
                        frac *= 10;
        }
        if (i >= len)
                return -EINVAL;
        if (s[i] == 'Z' || s[i] == 'z') {
                i++;
        } else if (s[i] == '+' || s[i] == '-') {
                sign = s[i] == '+' ? 1 : -1;
                if (len - i != 6 || !digits(s + i + 1, 2, &oh) || s[i + 3] != ':' ||
                    !digits(s + i + 4, 2, &om))
                        return -EINVAL;
                i += 6;
        } else {
                return -EINVAL;
        }
        if (i != len || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 ||
            mi > 59 || sec > 60 || oh > 23 || om > 59)
                return -EINVAL;
        /* a leap second is the last second of a UTC minute; it maps onto the next second */
        if (sec == 60 && ((int)mi - sign * (int)om + 60) % 60 != 59)
                return -EINVAL;
        t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + sec -
            sign * (int64_t)(oh * 3600 + om * 60);
        *ret_us = t * 1000000 + frac;
        return 0;
}

/* ---- duplicate keys ---- */

void agent_parse_dup_reset(struct agent_parser *p)
{
        /* an object hashed without a duplicate is the next one's reference */
        if (p->dup_recording && !p->dup_seen) {
                p->dup_ref_cur ^= 1;
                p->dup_ref_ok = true;
        }
        p->dup_matching = p->dup_ref_ok;
        p->dup_recording = false;
        p->dup_seen = false;
        p->dup_i = 0;
        p->dup_n = 0;
        if (++p->dup_cur == 0) {
                memset(p->dup_gen, 0, sizeof(*p->dup_gen) * ((size_t)p->dup_mask + 1));
                p->dup_cur = 1;
        }
}

static bool dup_hash_add(struct agent_parser *p, const char *key, size_t len)
{
        uint32_t i = agent_bytes_hash(key, len) & p->dup_mask;

        /* callers bound the keys per object below half the table; beyond, no detection */
        if (p->dup_n > p->dup_mask / 2)
                return false;
        while (p->dup_gen[i] == p->dup_cur) {
                if (p->dup_len[i] == len && memcmp(p->dup_key[i], key, len) == 0)
                        return true;
                i = (i + 1) & p->dup_mask;
        }
        p->dup_gen[i] = p->dup_cur;
        p->dup_key[i] = key;
        p->dup_len[i] = len;
        p->dup_n++;
        return false;
}

static void dup_record(struct agent_parser *p, const char *key, size_t len)
{
        struct agent_parse_keys *k = &p->dup_ref[p->dup_ref_cur ^ 1];

        if (!p->dup_recording)
                return;
        if (k->n == AGENT_PARSE_REF_KEYS || len > 255 || len > AGENT_PARSE_REF_BYTES - k->used) {
                p->dup_recording = false;
                return;
        }
        memcpy(k->bytes + k->used, key, len);
        k->raw[k->n] = true;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)key[i] < 0x20 || (unsigned char)key[i] > 0x7e || key[i] == '"' ||
                    key[i] == '\\')
                        k->raw[k->n] = false;
        k->off[k->n] = (uint16_t)k->used;
        k->len[k->n++] = (uint8_t)len;
        k->used += (uint32_t)len;
}

bool agent_parse_dup_add(struct agent_parser *p, const char *key, size_t len)
{
        const struct agent_parse_keys *ref = &p->dup_ref[p->dup_ref_cur];
        uint32_t i = p->dup_i++;

        if (p->dup_matching) {
                if (i < ref->n && ref->len[i] == len &&
                    agent_bytes_eq(ref->bytes + ref->off[i], key, len))
                        return false;
                /* another shape: the keys so far are the reference's first i,
                 * distinct; from here on they are hashed */
                p->dup_matching = false;
                p->dup_recording = true;
                p->dup_ref[p->dup_ref_cur ^ 1].n = 0;
                p->dup_ref[p->dup_ref_cur ^ 1].used = 0;
                for (uint32_t k = 0; k < i; k++) {
                        const char *b = ref->bytes + ref->off[k];

                        dup_hash_add(p, b, ref->len[k]);
                        dup_record(p, b, ref->len[k]);
                }
        } else if (i == 0) {
                p->dup_recording = true;
                p->dup_ref[p->dup_ref_cur ^ 1].n = 0;
                p->dup_ref[p->dup_ref_cur ^ 1].used = 0;
        }
        if (dup_hash_add(p, key, len)) {
                p->dup_seen = true;
                return true;
        }
        dup_record(p, key, len);
        return false;
}

/* ---- parser ---- */

struct agent_parser *agent_parser_free(struct agent_parser *p)
{
        if (!p)
                return NULL;
        if (p->c_locale != (locale_t)0)
                freelocale(p->c_locale);
        floe_free(p->prefix);
        floe_free(p->rd);
        floe_free(p->ent);
        floe_free(p->dup_gen);
        floe_free(p->dup_key);
        floe_free(p->dup_len);
        floe_free(p->str);
        floe_free(p);
        return NULL;
}

static void agent_parser_freep(struct agent_parser **p)
{
        agent_parser_free(*p);
}

int agent_parser_new(const struct agent_parse_opts *o, struct agent_parser **ret)
{
        _cleanup_(agent_parser_freep) struct agent_parser *p = NULL;
        struct agent_parse_opts d;
        uint32_t slots = 1;
        size_t per;

        agent_parse_opts_default(&d);
        p = floe_calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->o = o ? *o : d;
        if (!o)
                p->o.topic_prefix_strip = d.topic_prefix_strip;
        p->o.max_payload = p->o.max_payload ?: d.max_payload;
        p->o.max_name_len = p->o.max_name_len ?: d.max_name_len;
        p->o.max_text_len = p->o.max_text_len ?: d.max_text_len;
        p->o.max_readings = p->o.max_readings ?: d.max_readings;
        if (p->o.max_payload > MAX_PAYLOAD_LIMIT || p->o.max_name_len > MAX_NAME_LIMIT ||
            p->o.max_text_len > MAX_TEXT_LIMIT || p->o.max_readings > MAX_READINGS_LIMIT)
                return -EINVAL;
        if (p->o.topic_prefix_strip) {
                p->prefix = floe_strdup(p->o.topic_prefix_strip);
                if (!p->prefix)
                        return -ENOMEM;
                p->prefix_len = strlen(p->prefix);
        }
        p->o.topic_prefix_strip = p->prefix;

        p->rd = floe_calloc(p->o.max_readings, sizeof(*p->rd));
        /* room for every reserved key besides the readings */
        p->ent_cap = p->o.max_readings + 8;
        p->ent = floe_calloc(p->ent_cap, sizeof(*p->ent));
        while (slots < 2 * p->ent_cap + 2)
                slots <<= 1;
        p->dup_mask = slots - 1;
        p->dup_gen = floe_calloc(slots, sizeof(*p->dup_gen));
        p->dup_key = floe_calloc(slots, sizeof(*p->dup_key));
        p->dup_len = floe_calloc(slots, sizeof(*p->dup_len));
        /* unescaped strings are shorter than their source; composed metric names are bounded */
        per = (size_t)p->o.max_name_len + 1;
        p->str_cap = p->o.max_payload + (size_t)p->o.max_readings * per;
        p->str = floe_malloc(p->str_cap);
        if (!p->rd || !p->ent || !p->dup_gen || !p->dup_key || !p->dup_len || !p->str)
                return -ENOMEM;
        p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
        if (p->c_locale == (locale_t)0)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

static bool is_space(uint8_t c)
{
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static enum agent_parse_format detect(const uint8_t *data, size_t len)
{
        size_t i = 0;

        /* a CBOR array or map head, or the self-described CBOR tag 55799 */
        if ((data[0] >= 0x80 && data[0] <= 0xbf) ||
            (len >= 3 && data[0] == 0xd9 && data[1] == 0xd9 && data[2] == 0xf7))
                return AGENT_PARSE_FORMAT_CBOR;
        while (i < len && is_space(data[i]))
                i++;
        if (i == len)
                return AGENT_PARSE_FORMAT_NONE;
        if (data[i] == '{' || data[i] == '[')
                return AGENT_PARSE_FORMAT_JSON;
        return AGENT_PARSE_FORMAT_LINE;
}

/* Parses into p->rd[0..p->n); 0 or the negative errno of a rejection. */
static int parse_all(struct agent_parser *p, const char *topic, const uint8_t *data, size_t len,
                     struct agent_parse_error *err)
{
        int r;

        *err = (struct agent_parse_error){.reason = AGENT_PARSE_OK};
        p->err = err;
        p->loc = (struct agent_parse_loc){.byte = SIZE_MAX};
        p->n = 0;
        p->str_used = 0;
        p->last_sensor = NULL;
        p->topic_sensor = NULL;
        p->topic_sensor_ok = 0;
        if (topic) {
                size_t tl = strlen(topic);

                if (p->prefix && tl >= p->prefix_len &&
                    memcmp(topic, p->prefix, p->prefix_len) == 0) {
                        topic += p->prefix_len;
                        tl -= p->prefix_len;
                }
                p->topic_sensor = topic;
                p->topic_sensor_len = tl;
        }

        if (len == 0)
                return agent_parse_fail(p, AGENT_PARSE_EMPTY, "zero-length payload");
        if (len > p->o.max_payload)
                return agent_parse_fail(p, AGENT_PARSE_TOO_LARGE, "%zu bytes, limit %zu", len,
                                        p->o.max_payload);
        err->format = detect(data, len);
        switch (err->format) {
        case AGENT_PARSE_FORMAT_CBOR:
                r = agent_parse_cbor(p, data, len);
                break;
        case AGENT_PARSE_FORMAT_JSON:
                r = agent_parse_json(p, data, len);
                break;
        case AGENT_PARSE_FORMAT_LINE:
                r = agent_parse_influx(p, data, len);
                break;
        default:
                return agent_parse_fail(p, AGENT_PARSE_EMPTY, "payload of only whitespace");
        }
        if (r < 0)
                p->n = 0;
        return r;
}

static int callback_failed(struct agent_parser *p, int r, uint32_t emitted)
{
        p->loc = (struct agent_parse_loc){.byte = SIZE_MAX};
        agent_parse_fail(p, AGENT_PARSE_CALLBACK,
                         "callback failed (errno %d) on reading %" PRIu32 " of %" PRIu32, -r,
                         emitted + 1, p->n);
        p->err->emitted = emitted;
        return r;
}

int agent_parse_payload(struct agent_parser *p, const char *topic, const uint8_t *data, size_t len,
                        agent_reading_fn fn, void *userdata, struct agent_parse_error *err)
{
        struct agent_parse_error scratch;
        int r;

        if (!p || !fn || (!data && len))
                return -EINVAL;
        r = parse_all(p, topic, data, len, err ? err : &scratch);
        if (r < 0)
                return r;
        for (uint32_t i = 0; i < p->n; i++) {
                r = fn(userdata, &p->rd[i]);
                if (r < 0)
                        return callback_failed(p, r, i);
        }
        return (int)p->n;
}

int agent_parse_payload_many(struct agent_parser *p, const char *topic, const uint8_t *data,
                             size_t len, agent_readings_fn fn, void *userdata,
                             struct agent_parse_error *err)
{
        struct agent_parse_error scratch;
        size_t taken = 0;
        int r;

        if (!p || !fn || (!data && len))
                return -EINVAL;
        r = parse_all(p, topic, data, len, err ? err : &scratch);
        if (r < 0)
                return r;
        r = p->n ? fn(userdata, p->rd, p->n, &taken) : 0;
        if (r < 0)
                return callback_failed(p, r, taken < p->n ? (uint32_t)taken : p->n);
        return (int)p->n;
}
