/* SPDX-License-Identifier: Apache-2.0 */
/* The agent's JSON reader against jansson, an independent RFC 8259 parser, on
 * arbitrary bytes: whatever jansson rejects must be rejected (the agent is
 * stricter only about depth, number length, raw NUL bytes between tokens, which
 * jansson skips, and the shapes of docs/ingest.md),
 * and a flat object of numbers, strings and literals that both accept must
 * give jansson's values exactly, in order. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_GOT 64

struct got {
        uint32_t n;
        struct {
                const char *metric, *text;
                size_t metric_len, text_len;
                double v;
                bool null;
        } r[MAX_GOT];
};

static int collect(void *userdata, const struct agent_reading *r)
{
        struct got *g = userdata;

        if (g->n < MAX_GOT) {
                g->r[g->n].metric = r->metric;
                g->r[g->n].metric_len = r->metric_len;
                g->r[g->n].text = r->text;
                g->r[g->n].text_len = r->text_len;
                g->r[g->n].v = r->value;
                g->r[g->n].null = r->value_null;
        }
        g->n++;
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct agent_parser *p;
        const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL;
        struct agent_parse_error e;
        struct got g = {0};
        const char *k;
        json_t *j, *v;
        size_t i = 0;
        uint32_t n = 0;
        int r;

        if (!p && agent_parser_new(NULL, &p) < 0)
                abort();
        while (i < size &&
               (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n'))
                i++;
        if (i == size || (data[i] != '{' && data[i] != '['))
                return 0; /* another format */
        r = agent_parse_payload(p, "sensors/fuzz", data, size, collect, &g, &e);
        j = json_loadb((const char *)data, size, flags, NULL);
        if (!j) {
                if (r >= 0)
                        abort(); /* jansson rejects what we accept */
                return 0;
        }
        if (r < 0) {
                /* accepted by jansson, rejected by us: only for reasons beyond syntax, or
                 * for a raw NUL byte, which jansson skips between tokens but RFC 8259
                 * does not allow */
                if ((e.reason == AGENT_PARSE_BAD_JSON || e.reason == AGENT_PARSE_BAD_UTF8) &&
                    !memchr(data, 0, size))
                        abort();
                json_decref(j);
                return 0;
        }
        if (json_is_object(j) && json_object_size(j) <= MAX_GOT) {
                bool plain = true;

                json_object_foreach(j, k, v)
                {
                        plain = plain && !json_is_object(v) && !json_is_array(v);
                        plain = plain && strcmp(k, "sensor") != 0 && strcmp(k, "ts") != 0 &&
                                strcmp(k, "time") != 0 && strcmp(k, "timestamp") != 0 &&
                                strcmp(k, "metric") != 0 && strcmp(k, "value") != 0;
                }
                if (plain) {
                        if (g.n != json_object_size(j))
                                abort();
                        json_object_foreach(j, k, v)
                        {
                                if (g.r[n].metric_len != strlen(k) ||
                                    memcmp(g.r[n].metric, k, strlen(k)) != 0)
                                        abort();
                                if (json_is_real(v)) {
                                        double d = json_real_value(v);

                                        if (memcmp(&d, &g.r[n].v, sizeof(d)) != 0)
                                                abort();
                                } else if (json_is_string(v)) {
                                        if (!g.r[n].text ||
                                            g.r[n].text_len != json_string_length(v) ||
                                            memcmp(g.r[n].text, json_string_value(v),
                                                   g.r[n].text_len) != 0)
                                                abort();
                                } else if (json_is_null(v) && !g.r[n].null) {
                                        abort();
                                }
                                n++;
                        }
                }
        }
        json_decref(j);
        return 0;
}
