/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Commit latency of the lake (make bench): a one-file append to floe.events tables already
 * holding 10, 10,000 and 100,000 data files, as the uploader commits: the table writer
 * (ice_writer) writes 100 rows of one partition and commits them through the SQLite catalog
 * (file:// warehouse), then snapshot expiry keeps the last 100 snapshots. The big tables are
 * built with a few commits of many synthetic data files each (the metadata is the same whether
 * the Parquet files exist or not). After WARMUP appends (expiry in steady state, manifests
 * merging as in service), median and p90 of the commit, of the expiry and of both: without
 * fsync (what grows with the table, if anything) and with it (what a disk adds); the tables
 * take turns so that the disk's varying fsync latency hits all three alike. Target: the
 * commit at 100,000 files within 2x of the one at 10. With FLOE_BENCH_JSON=DIR the figures
 * also go to DIR/bench-lake.json.
 */
#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <sys/types.h>
#include <inttypes.h>
#include "bench-json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-writer.h"
#include "store.h"

#define WARMUP   105 /* appends before measuring: expiry keeps 100 snapshots */
#define MEASURED 60  /* appends measured without fsync */
#define DURABLE  20  /* and with fsync */
#define ROWS     100
#define T0       INT64_C(1763676000000000)
#define HOUR_US  INT64_C(3600000000)

static void die(const char *what, int r)
{
        fprintf(stderr, "bench-lake: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static double now(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path) < 0 ? -errno : 0;
}

static int cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return (x > y) - (x < y);
}

static double pct(double *v, size_t n, double p)
{
        qsort(v, n, sizeof(*v), cmp_double);
        return v[(size_t)(p * (double)(n - 1) + 0.5)];
}

/* A synthetic data file of floe.events: partition, counts and bounds like a real one's. */
static void synthetic(struct ice_data_file *f, const char *location, size_t i)
{
        char path[1024], tenant[16];
        int64_t ts = T0 + (int64_t)(i % 24) * HOUR_US, seq = (int64_t)i;
        struct ice_datum part[2] = {{.type = ICE_TYPE_STRING}, {.type = ICE_TYPE_INT}};
        int r = 0;

        snprintf(tenant, sizeof(tenant), "tenant-%02zu", i % 50);
        part[0].bytes = (uint8_t *)tenant;
        part[0].len = strlen(tenant);
        part[1].v.i = (int32_t)(ts / HOUR_US);
        snprintf(path, sizeof(path), "%s/data/tenant=%s/synthetic-%08zu.parquet", location, tenant,
                 i);
        *f = (struct ice_data_file){.content = ICE_CONTENT_DATA,
                                    .record_count = 50000,
                                    .file_size = 2 << 20,
                                    .sort_order_id = 0};
        f->path = floe_strdup(path);
        f->format = floe_strdup("PARQUET");
        f->partition = floe_calloc(2, sizeof(*f->partition));
        if (!f->path || !f->format || !f->partition)
                die("synthetic file", -ENOMEM);
        f->n_partition = 2;
        r = ice_datum_copy(&part[0], &f->partition[0]);
        if (r == 0)
                r = ice_datum_copy(&part[1], &f->partition[1]);
        for (int32_t id = 1; r == 0 && id <= 10; id++) {
                struct ice_column_metrics m = {.field_id = id,
                                               .column_size = 200000,
                                               .value_count = 50000,
                                               .null_count = id == 6 || id == 7 ? 100 : 0,
                                               .nan_count = id == 6 ? 0 : -1};

                if (id == 5 || id == 9 || id == 10) {
                        m.lower = (uint8_t *)&ts;
                        m.upper = (uint8_t *)&seq;
                        m.lower_len = m.upper_len = 8;
                } else if (id <= 4) {
                        m.lower = m.upper = (uint8_t *)tenant;
                        m.lower_len = m.upper_len = strlen(tenant);
                }
                r = ice_data_file_add_column(f, &m);
        }
        if (r < 0)
                die("synthetic file", r);
}

struct rows {
        struct parquet_str tenant[ROWS], device[ROWS], sensor[ROWS], metric[ROWS], text[ROWS];
        int64_t ts[ROWS], recv[ROWS], epoch[ROWS], seq[ROWS];
        double value[ROWS];
        struct parquet_values v[10];
};

static void make_rows(struct rows *r)
{
        for (size_t i = 0; i < ROWS; i++) {
                r->tenant[i] = (struct parquet_str){"acme", 4};
                r->device[i] = (struct parquet_str){"gw-0001", 7};
                r->sensor[i] = (struct parquet_str){"boiler-3", 8};
                r->metric[i] = (struct parquet_str){"temp", 4};
                r->ts[i] = T0 + (int64_t)i * 1000000;
                r->recv[i] = T0 + HOUR_US;
                r->epoch[i] = 1;
                r->seq[i] = (int64_t)i;
                r->value[i] = (double)i / 8;
        }
        r->v[0] = (struct parquet_values){r->tenant, NULL};
        r->v[1] = (struct parquet_values){r->device, NULL};
        r->v[2] = (struct parquet_values){r->sensor, NULL};
        r->v[3] = (struct parquet_values){r->metric, NULL};
        r->v[4] = (struct parquet_values){r->ts, NULL};
        r->v[5] = (struct parquet_values){r->value, NULL};
        r->v[6] = (struct parquet_values){r->text, NULL}; /* all null: see run() */
        r->v[7] = (struct parquet_values){r->recv, NULL};
        r->v[8] = (struct parquet_values){r->epoch, NULL};
        r->v[9] = (struct parquet_values){r->seq, NULL};
}

struct table {
        size_t files;
        char dir[256];
        struct lake_store *s;
        struct lake_catalog *cat;
        struct ice_writer *w;
        double build_s;
        double commit[MEASURED], expire[MEASURED], both[MEASURED];
        size_t manifests;
};

/* The table's store and writer again, with or without fsync. */
static void reopen(struct table *t, bool fsync)
{
        struct lake_store_opts so;
        char url[300], err[256];
        int r;

        ice_writer_free(t->w);
        lake_store_close(t->s);
        snprintf(url, sizeof(url), "file://%s", t->dir);
        lake_store_opts_default(&so);
        so.fsync = fsync;
        r = lake_store_open(url, &so, &t->s);
        if (r == 0)
                r = ice_writer_open(t->s, t->cat, "floe", "events", NULL, &t->w, err, sizeof(err));
        if (r < 0)
                die("reopen", r);
}

/* A table holding t->files synthetic data files: a few commits of many. */
static void build(struct table *t)
{
        const char *tmp = getenv("TMPDIR");
        char url[300], db[300], loc[400], err[256];
        struct lake_store_opts so;
        struct ice_catalog_sql sql;
        struct ice_table_def def;
        struct ice_metadata *md;
        struct ice_table *tb;
        struct ice_io io;
        size_t per = t->files < 10000 ? t->files : 10000;
        double t0;
        int r;

        snprintf(t->dir, sizeof(t->dir), "%s/floe-bench-lake-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(t->dir))
                die("mkdtemp", -errno);
        snprintf(url, sizeof(url), "file://%s", t->dir);
        snprintf(db, sizeof(db), "%s/catalog.db", t->dir);
        snprintf(loc, sizeof(loc), "%s/floe/events", url);
        lake_store_opts_default(&so); /* fsync on, as in service */
        r = lake_store_open(url, &so, &t->s);
        if (r == 0)
                r = lake_catalog_open(db, NULL, &t->cat);
        if (r < 0)
                die("open", r);
        ice_io_store(t->s, &io);
        ice_catalog_sql(&sql, t->cat, "floe", "events");
        if (ice_floe_table_def(FLOE_KIND_EVENTS, loc, &def) < 0 ||
            ice_metadata_new(&def, T0 / 1000, &md) < 0 ||
            ice_table_create(&io, &sql.ops, md, &tb, err, sizeof(err)) < 0)
                die("create", -EIO);
        ice_metadata_free(md);
        t0 = now();
        for (size_t done = 0; done < t->files; done += per) {
                struct ice_data_file *f = floe_calloc(per, sizeof(*f));

                if (!f)
                        die("build", -ENOMEM);
                for (size_t i = 0; i < per; i++)
                        synthetic(&f[i], loc, done + i);
                r = ice_table_append(tb, f, per, NULL, 0, NULL);
                if (r < 0)
                        die(tb->error, r);
                for (size_t i = 0; i < per; i++)
                        ice_data_file_clear(&f[i]);
                floe_free(f);
        }
        t->build_s = now() - t0;
        ice_table_free(tb);
        r = ice_writer_open(t->s, t->cat, "floe", "events", NULL, &t->w, err, sizeof(err));
        if (r < 0)
                die(err, r);
}

/* Append number k: 100 rows, commit, expiry; timed into slot (-1: not timed). */
static void append(struct table *t, struct rows *rows, size_t k, ssize_t slot)
{
        struct ice_expire_opts eo = {.retain_last = 100};
        struct ice_strv gone = {0};
        struct ice_table *wt = ice_writer_table(t->w);
        double a, b, c;
        int r;

        for (size_t i = 0; i < ROWS; i++)
                rows->seq[i] = (int64_t)(k * ROWS + i);
        r = ice_writer_write(t->w, rows->v, ROWS);
        a = now();
        if (r == 0)
                r = ice_writer_commit(t->w, NULL, NULL);
        if (r < 0)
                die(ice_writer_error(t->w), r);
        b = now();
        eo.now_ms = wt->clock_ms();
        eo.older_than_ms = eo.now_ms;
        r = ice_table_expire(wt, &eo, true, &gone);
        if (r < 0)
                die(wt->error, r);
        c = now();
        ice_strv_clear(&gone);
        if (slot >= 0) {
                t->commit[slot] = (b - a) * 1e3;
                t->expire[slot] = (c - b) * 1e3;
                t->both[slot] = (c - a) * 1e3;
        }
}

static void finish(struct table *t)
{
        struct ice_manifest_file *mf;
        const struct ice_snapshot *cur = ice_metadata_current_snapshot(ice_writer_table(t->w)->md);

        if (ice_table_manifests(ice_writer_table(t->w), cur, &mf, &t->manifests) == 0)
                ice_manifest_files_free(mf, t->manifests);
        ice_writer_free(t->w);
        lake_catalog_close(t->cat);
        lake_store_close(t->s);
        nftw(t->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static json_t *pct_json(double *v, size_t n)
{
        return json_pack("{s:f, s:f}", "p50", pct(v, n, 0.5), "p90", pct(v, n, 0.9));
}

/* One mode's figures of the three tables. */
static json_t *mode_json(struct table *t, bool durable, size_t n)
{
        json_t *tables = json_array();

        for (size_t i = 0; i < 3; i++)
                json_array_append_new(tables,
                                      json_pack("{s:I, s:f, s:o, s:o, s:o}", "files",
                                                (json_int_t)t[i].files, "build_s", t[i].build_s,
                                                "commit_ms", pct_json(t[i].commit, n), "expire_ms",
                                                pct_json(t[i].expire, n), "total_ms",
                                                pct_json(t[i].both, n)));
        return json_pack("{s:b, s:I, s:o}", "fsync", durable, "appends", (json_int_t)n, "tables",
                         tables);
}

int main(void)
{
        static uint8_t no_text[ROWS];
        struct table *t = calloc(3, sizeof(*t));
        struct rows *rows = calloc(1, sizeof(*rows));
        json_t *modes = json_array(), *manifests = json_array();

        if (!rows || !t)
                die("memory", -ENOMEM);
        make_rows(rows);
        rows->v[6].valid = no_text;
        t[0].files = 10;
        t[1].files = 10000;
        t[2].files = 100000;
        printf("one-file append (%d rows, one partition) + expiry keeping 100 snapshots, as "
               "the uploader commits;\nfile:// warehouse, SQLite catalog; the three tables take "
               "turns (they share the disk's mood);\n%d appends each before measuring\n",
               ROWS, WARMUP);
        for (size_t i = 0; i < 3; i++)
                build(&t[i]);
        for (size_t k = 0; k < WARMUP; k++)
                for (size_t i = 0; i < 3; i++)
                        append(&t[i], rows, k, -1);
        for (int durable = 0; durable < 2; durable++) {
                size_t n = durable ? DURABLE : MEASURED;

                for (size_t i = 0; i < 3; i++)
                        if (durable)
                                reopen(&t[i], true);
                for (size_t k = 0; k < n; k++)
                        for (size_t i = 0; i < 3; i++)
                                append(&t[i], rows, WARMUP + durable * MEASURED + k, (ssize_t)k);
                printf("\n%s, %zu appends:\n",
                       durable ? "store fsync on (as in service)"
                               : "store fsync off (the table's own "
                                 "cost; SQLite still syncs)",
                       n);
                printf("%10s %8s %9s %9s %9s %9s %9s %9s\n", "files", "build s", "commit50",
                       "commit90", "expire50", "expire90", "total50", "total90");
                for (size_t i = 0; i < 3; i++)
                        printf("%10zu %8.2f %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms %7.2fms\n",
                               t[i].files, t[i].build_s, pct(t[i].commit, n, 0.5),
                               pct(t[i].commit, n, 0.9), pct(t[i].expire, n, 0.5),
                               pct(t[i].expire, n, 0.9), pct(t[i].both, n, 0.5),
                               pct(t[i].both, n, 0.9));
                printf("100,000 files vs 10: commit %.2fx median, %.2fx p90; commit + expiry "
                       "%.2fx median, %.2fx p90 (target <= 2x)\n",
                       pct(t[2].commit, n, 0.5) / pct(t[0].commit, n, 0.5),
                       pct(t[2].commit, n, 0.9) / pct(t[0].commit, n, 0.9),
                       pct(t[2].both, n, 0.5) / pct(t[0].both, n, 0.5),
                       pct(t[2].both, n, 0.9) / pct(t[0].both, n, 0.9));
                json_array_append_new(modes, mode_json(t, durable, n));
        }
        for (size_t i = 0; i < 3; i++) {
                finish(&t[i]);
                json_array_append_new(manifests,
                                      json_pack("{s:I, s:I}", "files", (json_int_t)t[i].files,
                                                "manifests", (json_int_t)t[i].manifests));
                printf("%s%zu files: %zu manifests in the last snapshot", i ? ", " : "\n",
                       t[i].files, t[i].manifests);
        }
        printf("\n");
        free(rows);
        free(t);
        return bench_json_write("bench-lake",
                                json_pack("{s:s, s:i, s:i, s:i, s:o, s:o}", "bench", "bench-lake",
                                          "rows", ROWS, "warmup_appends", WARMUP, "retain_last",
                                          100, "modes", modes, "last_snapshot_manifests",
                                          manifests)) < 0;
}
