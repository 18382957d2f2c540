/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Ingest parser benchmark (make bench): readings per second of one core for
 * the three payload formats, each carrying 20 readings of one sensor: a JSON
 * map of 20 metrics, 20 lines of line protocol, a CBOR map of 20 metrics.
 * Times are thread CPU time; each figure is the best of several rounds.
 * With FLOE_BENCH_JSON=DIR the figures also go to DIR/bench-parse.json.
 */
#include "bench-json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"

#define METRICS 20
#define ROUNDS  5
#define ROUND_S 0.4

static double cpu_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct payload {
        const char *name;
        uint8_t buf[4096];
        size_t len;
};

static void add(struct payload *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct payload *p, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vsnprintf((char *)p->buf + p->len, sizeof(p->buf) - p->len, fmt, ap);
        va_end(ap);
        if (r < 0 || (size_t)r >= sizeof(p->buf) - p->len)
                abort();
        p->len += (size_t)r;
}

static void put(struct payload *p, const void *b, size_t n)
{
        if (n > sizeof(p->buf) - p->len)
                abort();
        memcpy(p->buf + p->len, b, n);
        p->len += n;
}

static void put_text(struct payload *p, const char *s)
{
        uint8_t h = (uint8_t)(0x60 | strlen(s)); /* short texts only */

        put(p, &h, 1);
        put(p, s, strlen(s));
}

static void make_json(struct payload *p)
{
        p->name = "JSON map of 20 metrics";
        add(p, "{\"ts\":1763676000123");
        for (int i = 0; i < METRICS; i++)
                add(p, ",\"metric%02d\":%.1f", i, 21.5 + i * 0.7);
        add(p, "}");
}

static void make_line(struct payload *p)
{
        p->name = "line protocol, 20 lines";
        for (int i = 0; i < METRICS; i++)
                add(p, "boiler,sensor=boiler-3 metric%02d=%.1f 1763676000123000000\n", i,
                    21.5 + i * 0.7);
}

static void put_f64(struct payload *p, double v)
{
        uint8_t f[9] = {0xfb};
        uint64_t u;

        memcpy(&u, &v, 8);
        for (int k = 0; k < 8; k++)
                f[1 + k] = (uint8_t)(u >> (56 - 8 * k));
        put(p, f, sizeof(f));
}

static void make_cbor(struct payload *p)
{
        p->name = "CBOR map of 20 metrics";
        put(p, (const uint8_t[]){0xb8, METRICS + 1}, 2);
        put_text(p, "ts");
        put(p, (const uint8_t[]){0xc1}, 1); /* tag 1: epoch seconds */
        put_f64(p, 1763676000.123);
        for (int i = 0; i < METRICS; i++) {
                char name[16];

                snprintf(name, sizeof(name), "metric%02d", i);
                put_text(p, name);
                put_f64(p, 21.5 + i * 0.7);
        }
}

static int sink(void *userdata, const struct agent_reading *r)
{
        *(double *)userdata += r->value;
        return 0;
}

int main(void)
{
        struct payload pl[3] = {{0}};
        struct agent_parser *p;
        json_t *rows = json_array();
        double check = 0;

        make_json(&pl[0]);
        make_line(&pl[1]);
        make_cbor(&pl[2]);
        if (agent_parser_new(NULL, &p) < 0)
                return 1;
        printf("| payload | bytes | readings | payloads/s | readings/s | ns/reading |\n");
        printf("|---|---:|---:|---:|---:|---:|\n");
        for (int k = 0; k < 3; k++) {
                struct agent_parse_error e;
                double best = 0;
                int n = agent_parse_payload(p, "sensors/boiler-3", pl[k].buf, pl[k].len, sink,
                                            &check, &e);

                if (n != METRICS) {
                        fprintf(stderr, "bench-parse: %s: %d (%s: %s)\n", pl[k].name, n,
                                agent_parse_reason_name(e.reason), e.detail);
                        return 1;
                }
                for (int round = 0; round < ROUNDS; round++) {
                        double t0 = cpu_now(), t;
                        uint64_t iters = 0;

                        do {
                                for (int i = 0; i < 1000; i++)
                                        agent_parse_payload(p, "sensors/boiler-3", pl[k].buf,
                                                            pl[k].len, sink, &check, NULL);
                                iters += 1000;
                                t = cpu_now() - t0;
                        } while (t < ROUND_S);
                        if ((double)iters / t > best)
                                best = (double)iters / t;
                }
                printf("| %s | %zu | %d | %.0f | %.0f | %.0f |\n", pl[k].name, pl[k].len, n, best,
                       best * n, 1e9 / (best * n));
                json_array_append_new(rows, json_pack("{s:s, s:I, s:i, s:f, s:f, s:f}", "label",
                                                      pl[k].name, "bytes", (json_int_t)pl[k].len,
                                                      "readings", n, "payloads_per_s", best,
                                                      "readings_per_s", best * n, "ns_per_reading",
                                                      1e9 / (best * n)));
        }
        printf("\nOne core, thread CPU time, best of %d rounds; readings go to a callback that "
               "sums values (checksum %.0f).\n",
               ROUNDS, check > 0 ? 1.0 : 0.0);
        agent_parser_free(p);
        return bench_json_write("bench-parse", json_pack("{s:s, s:i, s:o}", "bench", "bench-parse",
                                                         "rounds", ROUNDS, "payloads", rows)) < 0
                       ? 1
                       : 0;
}
