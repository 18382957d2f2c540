/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Wire-format benchmark (make bench): encode and decode throughput on one
 * core and wire bytes per event on the reference telemetry profile
 * (profile.h), next to the same rows as NDJSON and NDJSON+zstd measured in
 * the same run. Times are thread CPU time; each figure is the best of
 * several rounds. With FLOE_BENCH_JSON=DIR the figures also go to
 * DIR/bench-wire.json (scripts/run-bench, scripts/perf-report).
 */
#include <errno.h>
#include "bench-json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zstd.h>

#include "floe-batch.h"
#include "floe-ndjson.h"
#include "floe-wire.h"
#include "profile.h"

#define SECONDS 60
#define ROUNDS  5

static double cpu_now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int r)
{
        fprintf(stderr, "bench-wire: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

struct batchset {
        int n;
        struct floe_batch **b;
        uint64_t events;
};

static double build(struct batchset *set, const struct profile_row *rows, const struct profile *p,
                    int tenths_per_batch)
{
        uint32_t per = (uint32_t)tenths_per_batch * PROFILE_SENSORS * PROFILE_METRICS / 10;
        double t0;

        set->n = SECONDS * 10 / tenths_per_batch;
        set->b = calloc((size_t)set->n, sizeof(*set->b));
        set->events = (uint64_t)set->n * per;
        for (int k = 0; k < set->n; k++) {
                int r = floe_batch_new(FLOE_KIND_EVENTS, NULL, &set->b[k]);

                r = r ?: floe_batch_reserve(set->b[k], per, 2048, 65536, true);
                r = r ?: floe_batch_set_identity(set->b[k], "acme.gw-0001");
                if (r < 0)
                        die("batch", r);
                set->b[k]->epoch = 0x5eed;
                set->b[k]->seq = (uint64_t)k + 1;
                set->b[k]->created_us = PROFILE_T0 + (int64_t)(k + 1) * tenths_per_batch * 100000;
        }
        t0 = cpu_now();
        for (int k = 0; k < set->n; k++) {
                const struct profile_row *row = rows + (size_t)k * per;

                for (uint32_t i = 0; i < per; i++) {
                        const char *sn = p->sensor_name[row[i].sensor];
                        const char *mn = p->metric_name[row[i].metric];
                        uint32_t series;
                        int r;

                        r = floe_batch_intern_series(set->b[k], sn, strlen(sn), mn, strlen(mn),
                                                     &series);
                        r = r
                                    ?: floe_batch_add_event(set->b[k], series, row[i].ts,
                                                            row[i].value, false, NULL, 0);
                        if (r < 0)
                                die("add", r);
                }
        }
        return cpu_now() - t0;
}

static bool same(const struct floe_batch *a, const struct floe_batch *b)
{
        if (a->nrows != b->nrows || a->nseries != b->nseries || a->seq != b->seq)
                return false;
        for (uint32_t i = 0; i < a->nrows; i++)
                if (a->ts[i] != b->ts[i] || a->row_series[i] != b->row_series[i] ||
                    memcmp(&a->value[i], &b->value[i], 8) != 0)
                        return false;
        return true;
}

struct result {
        double bytes;
        double enc_s;
        double dec_s;
};

static struct result bench_wire(struct batchset *set, int level)
{
        struct floe_wire_encoder *enc;
        struct floe_wire_decoder *dec;
        struct floe_batch *out;
        struct result res = {.enc_s = 1e9, .dec_s = 1e9};
        uint8_t **frames = calloc((size_t)set->n, sizeof(*frames));
        size_t *lens = calloc((size_t)set->n, sizeof(*lens));
        int r;

        r = floe_wire_encoder_new(level, NULL, &enc);
        r = r ?: floe_wire_decoder_new(NULL, &dec);
        r = r ?: floe_batch_new(FLOE_KIND_EVENTS, NULL, &out);
        if (r < 0)
                die("codec", r);
        for (int round = 0; round < ROUNDS; round++) {
                double t0 = cpu_now(), t;

                res.bytes = 0;
                for (int k = 0; k < set->n; k++) {
                        const uint8_t *data;
                        size_t len;

                        r = floe_wire_encode(enc, set->b[k], &data, &len);
                        if (r < 0)
                                die("encode", r);
                        if (round == 0) {
                                frames[k] = malloc(len);
                                memcpy(frames[k], data, len);
                                lens[k] = len;
                        }
                        res.bytes += (double)len;
                }
                t = cpu_now() - t0;
                res.enc_s = t < res.enc_s ? t : res.enc_s;
        }
        for (int round = 0; round < ROUNDS; round++) {
                double t0 = cpu_now(), t;

                for (int k = 0; k < set->n; k++) {
                        struct floe_wire_error err;

                        r = floe_wire_decode_into(dec, frames[k], lens[k], out, &err);
                        if (r < 0)
                                die("decode", r);
                        if (round == 0 && !same(set->b[k], out)) {
                                fprintf(stderr, "bench-wire: batch %d does not round-trip\n", k);
                                exit(1);
                        }
                }
                t = cpu_now() - t0;
                res.dec_s = t < res.dec_s ? t : res.dec_s;
        }
        for (int k = 0; k < set->n; k++)
                free(frames[k]);
        free(frames);
        free(lens);
        floe_batch_free(out);
        floe_wire_encoder_free(enc);
        floe_wire_decoder_free(dec);
        return res;
}

/* NDJSON peers: format (and compress), then decompress (and parse). */
static void bench_ndjson(struct batchset *set, struct result *plain, struct result *zst)
{
        ZSTD_CCtx *cctx = ZSTD_createCCtx();
        ZSTD_DCtx *dctx = ZSTD_createDCtx();
        struct floe_batch *back;
        size_t cap = (size_t)set->b[0]->nrows * 160;
        char *text = malloc(cap), *text2 = malloc(cap);
        size_t zcap = ZSTD_compressBound(cap);
        char *z = malloc(zcap);
        char err[200];

        *plain = (struct result){.enc_s = 1e9, .dec_s = 1e9};
        *zst = *plain;
        if (floe_batch_new(FLOE_KIND_EVENTS, NULL, &back) < 0)
                die("batch", -ENOMEM);
        for (int round = 0; round < 2; round++) {
                double fmt = 0, comp = 0, decomp = 0, parse = 0;

                plain->bytes = zst->bytes = 0;
                for (int k = 0; k < set->n; k++) {
                        const struct floe_batch *b = set->b[k];
                        size_t len = 0, zlen, n;
                        double t0 = cpu_now(), t1, t2, t3;

                        for (uint32_t i = 0; i < b->nrows; i++) {
                                int w = floe_ndjson_format_row(b, i, text + len, cap - len);

                                if (w < 0)
                                        die("format", w);
                                len += (size_t)w;
                        }
                        t1 = cpu_now();
                        zlen = ZSTD_compressCCtx(cctx, z, zcap, text, len, 3);
                        t2 = cpu_now();
                        n = ZSTD_decompressDCtx(dctx, text2, cap, z, zlen);
                        t3 = cpu_now();
                        if (ZSTD_isError(zlen) || n != len)
                                die("zstd", EIO);
                        floe_batch_reset(back);
                        back->identity[0] = '\0';
                        for (char *line = text2, *end = text2 + len; line < end;) {
                                char *nl = memchr(line, '\n', (size_t)(end - line));
                                int r = floe_ndjson_parse_row(back, line, (size_t)(nl - line), err,
                                                              sizeof(err));

                                if (r < 0) {
                                        fprintf(stderr, "bench-wire: parse: %s\n", err);
                                        exit(1);
                                }
                                line = nl + 1;
                        }
                        parse += cpu_now() - t3;
                        fmt += t1 - t0;
                        comp += t2 - t1;
                        decomp += t3 - t2;
                        plain->bytes += (double)len;
                        zst->bytes += (double)zlen;
                }
                plain->enc_s = fmt < plain->enc_s ? fmt : plain->enc_s;
                plain->dec_s = parse < plain->dec_s ? parse : plain->dec_s;
                zst->enc_s = fmt + comp < zst->enc_s ? fmt + comp : zst->enc_s;
                zst->dec_s = decomp + parse < zst->dec_s ? decomp + parse : zst->dec_s;
        }
        floe_batch_free(back);
        ZSTD_freeCCtx(cctx);
        ZSTD_freeDCtx(dctx);
        free(text);
        free(text2);
        free(z);
}

static void row(const char *name, const struct result *r, double events, double ndjson_bytes)
{
        printf("| %-26s | %9.3f | %8.1fx | %11.2f | %11.2f |\n", name, r->bytes / events,
               ndjson_bytes / r->bytes, events / r->enc_s / 1e6, events / r->dec_s / 1e6);
}

static json_t *row_json(const char *label, const struct result *r, double events)
{
        return json_pack("{s:s, s:f, s:f, s:f}", "label", label, "bytes_per_event",
                         r->bytes / events, "encode_events_per_s", events / r->enc_s,
                         "decode_events_per_s", events / r->dec_s);
}

int main(void)
{
        size_t total = (size_t)SECONDS * PROFILE_SENSORS * PROFILE_METRICS;
        struct profile_row *rows = malloc(total * sizeof(*rows));
        static struct profile p;
        struct batchset sets[4];
        static const int batch_tenths[4] = {100, 10, 300, 25}; /* tenths of a second */
        struct result ndjson, ndjson_zst, wire[4], wire3;
        double append_s;

        profile_init(&p, 42);
        for (int s = 0; s < SECONDS; s++)
                profile_second(&p, rows + (size_t)s * PROFILE_SENSORS * PROFILE_METRICS);
        append_s = build(&sets[0], rows, &p, batch_tenths[0]);
        for (int i = 1; i < 4; i++)
                build(&sets[i], rows, &p, batch_tenths[i]);

        for (int i = 0; i < 4; i++)
                wire[i] = bench_wire(&sets[i], FLOE_WIRE_LEVEL_DEFAULT);
        wire3 = bench_wire(&sets[0], 3);
        bench_ndjson(&sets[0], &ndjson, &ndjson_zst);

        printf("## Wire format: reference profile (%d sensors x %d metrics at 1 Hz, %d s, %zu "
               "events)\n\n",
               PROFILE_SENSORS, PROFILE_METRICS, SECONDS, total);
        printf("Batches of 10 s (200,000 events) unless named; zstd level %d unless named.\n"
               "Throughput in million events per second of one core's CPU time (best of "
               "rounds).\n\n",
               FLOE_WIRE_LEVEL_DEFAULT);
        printf("| %-26s | %9s | %9s | %11s | %11s |\n", "format", "bytes/ev", "vs NDJSON",
               "encode M/s", "decode M/s");
        printf("|----------------------------|-----------|-----------|-------------|-------------|"
               "\n");
        row("NDJSON", &ndjson, (double)total, ndjson.bytes);
        row("NDJSON + zstd (level 3)", &ndjson_zst, (double)total, ndjson.bytes);
        row("floe wire", &wire[0], (double)total, ndjson.bytes);
        row("floe wire, zstd level 3", &wire3, (double)total, ndjson.bytes);
        row("floe wire, 1 s batches", &wire[1], (double)total, ndjson.bytes);
        row("floe wire, 2.5 s batches", &wire[3], (double)total, ndjson.bytes);
        row("floe wire, 30 s batches", &wire[2], (double)total, ndjson.bytes);
        printf("\nBuilding batches from rows (intern sensor and metric names, append): %.2f M "
               "events/s\n",
               (double)total / append_s / 1e6);
        printf("NDJSON encode = format rows; NDJSON decode = parse rows into a batch (jansson).\n");
        return bench_json_write(
                       "bench-wire",
                       json_pack("{s:s, s:I, s:i, s:i, s:I, s:i, s:{s:o, s:o, s:o, s:o, s:o, s:o, "
                                 "s:o}, s:f}",
                                 "bench", "bench-wire", "events", (json_int_t)total, "sensors",
                                 PROFILE_SENSORS, "metrics", PROFILE_METRICS, "batch_events",
                                 (json_int_t)sets[0].events / sets[0].n, "zstd_level",
                                 FLOE_WIRE_LEVEL_DEFAULT, "formats", "ndjson",
                                 row_json("NDJSON", &ndjson, (double)total), "ndjson_zstd3",
                                 row_json("NDJSON + zstd (level 3)", &ndjson_zst, (double)total),
                                 "wire", row_json("floe wire", &wire[0], (double)total),
                                 "wire_zstd3",
                                 row_json("floe wire, zstd level 3", &wire3, (double)total),
                                 "wire_1s",
                                 row_json("floe wire, 1 s batches", &wire[1], (double)total),
                                 "wire_2_5s",
                                 row_json("floe wire, 2.5 s batches", &wire[3], (double)total),
                                 "wire_30s",
                                 row_json("floe wire, 30 s batches", &wire[2], (double)total),
                                 "append_events_per_s", (double)total / append_s)) < 0;
}
