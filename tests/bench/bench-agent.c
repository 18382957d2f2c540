/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Agent benchmark (make bench): readings per second of one core through the
 * whole in-process path — payload parse -> ring -> windows -> event batch ->
 * wire encode -> outbox — for each payload format, on the reference profile
 * (1,000 sensors x 20 metrics at 1 Hz, one payload per sensor per second,
 * 60 s windows). Also heap allocations per reading in steady state (every
 * malloc of the process, libraries included, is counted by interposition)
 * and outbox bytes per reading. With FLOE_BENCH_JSON=DIR the figures also go
 * to DIR/bench-agent.json.
 */
#include <errno.h>
#include <inttypes.h>
#include "bench-json.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h> /* count instructions of the timed loop only */
#else
#define CALLGRIND_START_INSTRUMENTATION
#define CALLGRIND_STOP_INSTRUMENTATION
#endif

#include "floe-wire.h"
#include "outbox.h"
#include "parse.h"
#include "pipeline.h"
#include "profile.h"
#include "ring.h"
#include "window.h"

#define SECONDS 120
#define WARMUP  65 /* a full window and its grace, so steady state includes closes */
#define ROUNDS  3  /* per format (BENCH_AGENT_ROUNDS); the best counts (shared, noisy machines) */

/* ---- every allocation in the process ---- */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);
static uint64_t allocs;

void *malloc(size_t n)
{
        allocs++;
        return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
        allocs++;
        return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
        allocs++;
        return __libc_realloc(p, n);
}

void free(void *p)
{
        __libc_free(p);
}

static double cpu_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "bench-agent: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

/* F_STREAM is the stream of bench_agent_mqtt.py in process: one topic, a JSON
 * map of 20 metrics m0..m19 with two decimals, each payload on its own
 * arrival time, the agent's default batch settings. */
enum fmt { F_JSON, F_LINE, F_CBOR, F_STREAM, F_MAX };
static const char *const fmt_keys[F_MAX] = {"json", "line", "cbor", "stream"};
static const char *const fmt_names[F_MAX] = {"JSON map, 20 metrics", "line protocol, 20 lines",
                                             "CBOR map, 20 metrics", "JSON map, MQTT bench"};

struct buf {
        uint8_t p[8192];
        size_t n;
};

static void add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct buf *b, const char *fmt, ...)
{
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vsnprintf((char *)b->p + b->n, sizeof(b->p) - b->n, fmt, ap);
        va_end(ap);
        if (r < 0 || (size_t)r >= sizeof(b->p) - b->n)
                abort();
        b->n += (size_t)r;
}

static void put(struct buf *b, const void *d, size_t n)
{
        memcpy(b->p + b->n, d, n);
        b->n += n;
}

static void cbor_head(struct buf *b, uint8_t major, uint64_t v)
{
        uint8_t h[9];
        size_t n = 1;

        if (v < 24) {
                h[0] = (uint8_t)(major << 5 | v);
        } else if (v < 256) {
                h[0] = (uint8_t)(major << 5 | 24);
                h[1] = (uint8_t)v;
                n = 2;
        } else {
                h[0] = (uint8_t)(major << 5 | 27);
                for (int i = 0; i < 8; i++)
                        h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
                n = 9;
        }
        put(b, h, n);
}

static void cbor_text(struct buf *b, const char *s)
{
        cbor_head(b, 3, strlen(s));
        put(b, s, strlen(s));
}

static void cbor_double(struct buf *b, double v)
{
        uint8_t h[9] = {0xfb};
        uint64_t u;

        memcpy(&u, &v, 8);
        for (int i = 0; i < 8; i++)
                h[1 + i] = (uint8_t)(u >> (56 - 8 * i));
        put(b, h, 9);
}

/* A value as Python's json.dumps(round(x, 2)) writes it. */
static void add_cents(struct buf *b, int64_t c)
{
        const char *sign = c < 0 ? "-" : "";
        int64_t a = c < 0 ? -c : c;

        if (a % 100 == 0)
                add(b, "%s%" PRId64 ".0", sign, a / 100);
        else if (a % 10 == 0)
                add(b, "%s%" PRId64 ".%" PRId64, sign, a / 100, a % 100 / 10);
        else
                add(b, "%s%" PRId64 ".%02" PRId64, sign, a / 100, a % 100);
}

/* One sensor's payload of one second: 20 rows of the profile. */
static void payload(enum fmt f, const struct profile *p, const struct profile_row *rows,
                    struct buf *b)
{
        b->n = 0;
        if (f == F_STREAM) {
                /* bench_agent_mqtt.py: message i has ts t0 + i / 1000 s + i % 1000 * 997 µs */
                static struct profile rng = {.rng = 1};
                static uint64_t i;

                add(b, "{\"ts\":%" PRId64,
                    (int64_t)(PROFILE_T0 + (int64_t)(i / 1000) * 1000000 +
                              (int64_t)(i % 1000) * 997));
                for (int m = 0; m < PROFILE_METRICS; m++) {
                        add(b, ",\"m%d\":", m);
                        add_cents(b, (int64_t)(profile_rand(&rng) % 10001) - 5000);
                }
                add(b, "}");
                i++;
                (void)p;
                (void)rows;
        } else if (f == F_JSON) {
                add(b, "{\"ts\":%" PRId64, rows[0].ts);
                for (int m = 0; m < PROFILE_METRICS; m++)
                        add(b, ",\"%s\":%.15g", p->metric_name[rows[m].metric], rows[m].value);
                add(b, "}");
        } else if (f == F_LINE) {
                for (int m = 0; m < PROFILE_METRICS; m++)
                        add(b, "%s value=%.15g %" PRId64 "000\n", p->metric_name[rows[m].metric],
                            rows[m].value, rows[m].ts);
        } else {
                cbor_head(b, 5, PROFILE_METRICS + 1);
                cbor_text(b, "ts");
                cbor_head(b, 0, (uint64_t)rows[0].ts);
                for (int m = 0; m < PROFILE_METRICS; m++) {
                        cbor_text(b, p->metric_name[rows[m].metric]);
                        cbor_double(b, rows[m].value);
                }
        }
}

struct ctx {
        struct agent_pipeline *pipe;
        int64_t now;
};

/* As the agent takes a payload from its local broker */
static int on_readings(void *ud, const struct agent_reading *r, size_t n, size_t *ret_taken)
{
        struct ctx *c = ud;

        return agent_pipeline_accept_many(c->pipe, r, n, c->now, ret_taken);
}

struct result {
        double seconds;
        uint64_t readings;
        uint64_t steady_readings;
        uint64_t steady_allocs;
        double outbox_bytes_per_reading;
};

/* All payloads of one format, made before the clock starts. */
struct payloads {
        uint8_t *data;
        size_t *off;
        size_t *len;
        char (*topic)[32];
        size_t n;
};

static void make_payloads(enum fmt f, const struct profile_row *rows, const struct profile *p,
                          struct payloads *ret)
{
        size_t n = (size_t)SECONDS * PROFILE_SENSORS, cap = n * 1200, used = 0;
        static struct buf b;

        ret->data = malloc(cap);
        ret->off = malloc(n * sizeof(size_t));
        ret->len = malloc(n * sizeof(size_t));
        ret->topic = malloc(n * sizeof(*ret->topic));
        if (!ret->data || !ret->off || !ret->len || !ret->topic)
                die("payloads", ENOMEM);
        for (size_t i = 0; i < n; i++) {
                const struct profile_row *pr = rows + i * PROFILE_METRICS;

                payload(f, p, pr, &b);
                if (used + b.n > cap)
                        die("payloads", ENOSPC);
                memcpy(ret->data + used, b.p, b.n);
                ret->off[i] = used;
                ret->len[i] = b.n;
                used += b.n;
                snprintf(ret->topic[i], sizeof(ret->topic[i]), "sensors/%s",
                         f == F_STREAM ? "bench-sensor" : p->sensor_name[pr->sensor]);
        }
        ret->n = n;
}

static void free_payloads(struct payloads *pl)
{
        free(pl->data);
        free(pl->off);
        free(pl->len);
        free(pl->topic);
}

static struct result run(enum fmt f, const struct payloads *pl, const char *dir, int round)
{
        char ring_path[512], ob_dir[512], err[256];
        struct agent_outbox_opts oo;
        struct agent_window_opts wo;
        struct agent_ring_recovery rec;
        struct agent_outbox_stats os;
        struct agent_ring *ring;
        struct agent_window *win;
        struct agent_outbox *ob;
        struct agent_parser *parser;
        struct agent_parse_opts po;
        struct agent_parse_error perr;
        struct agent_pipeline_opts pipo = {
                .identity = "acme.gw-0001",
                .ship = AGENT_SHIP_BOTH,
                .batch_max_events = f == F_STREAM ? 50000 : 20000,
                .batch_max_bytes = 1 << 20,
                .batch_max_age_us = 10000000,
                .level = FLOE_WIRE_LEVEL_DEFAULT,
        };
        struct ctx c = {0};
        struct result res = {0};
        uint64_t allocs0 = 0, steady0 = 0;
        double t0;
        int r;

        /* one ring file for every round, as in a long-running agent: its pages
         * are not faulted in fresh each time */
        snprintf(ring_path, sizeof(ring_path), "%s/ring", dir);
        snprintf(ob_dir, sizeof(ob_dir), "%s/outbox-%d-%d", dir, f, round);
        r = agent_ring_open(ring_path, 256ULL << 20, AGENT_RING_SYNC_NONE, &ring, &rec, err,
                            sizeof(err));
        if (r < 0)
                die(err, r);
        agent_outbox_opts_default(&oo);
        oo.sync = AGENT_OUTBOX_SYNC_NONE;
        oo.max_bytes = 1ULL << 30;
        r = agent_outbox_open(ob_dir, &oo, &ob, err, sizeof(err));
        if (r < 0)
                die(err, r);
        agent_window_opts_default(&wo);
        wo.floor_us = 0;
        r = agent_window_new(&wo, &win);
        agent_parse_opts_default(&po);
        po.topic_prefix_strip = "sensors/";
        r = r ?: agent_parser_new(&po, &parser);
        floe_wire_limits_default(&pipo.lim);
        r = r ?: agent_pipeline_new(&pipo, ring, win, ob, PROFILE_T0, &c.pipe);
        if (r < 0)
                die("setup", r);

        t0 = cpu_now();
        CALLGRIND_START_INSTRUMENTATION;
        for (int s = 0; s < SECONDS; s++) {
                if (s == WARMUP) {
                        allocs0 = allocs;
                        steady0 = res.readings;
                }
                c.now = PROFILE_T0 + (int64_t)(s + 1) * 1000000;
                for (int k = 0; k < PROFILE_SENSORS; k++) {
                        size_t i = (size_t)s * PROFILE_SENSORS + (size_t)k;

                        if (f == F_STREAM) /* every MQTT message has its own arrival */
                                c.now = PROFILE_T0 + (int64_t)s * 1000000 + k * 997 + 1000;

                        r = agent_parse_payload_many(parser, pl->topic[i], pl->data + pl->off[i],
                                                     pl->len[i], on_readings, &c, &perr);
                        if (r < 0) {
                                fprintf(stderr, "bench-agent: %s: %s: %s\n", fmt_names[f],
                                        agent_parse_reason_name(perr.reason), perr.detail);
                                exit(1);
                        }
                        res.readings += (uint64_t)r;
                }
                c.now = PROFILE_T0 + (int64_t)(s + 1) * 1000000;
                r = agent_pipeline_tick(c.pipe, c.now, (uint64_t)c.now);
                if (r < 0)
                        die("tick", r);
        }
        r = agent_pipeline_drain(c.pipe, c.now + 120000000);
        res.seconds = cpu_now() - t0;
        CALLGRIND_STOP_INSTRUMENTATION;
        res.steady_allocs = allocs - allocs0;
        res.steady_readings = res.readings - steady0;
        agent_outbox_stats(ob, &os);
        res.outbox_bytes_per_reading = (double)os.bytes / (double)res.readings;
        if (r < 0)
                die("drain", r);
        agent_pipeline_free(c.pipe);
        agent_parser_free(parser);
        agent_window_free(win);
        agent_outbox_close(ob);
        agent_ring_close(ring);
        return res;
}

static void rmtree_outbox(const char *dir)
{
        char cmd[600];

        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
        if (system(cmd) != 0)
                fprintf(stderr, "bench-agent: could not remove %s\n", dir);
}

/* The figures as JSON (bench-json.h). */
static void write_json(const struct result *res, int rounds)
{
        json_t *formats = json_array(), *o;

        for (int f = 0; f < F_MAX; f++)
                if (res[f].readings)
                        json_array_append_new(
                                formats, json_pack("{s:s, s:s, s:I, s:f, s:f, s:f, s:f}", "key",
                                                   fmt_keys[f], "label", fmt_names[f], "readings",
                                                   (json_int_t)res[f].readings, "readings_per_s",
                                                   (double)res[f].readings / res[f].seconds,
                                                   "ns_per_reading",
                                                   res[f].seconds * 1e9 / (double)res[f].readings,
                                                   "allocations_per_reading",
                                                   (double)res[f].steady_allocs /
                                                           (double)res[f].steady_readings,
                                                   "outbox_bytes_per_reading",
                                                   res[f].outbox_bytes_per_reading));
        o = json_pack("{s:s, s:i, s:i, s:i, s:i, s:o}", "bench", "bench-agent", "seconds_of_data",
                      SECONDS, "sensors", PROFILE_SENSORS, "metrics", PROFILE_METRICS, "rounds",
                      rounds, "formats", formats);
        if (bench_json_write("bench-agent", o) < 0)
                exit(1);
}

int main(void)
{
        size_t total = (size_t)SECONDS * PROFILE_SENSORS * PROFILE_METRICS;
        struct profile_row *rows = malloc(total * sizeof(*rows));
        static struct profile p;
        char dir[] = "/tmp/floe-bench-agent-XXXXXX";
        struct result res[F_MAX] = {0};
        const char *only = getenv("BENCH_AGENT_FORMAT"); /* 0, 1, 2: profile one */
        const char *nrounds = getenv("BENCH_AGENT_ROUNDS");
        int rounds = nrounds ? (int)strtol(nrounds, NULL, 10) : ROUNDS;

        if (!rows || !mkdtemp(dir))
                die("setup", errno);
        profile_init(&p, 42);
        for (int s = 0; s < SECONDS; s++)
                profile_second(&p, rows + (size_t)s * PROFILE_SENSORS * PROFILE_METRICS);
        /* rows of one sensor and second are consecutive in the profile */
        for (int f = 0; f < F_MAX; f++) {
                struct payloads pl;

                if (only && strtol(only, NULL, 10) != f)
                        continue;
                make_payloads((enum fmt)f, rows, &p, &pl);
                for (int round = 0; round < (rounds > 0 ? rounds : 1); round++) {
                        struct result one = run((enum fmt)f, &pl, dir, round);

                        if (!res[f].readings || one.seconds < res[f].seconds)
                                res[f] = one;
                }
                free_payloads(&pl);
        }
        rmtree_outbox(dir);

        printf("## Agent in-process: parse -> ring -> windows -> batch -> encode -> outbox\n\n");
        printf("Reference profile, %d s of data (%zu readings); one payload per sensor per "
               "second; windows of 60 s; event batches of 20,000; one core's CPU time, best of %d "
               "rounds. The last row is the stream of bench_agent_mqtt.py (one topic, 20 metrics "
               "of two decimals, 1,000 payloads a second, each its own arrival) with the agent's "
               "default batches of 50,000.\n\n",
               SECONDS, total, rounds > 0 ? rounds : 1);
        printf("| payload format            | readings/s (M) | ns/reading | allocations/reading "
               "(steady) | outbox bytes/reading |\n");
        printf("|---------------------------|----------------|------------|---------------------"
               "---------|----------------------|\n");
        for (int f = 0; f < F_MAX; f++)
                if (res[f].readings)
                        printf("| %-25s | %14.2f | %10.0f | %28.6f | %20.3f |\n", fmt_names[f],
                               (double)res[f].readings / res[f].seconds / 1e6,
                               res[f].seconds * 1e9 / (double)res[f].readings,
                               (double)res[f].steady_allocs / (double)res[f].steady_readings,
                               res[f].outbox_bytes_per_reading);
        printf("\nAllocations count every malloc/calloc/realloc of the process (libraries "
               "included) after the first %d s:",
               WARMUP);
        for (int f = 0; f < F_MAX; f++)
                if (res[f].readings)
                        printf(" %" PRIu64 " for %" PRIu64 " readings (%s);", res[f].steady_allocs,
                               res[f].steady_readings, fmt_names[f]);
        printf(" they come from outbox segment rolls, not from readings.\n");
        write_json(res, rounds > 0 ? rounds : 1);
        free(rows);
        return 0;
}
