/* SPDX-License-Identifier: Apache-2.0 */
/* The table writer: routing, rolling, metrics modes, commits with the caller's statements,
 * conflicts, failures and their clean-up; floe batches as rows; the Parquet page reader;
 * compaction and verification; commits whose outcome is unknown. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-maint.h"
#include "ice-writer.h"
#include "store.h"
#include "test-iceberg-io.h"

#define T0      INT64_C(1763676000000000) /* 2025-11-20T22:00:00Z */
#define HOUR_US INT64_C(3600000000)

struct fx {
        char dir[256], url[300], db[300];
        struct lake_store *s;
        struct lake_catalog *cat;
};

static int setup(void **state)
{
        struct fx *f = calloc(1, sizeof(*f));
        struct lake_store_opts o;
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        snprintf(f->dir, sizeof(f->dir), "%s/floe-writer-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        *state = f;
        if (!mkdtemp(f->dir))
                return -1;
        snprintf(f->url, sizeof(f->url), "file://%s/wh", f->dir);
        snprintf(f->db, sizeof(f->db), "%s/catalog.db", f->dir);
        mkdir(f->url + 7, 0755);
        lake_store_opts_default(&o);
        o.fsync = false;
        if (lake_store_open(f->url, &o, &f->s) < 0)
                return -1;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        lake_catalog_close(f->cat);
        lake_store_close(f->s);
        test_rmtree(f->dir);
        free(f);
        return 0;
}

/* floe.events, with extra properties. */
static void create_events(struct fx *f, const struct ice_kv *props, size_t n_props)
{
        struct ice_kv all[16];
        struct ice_table_def def;
        struct ice_metadata *md;
        struct ice_table *t;
        struct ice_catalog_sql sql;
        struct ice_io io;
        char loc[512], err[256];

        snprintf(loc, sizeof(loc), "%s/floe/events", f->url);
        assert_int_equal(ice_floe_table_def(FLOE_KIND_EVENTS, loc, &def), 0);
        for (size_t i = 0; i < def.n_properties; i++)
                all[i] = def.properties[i];
        for (size_t i = 0; i < n_props; i++)
                all[def.n_properties + i] = props[i];
        def.properties = all;
        def.n_properties += n_props;
        assert_int_equal(ice_metadata_new(&def, T0 / 1000, &md), 0);
        ice_io_store(f->s, &io);
        if (f->cat)
                ice_catalog_sql(&sql, f->cat, "floe", "events");
        assert_int_equal(ice_table_create(&io, f->cat ? &sql.ops : NULL, md, &t, err, sizeof(err)),
                         0);
        ice_table_free(t);
        ice_metadata_free(md);
}

/* Rows of floe.events: tenant i % n_tenants, hour (i / 7) % n_hours, seq = i. */
struct rows {
        size_t n;
        char names[8][32];
        struct parquet_str *tenant, *device, *sensor, *metric, *text;
        int64_t *ts, *recv, *epoch, *seq;
        double *value;
        uint8_t *value_ok, *text_ok;
        struct parquet_values v[10];
};

static void rows_make(struct rows *r, size_t n, size_t tenants, size_t hours, size_t first)
{
        *r = (struct rows){.n = n};
        r->tenant = calloc(n, sizeof(*r->tenant));
        r->device = calloc(n, sizeof(*r->device));
        r->sensor = calloc(n, sizeof(*r->sensor));
        r->metric = calloc(n, sizeof(*r->metric));
        r->text = calloc(n, sizeof(*r->text));
        r->ts = calloc(n, 8);
        r->recv = calloc(n, 8);
        r->epoch = calloc(n, 8);
        r->seq = calloc(n, 8);
        r->value = calloc(n, 8);
        r->value_ok = calloc(n, 1);
        r->text_ok = calloc(n, 1);
        assert_non_null(r->value_ok);
        for (size_t k = 0; k < 8; k++)
                snprintf(r->names[k], sizeof(r->names[k]), "tenant-%zu", k);
        for (size_t i = 0; i < n; i++) {
                size_t g = first + i;

                r->tenant[i] = (struct parquet_str){r->names[g % tenants], 8};
                r->device[i] = (struct parquet_str){"gw-0001", 7};
                r->sensor[i] = (struct parquet_str){"boiler-3", 8};
                r->metric[i] = (struct parquet_str){g % 2 ? "temp" : "pressure", g % 2 ? 4 : 8};
                r->text[i] = (struct parquet_str){"open", 4};
                r->text_ok[i] = g % 5 == 0;
                r->ts[i] = T0 + (int64_t)((g / 7) % hours) * HOUR_US + (int64_t)g * 1000;
                r->recv[i] = T0 + 5 * HOUR_US;
                r->epoch[i] = -42;
                r->seq[i] = (int64_t)g;
                r->value[i] = (double)g / 4;
                r->value_ok[i] = g % 3 != 0;
        }
        r->v[0] = (struct parquet_values){r->tenant, NULL};
        r->v[1] = (struct parquet_values){r->device, NULL};
        r->v[2] = (struct parquet_values){r->sensor, NULL};
        r->v[3] = (struct parquet_values){r->metric, NULL};
        r->v[4] = (struct parquet_values){r->ts, NULL};
        r->v[5] = (struct parquet_values){r->value, r->value_ok};
        r->v[6] = (struct parquet_values){r->text, r->text_ok};
        r->v[7] = (struct parquet_values){r->recv, NULL};
        r->v[8] = (struct parquet_values){r->epoch, NULL};
        r->v[9] = (struct parquet_values){r->seq, NULL};
}

static void rows_free(struct rows *r)
{
        void *p[] = {r->tenant, r->device, r->sensor, r->metric, r->text,     r->ts,
                     r->recv,   r->epoch,  r->seq,    r->value,  r->value_ok, r->text_ok};

        for (size_t i = 0; i < ELEMENTSOF(p); i++)
                free(p[i]);
}

static struct ice_writer *open_writer(struct fx *f, const struct ice_writer_opts *o)
{
        struct ice_writer *w = NULL;
        char err[256];
        size_t n;

        assert_int_equal(ice_writer_open(f->s, f->cat, "floe", "events", o, &w, err, sizeof(err)),
                         0);
        ice_writer_columns(w, &n);
        assert_int_equal(n, 10);
        return w;
}

/* The live data files of the current snapshot. */
struct files {
        struct ice_data_file f[256];
        size_t n;
};

static int collect(void *ud, const struct ice_manifest_file *mf, const struct ice_manifest_entry *e)
{
        struct files *fs = ud;

        (void)mf;
        assert_true(fs->n < ELEMENTSOF(fs->f));
        return ice_data_file_copy(&e->file, &fs->f[fs->n++]);
}

static void files_of(struct ice_table *t, struct files *fs)
{
        fs->n = 0;
        assert_int_equal(ice_table_refresh(t), 0);
        assert_int_equal(ice_table_scan(t, -1, true, collect, fs), 0);
}

static void files_clear(struct files *fs)
{
        for (size_t i = 0; i < fs->n; i++)
                ice_data_file_clear(&fs->f[i]);
        fs->n = 0;
}

/* Reads leaf `leaf` of every row group of a data file (as kind) and calls check per row. */
static size_t read_column(struct fx *f, const char *location, size_t leaf, enum parquet_kind kind,
                          void (*check)(void *ud, const struct ice_pq_column *c, size_t i),
                          void *ud)
{
        struct parquet_footer *ft;
        struct ice_pq_src src = {.fd = -1, .store = f->s};
        char key[1024], err[256];
        size_t rows = 0;

        assert_int_equal(lake_store_key(f->s, location, key, sizeof(key)), 0);
        src.key = key;
        assert_int_equal(lake_store_size(f->s, key, &src.size), 0);
        assert_int_equal(ice_pq_footer(&src, &ft, err, sizeof(err)), 0);
        for (size_t g = 0; g < ft->n_row_groups; g++) {
                struct ice_pq_column c;

                assert_int_equal(ice_pq_read_chunk(&src, ft, g, leaf, kind, &c, err, sizeof(err)),
                                 0);
                for (size_t i = 0; i < c.n; i++)
                        check(ud, &c, i);
                rows += c.n;
                ice_pq_column_clear(&c);
        }
        parquet_footer_free(ft);
        return rows;
}

struct part_check {
        const struct ice_data_file *df;
        uint64_t seen;
};

static void check_tenant(void *ud, const struct ice_pq_column *c, size_t i)
{
        struct part_check *pc = ud;
        const struct parquet_str *s = &((const struct parquet_str *)c->data)[i];

        assert_int_equal(s->len, pc->df->partition[0].len);
        assert_memory_equal(s->ptr, pc->df->partition[0].bytes, s->len);
}

static void check_hour(void *ud, const struct ice_pq_column *c, size_t i)
{
        struct part_check *pc = ud;
        int64_t ts = ((const int64_t *)c->data)[i];

        assert_int_equal(ts / HOUR_US, pc->df->partition[1].v.i);
}

static void sum_seq(void *ud, const struct ice_pq_column *c, size_t i)
{
        struct part_check *pc = ud;

        pc->seen += (uint64_t)((const int64_t *)c->data)[i] + 1;
}

static size_t count_parquet(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *e;
        size_t n = 0;

        if (!d)
                return 0;
        while ((e = readdir(d))) {
                char p[1024];

                if (e->d_name[0] == '.')
                        continue;
                snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
                if (strstr(e->d_name, ".parquet"))
                        n++;
                else if (e->d_type == DT_DIR)
                        n += count_parquet(p);
        }
        closedir(d);
        return n;
}

static size_t files_on_disk(struct fx *f)
{
        char p[512];

        snprintf(p, sizeof(p), "%s/floe/events/data", f->url + 7);
        return count_parquet(p);
}

static void problem_count(void *ud, const char *what, const char *problem)
{
        (void)what;
        (void)problem;
        (*(size_t *)ud)++;
}

static size_t verify(struct fx *f, struct ice_table *t)
{
        struct ice_verify_result res;
        size_t n = 0;

        assert_int_equal(ice_table_refresh(t), 0);
        assert_int_equal(ice_table_verify(t, f->s, problem_count, &n, &res), 0);
        assert_int_equal(res.problems, n);
        return n;
}

static void test_route_and_commit(void **state)
{
        struct fx *f = *state;
        struct ice_kv sum[] = {{(char *)"floe.test", (char *)"1"}};
        struct ice_writer_commit c = {.summary = sum, .n_summary = 1};
        struct ice_writer_result res;
        struct ice_writer_pending p;
        struct ice_writer *w;
        struct files fs;
        struct rows r;
        uint64_t total = 0, seqsum = 0;

        create_events(f, NULL, 0);
        w = open_writer(f, NULL);
        rows_make(&r, 600, 3, 2, 0);
        assert_int_equal(ice_writer_write(w, r.v, 300), 0);
        ice_writer_pending(w, &p);
        assert_int_equal(p.rows, 300);
        assert_int_equal(p.open_files, 6);
        /* the second half through pointers into the same arrays */
        for (size_t k = 0; k < 10; k++) {
                size_t n, width = ice_writer_width(ice_writer_columns(w, &n)[k].kind);

                r.v[k].data = (const uint8_t *)r.v[k].data + 300 * width;
                if (r.v[k].valid)
                        r.v[k].valid += 300;
        }
        assert_int_equal(ice_writer_write(w, r.v, 300), 0);
        assert_int_equal(ice_writer_commit(w, &c, &res), 0);
        assert_true(res.snapshot_id > 0);
        assert_int_equal(res.files, 6);
        assert_int_equal(res.records, 600);
        assert_int_equal(res.retries, 0);
        ice_writer_pending(w, &p);
        assert_int_equal(p.files + p.rows, 0);
        files_of(ice_writer_table(w), &fs);
        assert_int_equal(fs.n, 6);
        for (size_t i = 0; i < fs.n; i++) {
                struct part_check pc = {.df = &fs.f[i]};

                assert_int_equal(fs.f[i].n_partition, 2);
                assert_int_equal(
                        read_column(f, fs.f[i].path, 0, PARQUET_KIND_STRING, check_tenant, &pc),
                        (size_t)fs.f[i].record_count);
                read_column(f, fs.f[i].path, 4, PARQUET_KIND_TIMESTAMPTZ, check_hour, &pc);
                read_column(f, fs.f[i].path, 9, PARQUET_KIND_LONG, sum_seq, &pc);
                seqsum += pc.seen;
                total += (uint64_t)fs.f[i].record_count;
                assert_non_null(strstr(fs.f[i].path, "/floe/events/data/tenant=tenant-"));
        }
        assert_int_equal(total, 600);
        assert_int_equal(seqsum, 600 * 601 / 2); /* every row once */
        assert_string_equal(
                ice_kvs_get(&ice_metadata_current_snapshot(ice_writer_table(w)->md)->summary,
                            "floe.test"),
                "1");
        /* nothing written: no snapshot */
        assert_int_equal(ice_writer_commit(w, NULL, &res), 0);
        assert_int_equal(res.snapshot_id, 0);
        assert_int_equal(verify(f, ice_writer_table(w)), 0);
        files_clear(&fs);
        rows_free(&r);
        ice_writer_free(w);
}

static void test_roll_and_lru(void **state)
{
        struct fx *f = *state;
        struct ice_writer_opts o = {.target_file_bytes = 24 * 1024, .page_bytes = 4096};
        struct ice_writer_result res;
        struct ice_writer *w;
        struct files fs;
        struct rows r;

        create_events(f, NULL, 0);
        w = open_writer(f, &o);
        rows_make(&r, 20000, 1, 1, 0);
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, NULL, &res), 0);
        assert_true(res.files >= 3);
        assert_int_equal(res.records, 20000);
        files_of(ice_writer_table(w), &fs);
        /* rolled once past the target, checked every 4096 rows */
        for (size_t i = 0; i < fs.n; i++)
                assert_true(fs.f[i].file_size < 2 * 24 * 1024);
        files_clear(&fs);
        rows_free(&r);
        ice_writer_free(w);

        /* one open file at a time: switching partitions finishes the other's file */
        o = (struct ice_writer_opts){.max_open_files = 1};
        w = open_writer(f, &o);
        for (size_t k = 0; k < 4; k++) {
                rows_make(&r, 10, 1, 1, 0);
                r.tenant[0] = r.tenant[1] = (struct parquet_str){k % 2 ? "a" : "b", 1};
                for (size_t i = 0; i < r.n; i++)
                        r.tenant[i] = r.tenant[0];
                assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
                rows_free(&r);
        }
        assert_int_equal(ice_writer_commit(w, NULL, &res), 0);
        assert_int_equal(res.files, 4);
        assert_int_equal(verify(f, ice_writer_table(w)), 0);
        ice_writer_free(w);
}

static const struct ice_column_metrics *metrics(const struct ice_data_file *df, int32_t id)
{
        for (size_t i = 0; i < df->n_columns; i++)
                if (df->columns[i].field_id == id)
                        return &df->columns[i];
        return NULL;
}

static void test_metrics_modes(void **state)
{
        struct fx *f = *state;
        struct ice_kv props[] = {
                {(char *)"write.metadata.metrics.default", (char *)"truncate(4)"},
                {(char *)"write.metadata.metrics.column.device", (char *)"full"},
                {(char *)"write.metadata.metrics.column.sensor", (char *)"none"},
                {(char *)"write.metadata.metrics.column.metric", (char *)"counts"},
        };
        struct ice_writer *w;
        struct files fs;
        struct rows r;
        const struct ice_column_metrics *m;
        static const char lo[] = "\xc3\xa9t\xc3\xa9-zzzz",
                          hi[] = "\xc3\xa9t\xc3\xa9-\xf4\x8f\xbf\xbf";

        create_events(f, props, ELEMENTSOF(props));
        w = open_writer(f, NULL);
        rows_make(&r, 2, 1, 1, 0);
        r.device[0] = (struct parquet_str){"device-aaaaaaaaaaaaaaaaaaaaaaaa", 31};
        r.device[1] = (struct parquet_str){"device-b", 8};
        r.metric[0] = (struct parquet_str){lo, sizeof(lo) - 1};
        r.metric[1] = (struct parquet_str){hi, sizeof(hi) - 1};
        r.tenant[0] = r.tenant[1] = (struct parquet_str){"tenantlongname", 14};
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
        files_of(ice_writer_table(w), &fs);
        assert_int_equal(fs.n, 1);
        /* truncate(4): "tena" and "tenb"; the partition value stays whole */
        m = metrics(&fs.f[0], 1);
        assert_non_null(m);
        assert_int_equal(m->lower_len, 4);
        assert_memory_equal(m->lower, "tena", 4);
        assert_memory_equal(m->upper, "tenb", 4);
        assert_int_equal(fs.f[0].partition[0].len, 14);
        /* full */
        m = metrics(&fs.f[0], 2);
        assert_int_equal(m->lower_len, 31);
        assert_int_equal(m->upper_len, 8);
        /* none: no metrics at all; counts: counts only */
        assert_null(metrics(&fs.f[0], 3));
        m = metrics(&fs.f[0], 4);
        assert_non_null(m);
        assert_int_equal(m->value_count, 2);
        assert_null(m->lower);
        assert_null(m->upper);
        /* numbers keep their bounds */
        m = metrics(&fs.f[0], 5);
        assert_int_equal(m->lower_len, 8);
        files_clear(&fs);
        rows_free(&r);
        ice_writer_free(w);

        /* the default, truncate(16), and code points: "é" counts once */
        {
                struct ice_data_file df = {0};
                struct ice_column_metrics cm = {.field_id = 4, .value_count = 1};
                struct ice_metadata *md;

                w = open_writer(f, NULL);
                assert_int_equal(ice_metadata_copy(ice_writer_table(w)->md, &md), 0);
                ice_writer_free(w);
                ice_kvs_clear(&md->properties);
                cm.lower = (uint8_t *)(uintptr_t) "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                                  "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9";
                cm.lower_len = 34;
                cm.upper = cm.lower;
                cm.upper_len = 34;
                assert_int_equal(ice_data_file_add_column(&df, &cm), 0);
                assert_int_equal(ice_metrics_apply_modes(md, &df), 0);
                assert_int_equal(df.columns[0].lower_len, 32);
                assert_int_equal(df.columns[0].upper_len, 32);
                assert_int_equal(df.columns[0].upper[31], 0xaa); /* last é incremented: ê */
                ice_data_file_clear(&df);
                ice_metadata_free(md);
        }
}

static void test_validation_and_abort(void **state)
{
        struct fx *f = *state;
        struct ice_writer_pending p;
        struct ice_writer *w;
        uint8_t nulls[5] = {1, 1, 0, 1, 1};
        struct rows r;

        create_events(f, NULL, 0);
        w = open_writer(f, NULL);
        rows_make(&r, 5, 2, 1, 0);
        r.v[1].valid = nulls; /* device is required */
        assert_int_equal(ice_writer_write(w, r.v, r.n), -EINVAL);
        assert_non_null(strstr(ice_writer_error(w), "device"));
        ice_writer_pending(w, &p);
        assert_int_equal(p.rows, 0);
        r.v[1].valid = NULL;
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_finish_files(w), 0);
        assert_int_equal(files_on_disk(f), 2);
        ice_writer_abort(w);
        assert_int_equal(files_on_disk(f), 0);
        assert_int_equal(ice_writer_orphans(w)->n, 0);
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
        assert_int_equal(files_on_disk(f), 2);
        /* freeing an uncommitted writer leaves nothing behind */
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        ice_writer_free(w);
        assert_int_equal(files_on_disk(f), 2);
        rows_free(&r);
}

struct ledger {
        int fail;
        int calls;
        int64_t rows;
};

static int ledger_insert(void *ud, struct lake_catalog_txn *txn)
{
        struct ledger *l = ud;
        struct lake_param p = {LAKE_PARAM_INT64, NULL, 7};

        l->calls++;
        if (l->fail)
                return l->fail;
        return lake_catalog_txn_exec(txn, "INSERT INTO ledger (seq) VALUES (?)", &p, 1, 0, NULL,
                                     NULL, NULL);
}

static int ledger_create(void *ud, struct lake_catalog_txn *txn)
{
        (void)ud;
        return lake_catalog_txn_exec(txn, "CREATE TABLE IF NOT EXISTS ledger (seq BIGINT)", NULL, 0,
                                     0, NULL, NULL, NULL);
}

static int count_row(void *ud, int ncols, const char *const *cols)
{
        (void)ncols;
        ((struct ledger *)ud)->rows = strtoll(cols[0], NULL, 10);
        return 0;
}

static int ledger_count(void *ud, struct lake_catalog_txn *txn)
{
        return lake_catalog_txn_exec(txn, "SELECT count(*) FROM ledger", NULL, 0, 1, count_row, ud,
                                     NULL);
}

static void test_txn_and_failure(void **state)
{
        struct fx *f = *state;
        struct ledger l = {0};
        struct ice_writer_commit c = {.txn_fn = ledger_insert, .txn_ud = &l};
        struct ice_writer_result res;
        struct ice_writer *w;
        struct rows r;
        int64_t before;

        assert_int_equal(lake_catalog_open(f->db, NULL, &f->cat), 0);
        assert_int_equal(lake_catalog_run(f->cat, ledger_create, NULL), 0);
        create_events(f, NULL, 0);
        w = open_writer(f, NULL);
        rows_make(&r, 50, 2, 2, 0);
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, &c, &res), 0);
        assert_int_equal(l.calls, 1);
        assert_int_equal(lake_catalog_run(f->cat, ledger_count, &l), 0);
        assert_int_equal(l.rows, 1);
        before = ice_writer_table(w)->md->current_snapshot_id;
        assert_int_equal(files_on_disk(f), 4);
        /* the statements fail: nothing committed, the new files are deleted */
        l.fail = -EPERM;
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, &c, &res), -EPERM);
        assert_int_equal(files_on_disk(f), 4);
        assert_int_equal(ice_writer_orphans(w)->n, 0);
        assert_int_equal(ice_table_refresh(ice_writer_table(w)), 0);
        assert_int_equal(ice_writer_table(w)->md->current_snapshot_id, before);
        l.fail = 0;
        assert_int_equal(lake_catalog_run(f->cat, ledger_count, &l), 0);
        assert_int_equal(l.rows, 1);
        /* no rows: the statements still run, no snapshot */
        assert_int_equal(ice_writer_commit(w, &c, &res), 0);
        assert_int_equal(res.snapshot_id, 0);
        assert_int_equal(lake_catalog_run(f->cat, ledger_count, &l), 0);
        assert_int_equal(l.rows, 2);
        rows_free(&r);
        ice_writer_free(w);
        /* statements need a catalog */
        lake_catalog_close(f->cat);
        f->cat = NULL;
}

static void on_retry(void *ud, int attempt, const char *why)
{
        (*(int *)ud)++;
        assert_true(attempt >= 1);
        assert_non_null(why);
}

static void test_conflict_retry(void **state)
{
        struct fx *f = *state;
        struct ice_writer_result ra, rb;
        struct ice_writer *a, *b;
        struct files fs;
        struct rows r;
        int heard = 0;

        create_events(f, NULL, 0);
        a = open_writer(f, NULL);
        b = open_writer(f, NULL);
        ice_writer_set_retry_fn(b, on_retry, &heard);
        rows_make(&r, 20, 2, 1, 0);
        assert_int_equal(ice_writer_write(a, r.v, r.n), 0);
        assert_int_equal(ice_writer_write(b, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(a, NULL, &ra), 0);
        assert_int_equal(ice_writer_commit(b, NULL, &rb), 0); /* v2 taken: retried on v2 */
        assert_int_equal(rb.retries, 1);
        assert_int_equal(heard, 1);
        files_of(ice_writer_table(b), &fs);
        assert_int_equal(fs.n, 4);
        for (size_t i = 0; i < fs.n; i++)
                for (size_t k = 0; k < i; k++)
                        assert_string_not_equal(fs.f[i].path, fs.f[k].path);
        assert_int_equal(verify(f, ice_writer_table(b)), 0);
        /* a conflict returned instead of waited for: the files stay for the next attempt */
        {
                struct ice_writer_commit c = {.conflict_returns = true};
                struct files fb;

                heard = 0;
                assert_int_equal(ice_writer_write(a, r.v, r.n), 0);
                assert_int_equal(ice_writer_write(b, r.v, r.n), 0);
                assert_int_equal(ice_writer_commit(a, NULL, &ra), 0);
                assert_int_equal(ice_writer_commit(b, &c, &rb), -EAGAIN);
                assert_int_equal(heard, 0); /* no wait, no retry here */
                assert_false(ice_writer_table(b)->no_retries);
                assert_non_null(strstr(ice_writer_error(b), "kept for the next attempt"));
                files_of(ice_writer_table(a), &fb);
                assert_int_equal(fb.n, 6); /* a's two more; b's not yet */
                files_clear(&fb);
                assert_int_equal(ice_writer_commit(b, &c, &rb), 0); /* on the refreshed table */
                assert_int_equal(rb.files, 2);
                files_of(ice_writer_table(b), &fb);
                assert_int_equal(fb.n, 8);
                files_clear(&fb);
                assert_int_equal(verify(f, ice_writer_table(b)), 0);
        }
        /* commits of the file-system table need no statements */
        {
                struct ice_writer_commit c = {.txn_fn = ledger_insert};

                assert_int_equal(ice_writer_commit(a, &c, NULL), -EINVAL);
        }
        files_clear(&fs);
        rows_free(&r);
        ice_writer_free(a);
        ice_writer_free(b);
}

static void test_floe_batch(void **state)
{
        struct fx *f = *state;
        struct ice_floe_rows fr = {0};
        struct floe_batch *b;
        struct ice_writer *w;
        const struct parquet_column *cols;
        struct files fs;
        uint32_t s1, s2;
        char err[200];
        size_t n;

        create_events(f, NULL, 0);
        w = open_writer(f, NULL);
        cols = ice_writer_columns(w, &n);
        assert_int_equal(floe_batch_new(FLOE_KIND_EVENTS, NULL, &b), 0);
        assert_int_equal(floe_batch_set_identity(b, "acme.gw-7"), 0);
        b->epoch = UINT64_MAX;
        b->seq = 9;
        assert_int_equal(floe_batch_intern_series(b, "door", 4, "open", 4, &s1), 0);
        assert_int_equal(floe_batch_intern_series(b, "pump", 4, "rpm", 3, &s2), 0);
        assert_int_equal(floe_batch_add_event(b, s1, T0, 0, true, "ajar", 4), 0);
        assert_int_equal(floe_batch_add_event(b, s2, T0 + HOUR_US, 1500.5, false, NULL, 0), 0);
        assert_int_equal(ice_floe_rows_from_batch(&fr, b, T0 + 1, cols, n, err, sizeof(err)), 0);
        assert_int_equal(fr.n_rows, 2);
        assert_int_equal(((const int64_t *)fr.values[8].data)[1], -1); /* the u64's bits */
        assert_int_equal(((const int64_t *)fr.values[9].data)[0], 9);
        assert_int_equal(((const int64_t *)fr.values[7].data)[1], T0 + 1);
        assert_memory_equal(((const struct parquet_str *)fr.values[1].data)[0].ptr, "gw-7", 4);
        assert_int_equal(fr.values[5].valid[0], 0);
        assert_int_equal(fr.values[6].valid[1], 0);
        assert_int_equal(ice_writer_write(w, fr.values, fr.n_rows), 0);
        assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
        files_of(ice_writer_table(w), &fs);
        assert_int_equal(fs.n, 2); /* two hours */
        files_clear(&fs);
        /* an aggregates batch does not fit floe.events */
        floe_batch_set_kind(b, FLOE_KIND_AGGREGATES);
        floe_batch_reset(b);
        {
                struct floe_agg_row row = {.window_start_us = T0, .window_s = 60, .count = 2};

                assert_int_equal(floe_batch_intern_series(b, "door", 4, "open", 4, &s1), 0);
                assert_int_equal(floe_batch_add_aggregate(b, s1, &row), 0);
        }
        assert_int_equal(ice_floe_rows_from_batch(&fr, b, T0, cols, n, err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "no column"));
        ice_floe_rows_clear(&fr);
        floe_batch_free(b);
        ice_writer_free(w);
}

/* Our own files with every writer option, read back value for value. */
static void test_reader_encodings(void **state)
{
        struct fx *f = *state;
        static const uint8_t snappy[] = {0x0c, 0x0c, 'a', 'b', 'c', 'd', 0x11, 0x04};
        static const uint8_t bad[] = {0x0c, 0x0c, 'a', 'b', 'c', 'd', 0x11, 0x05};
        const struct parquet_column cols[] = {
                {"i", 1, PARQUET_KIND_INT, true},      {"l", 2, PARQUET_KIND_LONG, false},
                {"d", 3, PARQUET_KIND_DOUBLE, false},  {"s", 4, PARQUET_KIND_STRING, false},
                {"b", 5, PARQUET_KIND_BOOLEAN, false}, {"f", 6, PARQUET_KIND_FLOAT, true},
        };
        enum { N = 3000 };
        int32_t *iv = calloc(N, 4);
        int64_t *lv = calloc(N, 8);
        double *dv = calloc(N, 8);
        float *fv = calloc(N, 4);
        bool *bv = calloc(N, 1);
        uint8_t *ok = calloc(N, 1);
        struct parquet_str *sv = calloc(N, sizeof(*sv));
        char(*text)[16] = calloc(N, 16);
        uint8_t out[12];

        assert_int_equal(ice_snappy_decompress(snappy, sizeof(snappy), out, 12), 0);
        assert_memory_equal(out, "abcdabcdabcd", 12);
        assert_int_equal(ice_snappy_decompress(bad, sizeof(bad), out, 12), -EBADMSG);
        assert_int_equal(ice_snappy_decompress(snappy, sizeof(snappy), out, 11), -EBADMSG);
        for (int i = 0; i < N; i++) {
                iv[i] = i * 7 - 100;
                lv[i] = (int64_t)i * 1000003 - 5;
                dv[i] = i / 3.0;
                fv[i] = (float)i / 8;
                bv[i] = i % 3 == 1;
                ok[i] = i % 4 != 0;
                snprintf(text[i], 16, "v%d", i % (i < N / 2 ? 7 : 100000));
                sv[i] = (struct parquet_str){text[i], (uint32_t)strlen(text[i])};
        }
        for (int variant = 0; variant < 4; variant++) {
                struct parquet_values v[] = {{iv, NULL}, {lv, ok}, {dv, ok},
                                             {sv, ok},   {bv, ok}, {fv, NULL}};
                struct parquet_options o;
                struct parquet_writer *pw;
                struct parquet_footer *ft;
                struct ice_pq_src src = {.store = f->s};
                char path[512], err[256];
                int fd;

                parquet_options_init(&o);
                o.int_delta = variant == 1;
                o.float_split = variant == 1;
                o.codec = variant == 2 ? PARQUET_CODEC_UNCOMPRESSED : PARQUET_CODEC_ZSTD;
                o.dict_bytes = variant == 3 ? 256 : o.dict_bytes; /* PLAIN fallback */
                o.page_rows = 700;
                o.row_group_rows = 2000;
                snprintf(path, sizeof(path), "%s/v%d.parquet", f->dir, variant);
                fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
                assert_true(fd >= 0);
                {
                        struct parquet_sink sink = parquet_sink_fd(fd);

                        assert_int_equal(parquet_writer_new(cols, 6, &o, &sink, &pw), 0);
                }
                assert_int_equal(parquet_writer_write(pw, v, N), 0);
                assert_int_equal(parquet_writer_close(pw, NULL), 0);
                parquet_writer_free(pw);
                src.fd = fd;
                src.size = (uint64_t)lseek(fd, 0, SEEK_END);
                assert_int_equal(ice_pq_footer(&src, &ft, err, sizeof(err)), 0);
                assert_int_equal(ft->n_row_groups, 2);
                for (size_t c = 0; c < 6; c++) {
                        size_t row = 0, w = ice_writer_width(cols[c].kind);
                        /* int read as long, float as double: promotions */
                        enum parquet_kind as = c == 0   ? PARQUET_KIND_LONG
                                               : c == 5 ? PARQUET_KIND_DOUBLE
                                                        : cols[c].kind;

                        for (size_t g = 0; g < ft->n_row_groups; g++) {
                                struct ice_pq_column col;

                                assert_int_equal(ice_pq_read_chunk(&src, ft, g, c, as, &col, err,
                                                                   sizeof(err)),
                                                 0);
                                for (size_t i = 0; i < col.n; i++, row++) {
                                        bool valid = !col.valid || col.valid[i];
                                        const uint8_t *p = (const uint8_t *)col.data + i * w;

                                        assert_int_equal(valid, !v[c].valid || v[c].valid[row]);
                                        if (!valid)
                                                continue;
                                        if (c == 0)
                                                assert_int_equal(((const int64_t *)col.data)[i],
                                                                 iv[row]);
                                        else if (c == 5)
                                                assert_true(((const double *)col.data)[i] ==
                                                            fv[row]);
                                        else if (c == 3)
                                                assert_memory_equal(
                                                        ((const struct parquet_str *)p)->ptr,
                                                        sv[row].ptr, sv[row].len);
                                        else
                                                assert_memory_equal(
                                                        p, (const uint8_t *)v[c].data + row * w, w);
                                }
                                ice_pq_column_clear(&col);
                        }
                        assert_int_equal(row, N);
                }
                parquet_footer_free(ft);
                close(fd);
        }
        free(iv);
        free(lv);
        free(dv);
        free(fv);
        free(bv);
        free(ok);
        free(sv);
        free(text);
}

static void test_compact_and_verify(void **state)
{
        struct fx *f = *state;
        struct ice_compact_opts o = {0};
        struct ice_compact_result res;
        struct ice_writer *w;
        struct files fs;
        struct rows r;
        char err[512], path[1024];
        uint64_t seqsum = 0;

        create_events(f, NULL, 0);
        w = open_writer(f, NULL);
        for (size_t k = 0; k < 3; k++) {
                rows_make(&r, 30, 2, 1, k * 30);
                assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
                assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
                rows_free(&r);
        }
        assert_int_equal(ice_compact(f->s, NULL, "floe", "events", &o, &res, err, sizeof(err)), 0);
        assert_true(res.snapshot_id > 0);
        assert_int_equal(res.partitions, 2);
        assert_int_equal(res.files_in, 6);
        assert_int_equal(res.files_out, 2);
        assert_int_equal(res.rows, 90);
        files_of(ice_writer_table(w), &fs);
        assert_int_equal(fs.n, 2);
        for (size_t i = 0; i < fs.n; i++) {
                struct part_check pc = {.df = &fs.f[i]};

                read_column(f, fs.f[i].path, 9, PARQUET_KIND_LONG, sum_seq, &pc);
                read_column(f, fs.f[i].path, 0, PARQUET_KIND_STRING, check_tenant, &pc);
                seqsum += pc.seen;
        }
        assert_int_equal(seqsum, 90 * 91 / 2);
        assert_string_equal(
                ice_kvs_get(&ice_metadata_current_snapshot(ice_writer_table(w)->md)->summary,
                            "operation"),
                "replace");
        assert_int_equal(verify(f, ice_writer_table(w)), 0);
        /* nothing left to compact */
        assert_int_equal(ice_compact(f->s, NULL, "floe", "events", &o, &res, err, sizeof(err)), 0);
        assert_int_equal(res.snapshot_id, 0);
        /* a data file cut short, another gone: both named */
        snprintf(path, sizeof(path), "%s", fs.f[0].path + 7);
        assert_int_equal(truncate(path, 100), 0);
        snprintf(path, sizeof(path), "%s", fs.f[1].path + 7);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(verify(f, ice_writer_table(w)), 2);
        files_clear(&fs);
        ice_writer_free(w);
}

/* A catalog whose COMMIT breaks: swap answers -EIO, after landing or not. */
struct fakecat {
        char loc[1024];
        bool lands, load_fails;
        int refuse; /* the caller's statements refuse with this: rolled back */
};

static int fc_load(void *ud, char **ret)
{
        struct fakecat *c = ud;

        if (c->load_fails)
                return -EIO;
        *ret = floe_strdup(c->loc);
        return *ret ? 0 : -ENOMEM;
}

static int fc_create(void *ud, const char *location)
{
        snprintf(((struct fakecat *)ud)->loc, sizeof(((struct fakecat *)ud)->loc), "%s", location);
        return 0;
}

static int fc_swap(void *ud, const char *expected, const char *location)
{
        struct fakecat *c = ud;

        if (strcmp(expected, c->loc) != 0)
                return -ESTALE;
        if (c->refuse)
                return c->refuse;
        if (c->lands)
                snprintf(c->loc, sizeof(c->loc), "%s", location);
        return -EIO;
}

static void test_commit_unknown(void **state)
{
        struct fx *f = *state;
        struct fakecat fc = {.lands = true};
        struct ice_catalog_ops ops = {&fc, fc_load, fc_create, fc_swap};
        struct test_io tio = {0};
        struct ice_io io = test_io_make(&tio);
        struct ice_data_file df = {.content = ICE_CONTENT_DATA, .sort_order_id = -1};
        struct ice_datum part[2] = {{.type = ICE_TYPE_STRING, .bytes = (uint8_t *)"a", .len = 1},
                                    {.type = ICE_TYPE_INT, .v.i = 490000}};
        struct ice_table_def def;
        struct ice_metadata *md;
        struct ice_table *t;
        char loc[512], err[256], path[1024];
        int64_t id;

        snprintf(loc, sizeof(loc), "%s/floe/events", f->url);
        assert_int_equal(ice_floe_table_def(FLOE_KIND_EVENTS, loc, &def), 0);
        assert_int_equal(ice_metadata_new(&def, T0 / 1000, &md), 0);
        assert_int_equal(ice_table_create(&io, &ops, md, &t, err, sizeof(err)), 0);
        ice_metadata_free(md);
        df.path = (char *)"file:///nowhere/x.parquet";
        df.format = (char *)"PARQUET";
        df.partition = part;
        df.n_partition = 2;
        df.record_count = 1;
        df.file_size = 10;
        /* the swap landed before the connection broke: a success */
        assert_int_equal(ice_table_append(t, &df, 1, NULL, 0, &id), 0);
        assert_false(t->commit_unknown);
        assert_int_equal(t->md->current_snapshot_id, id);
        assert_string_equal(fc.loc, t->metadata_location);
        /* it did not land and the catalog cannot be read: nothing is deleted */
        fc.lands = false;
        fc.load_fails = true;
        assert_int_equal(ice_table_append(t, &df, 1, NULL, 0, &id), -EIO);
        assert_true(t->commit_unknown);
        snprintf(path, sizeof(path), "%s/floe/events/metadata/v3.metadata.json", f->url + 7);
        assert_int_equal(access(path, F_OK), 0);
        /* it did not land, the catalog says so: cleaned up */
        fc.load_fails = false;
        assert_int_equal(ice_table_append(t, &df, 1, NULL, 0, &id), -EIO);
        assert_false(t->commit_unknown);
        snprintf(path, sizeof(path), "%s/floe/events/metadata/v4.metadata.json", f->url + 7);
        assert_int_equal(access(path, F_OK), -1);
        /* the caller's statements refused (the uploader's ledger: -EALREADY): rolled back, a
         * certain outcome even with the catalog unreadable; cleaned up */
        fc.refuse = -EALREADY;
        fc.load_fails = true;
        assert_int_equal(ice_table_append(t, &df, 1, NULL, 0, &id), -EALREADY);
        assert_false(t->commit_unknown);
        assert_int_equal(access(path, F_OK), -1);
        ice_table_free(t);
}

/* Every allocation failing in turn: an error, never a crash, a leak or a broken table. */
static void test_alloc_failures(void **state)
{
        struct fx *f = *state;
        struct rows r;
        uint64_t total = 0;
        struct ice_writer *w;

        create_events(f, NULL, 0);
        rows_make(&r, 40, 2, 2, 0);
        floe_alloc_fail_at(0);
        w = open_writer(f, NULL);
        assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
        assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
        ice_writer_free(w);
        floe_alloc_fail_at(0);
        {
                char err[256];

                assert_int_equal(
                        ice_writer_open(f->s, NULL, "floe", "events", NULL, &w, err, sizeof(err)),
                        0);
                assert_int_equal(ice_writer_write(w, r.v, r.n), 0);
                assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
                total = floe_alloc_count();
                ice_writer_free(w);
        }
        for (uint64_t n = 1; n <= total; n += 1 + total / 400) {
                char err[256];
                int rc;

                floe_alloc_fail_at(n);
                rc = ice_writer_open(f->s, NULL, "floe", "events", NULL, &w, err, sizeof(err));
                if (rc == 0) {
                        rc = ice_writer_write(w, r.v, r.n);
                        if (rc == 0)
                                rc = ice_writer_commit(w, NULL, NULL);
                        ice_writer_free(w);
                }
                floe_alloc_fail_at(0);
                assert_true(rc == 0 || rc < 0);
        }
        floe_alloc_fail_at(0);
        w = open_writer(f, NULL);
        assert_int_equal(verify(f, ice_writer_table(w)), 0);
        ice_writer_free(w);
        rows_free(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_route_and_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_roll_and_lru, setup, teardown),
                cmocka_unit_test_setup_teardown(test_metrics_modes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_validation_and_abort, setup, teardown),
                cmocka_unit_test_setup_teardown(test_txn_and_failure, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflict_retry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_floe_batch, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reader_encodings, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compact_and_verify, setup, teardown),
                cmocka_unit_test_setup_teardown(test_commit_unknown, setup, teardown),
                cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
