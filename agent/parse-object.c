/* SPDX-License-Identifier: Apache-2.0 */
/* The object shapes shared by JSON and CBOR payloads (docs/ingest.md §3), and
 * their times (§7). */
#include <errno.h>
#include <math.h>
#include <string.h>

#include "parse-internal.h"

/* 2^63 as a double: doubles strictly inside (-2^63, 2^63) convert to int64. */
#define TWO63 9223372036854775808.0

static int time_from_number(struct agent_parser *p, const struct agent_pv *v, int64_t *ret)
{
        double x;

        if (v->tag == AGENT_PV_TAG_EPOCH) {
                if (v->is_int) {
                        if (v->i > INT64_MAX / 1000000 || v->i < -(INT64_MAX / 1000000))
                                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME,
                                                        "epoch time out of range");
                        *ret = v->i * 1000000;
                        return 0;
                }
                x = v->d * 1e6;
        } else if (v->is_int || (fabs(v->d) < TWO63 && v->d == nearbyint(v->d))) {
                /* integral: exact arithmetic (JSON numbers arrive as doubles) */
                int64_t i = v->is_int ? v->i : (int64_t)v->d, us;

                if (i > -100000000000LL && i < 100000000000LL)
                        us = i * 1000000;
                else if (i > -100000000000000LL && i < 100000000000000LL)
                        us = i * 1000;
                else
                        us = i;
                if (us == AGENT_TS_NONE)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "time out of range");
                *ret = us;
                return 0;
        } else {
                double a = fabs(v->d);

                x = a < 1e11 ? v->d * 1e6 : a < 1e14 ? v->d * 1e3 : v->d;
        }
        if (!isfinite(v->d))
                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "time is not finite");
        x = nearbyint(x);
        if (!(x > -TWO63 && x < TWO63))
                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "time out of range");
        *ret = (int64_t)x;
        return 0;
}

static const char *pv_type(const struct agent_pv *v)
{
        switch (v->kind) {
        case AGENT_PV_NUMBER:
                return v->tag ? "tagged number" : "number";
        case AGENT_PV_BOOL:
                return "boolean";
        case AGENT_PV_NULL:
                return "null";
        case AGENT_PV_STRING:
                return v->tag ? "tagged string" : "string";
        default:
                return v->type;
        }
}

int agent_parse_time(struct agent_parser *p, const struct agent_pv *v, int64_t *ret)
{
        switch (v->kind) {
        case AGENT_PV_NULL:
                *ret = AGENT_TS_NONE;
                return 0;
        case AGENT_PV_STRING:
                if (agent_parse_rfc3339(v->s, v->len, ret) < 0)
                        return agent_parse_fail(p, AGENT_PARSE_BAD_TIME,
                                                "time is not an RFC 3339 date-time");
                return 0;
        case AGENT_PV_NUMBER:
                return time_from_number(p, v, ret);
        default:
                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME, "time is a %s", pv_type(v));
        }
}

/* ---- the object shapes of JSON and CBOR ---- */

static void at_entry(struct agent_parser *p, const struct agent_pentry *e)
{
        p->loc.key = e->key;
        p->loc.key_len = e->key_len;
        p->loc.byte = e->off;
}

static bool plain(const struct agent_pv *v, enum agent_pv_kind kind)
{
        return v->kind == kind && v->tag == AGENT_PV_UNTAGGED;
}

/* {"metric": ..., "value": ..., "text": ..., "sensor": ..., "ts": ...} */
static int object_single(struct agent_parser *p, const struct agent_pentry *e, size_t n,
                         const char *sensor, size_t sensor_len, int64_t ts)
{
        const struct agent_pentry *metric = NULL, *value = NULL, *text = NULL;
        const char *m = "value", *t = NULL;
        size_t mlen = 5, tlen = 0;
        double v = 0;
        bool null = true;

        for (size_t i = 0; i < n; i++) {
                switch ((enum agent_key_class)e[i].cls) {
                case KEY_METRIC:
                        metric = &e[i];
                        break;
                case KEY_VALUE:
                        value = &e[i];
                        break;
                case KEY_TEXT:
                        text = &e[i];
                        break;
                case KEY_METRIC_NAME:
                        at_entry(p, &e[i]);
                        return agent_parse_fail(p, AGENT_PARSE_UNKNOWN_KEY,
                                                "unknown key in a single-reading object");
                default:
                        break;
                }
        }
        if (metric) {
                at_entry(p, metric);
                if (!plain(&metric->v, AGENT_PV_STRING))
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                "metric is a %s, not a string",
                                                pv_type(&metric->v));
                m = metric->v.s;
                mlen = metric->v.len;
        }
        if (text) {
                at_entry(p, text);
                if (plain(&text->v, AGENT_PV_STRING)) {
                        t = text->v.s;
                        tlen = text->v.len;
                } else if (!plain(&text->v, AGENT_PV_NULL)) {
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                "text is a %s, not a string", pv_type(&text->v));
                }
        }
        if (value) {
                const struct agent_pv *pv = &value->v;

                at_entry(p, value);
                if (plain(pv, AGENT_PV_NUMBER)) {
                        v = pv->d;
                        null = false;
                } else if (plain(pv, AGENT_PV_BOOL)) {
                        v = pv->b ? 1 : 0;
                        null = false;
                } else if (plain(pv, AGENT_PV_STRING)) {
                        if (t)
                                return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                        "both a string value and a text");
                        t = pv->s;
                        tlen = pv->len;
                } else if (!plain(pv, AGENT_PV_NULL)) {
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE, "value is a %s",
                                                pv_type(pv));
                }
        } else if (!t) {
                p->loc.key = NULL;
                return agent_parse_fail(p, AGENT_PARSE_MISSING_VALUE,
                                        "single-reading object without value or text");
        }
        if (metric)
                at_entry(p, metric);
        else
                p->loc.key = NULL;
        return agent_parse_stage(
                p, sensor, sensor_len, m, mlen, ts, v, null, t, tlen,
                (metric ? 0 : AGENT_STAGE_METRIC_OK) |
                        (t && (text ? text->v.utf8 : value->v.utf8) ? AGENT_STAGE_TEXT_UTF8 : 0));
}

int agent_parse_object(struct agent_parser *p, struct agent_pentry *e, size_t n)
{
        const struct agent_pentry *time = NULL, *sens = NULL;
        const char *sensor = NULL;
        size_t sensor_len = 0;
        int64_t ts = AGENT_TS_NONE;
        bool single = false;
        int r;

        for (size_t i = 0; i < n; i++) {
                e[i].cls = (uint8_t)agent_parse_key_class(e[i].key, e[i].key_len);
                switch ((enum agent_key_class)e[i].cls) {
                case KEY_TIME:
                        if (time) {
                                at_entry(p, &e[i]);
                                return agent_parse_fail(p, AGENT_PARSE_BAD_TIME,
                                                        "more than one time key");
                        }
                        time = &e[i];
                        break;
                case KEY_SENSOR:
                        sens = &e[i];
                        break;
                case KEY_METRIC:
                case KEY_VALUE:
                        single = true;
                        break;
                default:
                        break;
                }
        }
        if (sens) {
                at_entry(p, sens);
                if (!plain(&sens->v, AGENT_PV_STRING))
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE,
                                                "sensor is a %s, not a string", pv_type(&sens->v));
                sensor = sens->v.s;
                sensor_len = sens->v.len;
        }
        if (time) {
                at_entry(p, time);
                r = agent_parse_time(p, &time->v, &ts);
                if (r < 0)
                        return r;
        }
        if (single)
                return object_single(p, e, n, sensor, sensor_len, ts);

        /* a map of metrics: every other member is one reading */
        for (size_t i = 0; i < n; i++) {
                const struct agent_pv *v = &e[i].v;
                enum agent_key_class c = (enum agent_key_class)e[i].cls;
                double x = 0;
                bool null = false;
                const char *t = NULL;

                if (c == KEY_TIME || c == KEY_SENSOR)
                        continue;
                at_entry(p, &e[i]);
                if (plain(v, AGENT_PV_NUMBER)) {
                        x = v->d;
                } else if (plain(v, AGENT_PV_BOOL)) {
                        x = v->b ? 1 : 0;
                } else if (plain(v, AGENT_PV_NULL)) {
                        null = true;
                } else if (plain(v, AGENT_PV_STRING)) {
                        null = true;
                        t = v->s;
                } else {
                        return agent_parse_fail(p, AGENT_PARSE_BAD_VALUE_TYPE, "value is a %s",
                                                pv_type(v));
                }
                r = agent_parse_stage(p, sensor, sensor_len, e[i].key, e[i].key_len, ts, x, null, t,
                                      t ? v->len : 0,
                                      (e[i].clean ? AGENT_STAGE_METRIC_OK : 0) |
                                              (t && v->utf8 ? AGENT_STAGE_TEXT_UTF8 : 0));
                if (r < 0)
                        return r;
        }
        p->loc.key = NULL;
        p->loc.byte = SIZE_MAX;
        return 0;
}
