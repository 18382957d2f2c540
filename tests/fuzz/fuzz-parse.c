/* SPDX-License-Identifier: Apache-2.0 */
/* The ingest payload parsers on arbitrary bytes, with default and with tiny
 * limits. Every emitted reading must be valid; a rejection must emit nothing
 * and name a reason; parsing the same bytes twice must give the same result. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floe-batch.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct check {
        const struct agent_parse_opts *o;
        uint32_t n;
        uint64_t hash;
};

static void mix(struct check *c, const void *p, size_t len)
{
        const uint8_t *b = p;

        for (size_t i = 0; i < len; i++)
                c->hash = (c->hash ^ b[i]) * 0x100000001b3ULL;
}

static int check_reading(void *userdata, const struct agent_reading *r)
{
        struct check *c = userdata;

        if (floe_name_check(r->sensor, r->sensor_len, c->o->max_name_len) != 0 ||
            floe_name_check(r->metric, r->metric_len, c->o->max_name_len) != 0)
                abort();
        if (r->value_null ? r->value != 0 : !isfinite(r->value))
                abort();
        if (r->text ? r->text_len > c->o->max_text_len || !floe_utf8_valid(r->text, r->text_len)
                    : r->text_len != 0)
                abort();
        c->n++;
        mix(c, r->sensor, r->sensor_len);
        mix(c, r->metric, r->metric_len);
        mix(c, &r->ts_us, sizeof(r->ts_us));
        mix(c, &r->value, sizeof(r->value));
        mix(c, &r->value_null, sizeof(r->value_null));
        if (r->text)
                mix(c, r->text, r->text_len);
        return 0;
}

static int parse(struct agent_parser *p, const struct agent_parse_opts *o, const char *topic,
                 const uint8_t *data, size_t size, struct check *c, struct agent_parse_error *e)
{
        int r;

        *c = (struct check){.o = o};
        r = agent_parse_payload(p, topic, data, size, check_reading, c, e);
        if (r < 0) {
                if (c->n != 0 || e->reason <= AGENT_PARSE_OK ||
                    e->reason >= AGENT_PARSE_REASON_MAX || e->reason == AGENT_PARSE_CALLBACK ||
                    e->detail[0] == '\0' || !floe_utf8_valid(e->detail, strlen(e->detail)))
                        abort();
                for (const char *d = e->detail; *d; d++)
                        if ((unsigned char)*d < 0x20)
                                abort();
        } else if ((uint32_t)r != c->n || c->n > o->max_readings || e->reason != AGENT_PARSE_OK) {
                abort();
        }
        return r;
}

static void one(struct agent_parser *p, const struct agent_parse_opts *o, const char *topic,
                const uint8_t *data, size_t size)
{
        struct agent_parse_error e1, e2;
        struct check c1, c2;
        int r1 = parse(p, o, topic, data, size, &c1, &e1);
        int r2 = parse(p, o, topic, data, size, &c2, &e2);

        if (r1 != r2 || c1.hash != c2.hash || e1.reason != e2.reason ||
            strcmp(e1.detail, e2.detail) != 0)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        static struct agent_parser *std, *tiny;
        static struct agent_parse_opts std_o, tiny_o;

        if (!std) {
                agent_parse_opts_default(&std_o);
                tiny_o = (struct agent_parse_opts){
                        .topic_prefix_strip = "sensors/",
                        .max_payload = 512,
                        .max_name_len = 12,
                        .max_text_len = 16,
                        .max_readings = 4,
                };
                if (agent_parser_new(&std_o, &std) < 0 || agent_parser_new(&tiny_o, &tiny) < 0)
                        abort();
                agent_parse_opts_default(&std_o); /* the limits in effect */
        }
        one(std, &std_o, "sensors/fuzz", data, size);
        one(tiny, &tiny_o, size % 2 ? NULL : "sensors/f", data, size);
        return 0;
}
