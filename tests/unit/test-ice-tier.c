/* SPDX-License-Identifier: Apache-2.0 */
/* Tier moves (uploader/iceberg/ice-tier.c): hourly partitions of several ages moved to warm and
 * cold roots in one replace snapshot, every row read back once from where it went; a second run
 * does nothing; a crash between copy and commit (a child that dies there) completes on the next
 * run; a concurrent append is retried; a compaction meanwhile makes another pass; expiry and
 * orphan removal over the roots; partition times; [tier]; every allocation failing in turn. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "floe-config.h"
#include "ice-floe.h"
#include "ice-maint.h"
#include "ice-pq.h"
#include "ice-tier-internal.h"
#include "ice-writer.h"
#include "store.h"
#include "test-iceberg-io.h"

#define HOUR_MS INT64_C(3600000)
#define DAY_MS  (24 * HOUR_MS)
#define NOW_MS  INT64_C(1763769600000) /* 2025-11-22T00:00:00Z */

struct fx {
        char dir[256], url[3][320];
        struct lake_store *s[3]; /* hot (the warehouse), warm, cold */
        struct ice_tier_opts o;
        size_t rows;
};

static int setup(void **state)
{
        static const char *const names[] = {"hot", "warm", "cold"};
        struct fx *f = calloc(1, sizeof(*f));
        struct lake_store_opts so;
        const char *tmp = getenv("TMPDIR");

        if (!f)
                return -1;
        *state = f;
        snprintf(f->dir, sizeof(f->dir), "%s/floe-tier-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(f->dir))
                return -1;
        lake_store_opts_default(&so);
        so.fsync = false;
        for (size_t i = 0; i < 3; i++) {
                snprintf(f->url[i], sizeof(f->url[i]), "file://%s/%s", f->dir, names[i]);
                if (lake_store_open(f->url[i], &so, &f->s[i]) < 0)
                        return -1;
                f->o.tiers[i].store = f->s[i];
        }
        f->o.n_tiers = 3;
        f->o.tiers[1].age_ms = DAY_MS;
        f->o.tiers[2].age_ms = 3 * DAY_MS;
        f->o.now_ms = NOW_MS;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;

        ice_tier_set_test_hook(NULL, NULL);
        for (size_t i = 0; i < 3; i++)
                lake_store_close(f->s[i]);
        test_rmtree(f->dir);
        free(f);
        return 0;
}

static void create_events(struct fx *f)
{
        char err[256];

        assert_int_equal(ice_floe_table_create(f->s[0], NULL, "floe", "events", FLOE_KIND_EVENTS,
                                               NOW_MS, err, sizeof(err)),
                         0);
}

/* n rows per tenant (a, b) into the hour that started age_h hours before NOW_MS; batch_seq
 * counts every row the test wrote. */
static void write_hour(struct fx *f, int age_h, size_t n)
{
        static const struct parquet_str tenants[] = {{"a", 1}, {"b", 1}};
        static const struct parquet_str dev = {"gw-1", 4};
        struct parquet_values v[10] = {0};
        struct parquet_str *ten = calloc(2 * n, sizeof(*ten)), *str = calloc(2 * n, sizeof(*str));
        int64_t *ts = calloc(2 * n, 8), *seq = calloc(2 * n, 8), *zero = calloc(2 * n, 8);
        double *val = calloc(2 * n, 8);
        uint8_t *no_text = calloc(2 * n, 1);
        const struct parquet_column *cols;
        struct ice_writer *w = NULL;
        char err[256];
        size_t nc;

        assert_non_null(zero);
        for (size_t i = 0; i < 2 * n; i++) {
                ten[i] = tenants[i % 2];
                str[i] = dev;
                ts[i] = (NOW_MS - age_h * HOUR_MS) * 1000 + (int64_t)i * 1000;
                seq[i] = (int64_t)f->rows++;
                val[i] = (double)i;
        }
        assert_int_equal(
                ice_writer_open(f->s[0], NULL, "floe", "events", NULL, &w, err, sizeof(err)), 0);
        cols = ice_writer_columns(w, &nc);
        assert_int_equal(nc, 10);
        for (size_t c = 0; c < nc; c++) {
                const char *name = cols[c].name;

                if (strcmp(name, "tenant") == 0)
                        v[c].data = ten;
                else if (strcmp(name, "ts") == 0 || strcmp(name, "received_at") == 0)
                        v[c].data = ts;
                else if (strcmp(name, "batch_seq") == 0)
                        v[c].data = seq;
                else if (strcmp(name, "batch_epoch") == 0)
                        v[c].data = zero;
                else if (strcmp(name, "value") == 0)
                        v[c].data = val;
                else if (strcmp(name, "text") == 0)
                        v[c] = (struct parquet_values){str, no_text};
                else
                        v[c].data = str;
        }
        assert_int_equal(ice_writer_write(w, v, 2 * n), 0);
        assert_int_equal(ice_writer_commit(w, NULL, NULL), 0);
        ice_writer_free(w);
        free(no_text);
        free(ten);
        free(str);
        free(ts);
        free(seq);
        free(zero);
        free(val);
}

/* The table (through the roots' io), for inspection. */
struct view {
        struct ice_tier_io ti;
        struct ice_table *t;
};

static void view_open(struct fx *f, struct view *v)
{
        char loc[512], why[256];
        struct ice_io io;

        ice_tier_io(&v->ti, &f->o, &io);
        snprintf(loc, sizeof(loc), "%s/floe/events", f->url[0]);
        assert_int_equal(ice_table_open(&io, NULL, loc, &v->t, why, sizeof(why)), 0);
}

struct census {
        struct fx *f;
        size_t per_tier[3], files;
        int64_t records;
        uint8_t *seen; /* per batch_seq */
        const char *hour[3];
};

/* Every live file: which root holds it, its partition's tier, and its rows' batch_seq read
 * back through that root's store. */
static int census_entry(void *ud, const struct ice_manifest_file *mf,
                        const struct ice_manifest_entry *e)
{
        struct census *c = ud;
        struct ice_pq_src src = {.fd = -1};
        struct parquet_footer *ft = NULL;
        char key[1024], err[256];
        size_t tier = 0, roots = 0;

        (void)mf;
        for (size_t i = 0; i < 3; i++)
                if (strncmp(e->file.path, c->f->url[i], strlen(c->f->url[i])) == 0 &&
                    e->file.path[strlen(c->f->url[i])] == '/') {
                        tier = i;
                        roots++;
                }
        assert_int_equal(roots, 1);
        c->per_tier[tier]++;
        c->files++;
        c->records += e->file.record_count;
        src.store = c->f->s[tier];
        assert_int_equal(lake_store_key(src.store, e->file.path, key, sizeof(key)), 0);
        src.key = key;
        assert_int_equal(lake_store_size(src.store, key, &src.size), 0);
        assert_int_equal(src.size, (uint64_t)e->file.file_size);
        assert_int_equal(ice_pq_footer(&src, &ft, err, sizeof(err)), 0);
        for (size_t g = 0; g < ft->n_row_groups; g++) {
                struct ice_pq_column col;

                assert_int_equal(ice_pq_read_chunk(&src, ft, g, 9, PARQUET_KIND_LONG, &col, err,
                                                   sizeof(err)),
                                 0);
                for (size_t i = 0; i < col.n; i++) {
                        int64_t s = ((const int64_t *)col.data)[i];

                        assert_true(s >= 0 && (size_t)s < c->f->rows);
                        c->seen[s]++;
                }
                ice_pq_column_clear(&col);
        }
        parquet_footer_free(ft);
        return 0;
}

static void census(struct fx *f, struct view *v, struct census *c)
{
        *c = (struct census){.f = f, .seen = calloc(f->rows + 1, 1)};
        assert_int_equal(ice_table_refresh(v->t), 0);
        assert_int_equal(ice_table_scan(v->t, -1, true, census_entry, c), 0);
        assert_int_equal(c->records, (int64_t)f->rows);
        for (size_t i = 0; i < f->rows; i++)
                assert_int_equal(c->seen[i], 1); /* every row exactly once */
        free(c->seen);
}

static size_t n_snapshots(struct view *v)
{
        assert_int_equal(ice_table_refresh(v->t), 0);
        return v->t->md->n_snapshots;
}

/* Hours 1 (hot), 30 (warm) and 80 (cold) old, two tenants each: 6 files. */
static void fill(struct fx *f)
{
        create_events(f);
        write_hour(f, 1, 5);
        write_hour(f, 30, 5);
        write_hour(f, 80, 5);
}

static void test_move_and_noop(void **state)
{
        struct fx *f = *state;
        struct ice_tier_result res;
        struct census c;
        struct view v;
        char err[512];

        fill(f);
        view_open(f, &v);
        f->o.dry_run = true;
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_int_equal(res.files, 4);
        assert_int_equal(res.partitions, 4);
        assert_int_equal(res.snapshot_id, 0);
        assert_int_equal(n_snapshots(&v), 3);
        f->o.dry_run = false;
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_true(res.snapshot_id > 0);
        assert_int_equal(res.files, 4);
        assert_int_equal(res.copied, 4);
        assert_int_equal(res.partitions, 4);
        assert_int_equal(res.skipped, 0);
        assert_int_equal(res.passes, 1);
        census(f, &v, &c);
        assert_int_equal(c.per_tier[0], 2);
        assert_int_equal(c.per_tier[1], 2);
        assert_int_equal(c.per_tier[2], 2);
        assert_string_equal(
                ice_kvs_get(&ice_metadata_current_snapshot(v.t->md)->summary, "operation"),
                "replace");
        assert_string_equal(
                ice_kvs_get(&ice_metadata_current_snapshot(v.t->md)->summary, "total-records"),
                "30");
        /* again: nothing is due, no snapshot */
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_int_equal(res.snapshot_id, 0);
        assert_int_equal(res.files, 0);
        assert_int_equal(n_snapshots(&v), 4);
        /* two days later the warm hour is cold (warm -> cold) and the hot one warm */
        f->o.now_ms += 2 * DAY_MS;
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_int_equal(res.files, 4);
        census(f, &v, &c);
        assert_int_equal(c.per_tier[0], 0);
        assert_int_equal(c.per_tier[1], 2);
        assert_int_equal(c.per_tier[2], 4);
        ice_table_free(v.t);
}

static void test_expire_and_orphans(void **state)
{
        struct fx *f = *state;
        struct ice_verify_result vr;
        struct ice_tier_result res;
        struct ice_strv gone = {0}, orphans = {0};
        struct ice_expire_opts eo;
        struct view v;
        char err[512], path[1024];
        size_t deleted = 0;

        fill(f);
        view_open(f, &v);
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        /* the old files stay until the snapshots before the move expire */
        assert_int_equal(ice_table_refresh(v.t), 0);
        assert_int_equal(ice_table_verify(v.t, NULL, NULL, NULL, &vr), 0);
        assert_int_equal(vr.problems, 0);
        assert_int_equal(ice_table_orphans(v.t, NOW_MS + DAY_MS, &orphans), 0);
        assert_int_equal(orphans.n, 0);
        ice_strv_clear(&orphans);
        /* snapshots carry the wall clock: expire all but the last */
        eo = (struct ice_expire_opts){
                .now_ms = v.t->clock_ms(), .older_than_ms = INT64_MAX, .retain_last = 1};
        assert_int_equal(ice_table_expire(v.t, &eo, true, &gone), 0);
        /* the four moved files' hot copies are deleted with the expired snapshots */
        for (size_t i = 0; i < gone.n; i++) {
                if (!strstr(gone.v[i], ".parquet"))
                        continue;
                deleted++;
                assert_true(strncmp(gone.v[i], f->url[0], strlen(f->url[0])) == 0);
                assert_int_equal(access(gone.v[i] + 7, F_OK), -1);
        }
        assert_int_equal(deleted, 4);
        ice_strv_clear(&gone);
        /* an orphan in the cold root is found (the io lists every root) */
        snprintf(path, sizeof(path), "%s/cold/floe/events/data/stray.parquet", f->dir);
        assert_int_equal(
                lake_store_put(f->s[2], "floe/events/data/stray.parquet", "x", 1, LAKE_PUT_REPLACE),
                0);
        assert_int_equal(ice_table_orphans(v.t, NOW_MS + 365 * DAY_MS, &orphans), 0);
        assert_int_equal(orphans.n, 1);
        assert_string_equal(orphans.v[0] + 7, path);
        ice_strv_clear(&orphans);
        assert_int_equal(ice_table_verify(v.t, NULL, NULL, NULL, &vr), 0);
        assert_int_equal(vr.problems, 0);
        ice_table_free(v.t);
}

static void die(void *ud)
{
        struct fx *f = ud;

        for (size_t i = 0; i < 3; i++)
                lake_store_close(f->s[i]); /* their fds (valgrind counts them) */
        /* the copies are made, the commit never happens */
        _exit(0);
}

static void test_crash_between_copy_and_commit(void **state)
{
        struct fx *f = *state;
        struct ice_tier_result res;
        struct census c;
        struct view v;
        char err[512];
        pid_t pid;
        int st = 0;

        fill(f);
        view_open(f, &v);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                ice_tier_set_test_hook(die, f);
                ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err));
                _exit(3);
        }
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        /* nothing committed: every file still hot, the copies orphans under the other roots */
        census(f, &v, &c);
        assert_int_equal(c.per_tier[0], 6);
        assert_int_equal(n_snapshots(&v), 3);
        {
                struct ice_strv o = {0};

                assert_int_equal(ice_table_orphans(v.t, NOW_MS + 365 * DAY_MS, &o), 0);
                assert_int_equal(o.n, 4);
                ice_strv_clear(&o);
        }
        /* the next run takes the copies over and commits */
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_true(res.snapshot_id > 0);
        assert_int_equal(res.files, 4);
        assert_int_equal(res.copied, 0);
        census(f, &v, &c);
        assert_int_equal(c.per_tier[0], 2);
        assert_int_equal(c.per_tier[2], 2);
        ice_table_free(v.t);
}

static void append_meanwhile(void *ud)
{
        struct fx *f = ud;

        ice_tier_set_test_hook(NULL, NULL);
        write_hour(f, 0, 3); /* a new commit before ours: ours conflicts */
}

static void test_concurrent_append(void **state)
{
        struct fx *f = *state;
        struct ice_tier_result res;
        struct census c;
        struct view v;
        char err[512];

        fill(f);
        view_open(f, &v);
        ice_tier_set_test_hook(append_meanwhile, f);
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_int_equal(res.retries, 1);
        assert_int_equal(res.files, 4);
        census(f, &v, &c); /* the appended rows and the moved ones, each once */
        assert_int_equal(c.per_tier[0], 4);
        assert_int_equal(c.per_tier[1], 2);
        assert_int_equal(c.per_tier[2], 2);
        assert_int_equal(n_snapshots(&v), 5);
        ice_table_free(v.t);
}

static void compact_meanwhile(void *ud)
{
        struct fx *f = ud;
        struct ice_compact_opts co = {.min_files = 2};
        struct ice_compact_result cr;
        char err[256];

        ice_tier_set_test_hook(NULL, NULL);
        assert_int_equal(ice_compact(f->s[0], NULL, "floe", "events", &co, &cr, err, sizeof(err)),
                         0);
        assert_int_equal(cr.partitions, 2);
}

static void test_compaction_meanwhile(void **state)
{
        struct fx *f = *state;
        struct ice_tier_result res;
        struct census c;
        struct view v;
        char err[512];

        create_events(f);
        write_hour(f, 80, 4);
        write_hour(f, 80, 4); /* two files per tenant: compaction replaces them */
        view_open(f, &v);
        ice_tier_set_test_hook(compact_meanwhile, f);
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        assert_int_equal(res.passes, 2); /* the files to move were gone: scanned again */
        assert_int_equal(res.files, 2);
        census(f, &v, &c);
        assert_int_equal(c.per_tier[2], 2);
        assert_int_equal(c.files, 2);
        ice_table_free(v.t);
}

static void test_bad_options(void **state)
{
        struct fx *f = *state;
        struct ice_tier_opts o = f->o;
        struct ice_tier_result res;
        char err[512];

        create_events(f);
        o.n_tiers = 1;
        assert_int_equal(ice_tier_move(&o, NULL, "floe", "events", &res, err, sizeof(err)),
                         -EINVAL);
        o = f->o;
        o.tiers[2].age_ms = o.tiers[1].age_ms;
        assert_int_equal(ice_tier_move(&o, NULL, "floe", "events", &res, err, sizeof(err)),
                         -EINVAL);
        assert_non_null(strstr(err, "ascending"));
        o = f->o;
        o.tiers[1].store = o.tiers[0].store;
        assert_int_equal(ice_tier_move(&o, NULL, "floe", "events", &res, err, sizeof(err)),
                         -EINVAL);
        o = f->o;
        assert_int_equal(ice_tier_move(&o, NULL, "floe", "nope", &res, err, sizeof(err)), -ENOENT);
        /* storage classes are S3's: no lifecycle and no CopyObject on file:// */
        o.tiers[1].storage_class = "STANDARD_IA";
        o.tiers[2].storage_class = "GLACIER";
        assert_int_equal(ice_tier_s3(&o, NULL, "floe", "events", &res, err, sizeof(err)),
                         -EOPNOTSUPP);
}

static void test_partition_end(void **state)
{
        struct ice_type ts = {.id = ICE_TYPE_TIMESTAMPTZ}, date = {.id = ICE_TYPE_DATE};
        struct ice_field fields[] = {
                {.id = 1, .name = (char *)"t", .type = ts},
                {.id = 2, .name = (char *)"d", .type = date},
                {.id = 3, .name = (char *)"s", .type = {.id = ICE_TYPE_STRING}}};
        struct ice_schema schema = {.fields = fields, .n_fields = 3};
        struct ice_partition_field pf[2] = {{.source_id = 3, .transform = {ICE_TRANSFORM_IDENTITY}},
                                            {.source_id = 1}};
        struct ice_partition_spec spec = {.fields = pf, .n_fields = 2};
        struct ice_datum v[2] = {{.type = ICE_TYPE_STRING}, {.type = ICE_TYPE_INT}};
        int64_t end = 0;

        (void)state;
        pf[1].transform.kind = ICE_TRANSFORM_HOUR;
        v[1].v.i = 490000; /* hours since the epoch */
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, INT64_C(490001) * HOUR_MS);
        pf[1].transform.kind = ICE_TRANSFORM_DAY;
        v[1].v.i = 20412;
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, INT64_C(20413) * DAY_MS);
        pf[1].transform.kind = ICE_TRANSFORM_MONTH;
        v[1].v.i = 670; /* 2025-11: ends 2025-12-01 (day 20423) */
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, INT64_C(20423) * DAY_MS);
        v[1].v.i = 671; /* 2025-12: ends 2026-01-01 (day 20454) */
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, INT64_C(20454) * DAY_MS);
        v[1].v.i = -1; /* 1969-12: ends 1970-01-01 */
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, 0);
        pf[1].transform.kind = ICE_TRANSFORM_YEAR;
        v[1].v.i = 55; /* 2025: ends 2026-01-01 */
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, INT64_C(20454) * DAY_MS);
        /* an identity date is a day */
        pf[1] = (struct ice_partition_field){.source_id = 2, .transform = {ICE_TRANSFORM_IDENTITY}};
        v[1].v.i = 3;
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), 0);
        assert_int_equal(end, 4 * DAY_MS);
        /* no time: a null, a bucket, strings only */
        v[1].null = true;
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), -ENOENT);
        v[1].null = false;
        pf[1] = (struct ice_partition_field){.source_id = 1,
                                             .transform = {ICE_TRANSFORM_BUCKET, 16}};
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 2, &end), -ENOENT);
        assert_int_equal(ice_tier_partition_end(&spec, &schema, v, 1, &end), -ENOENT);
}

/* The strings of *c are borrowed from the config: freed with the next call (or NULL text). */
static int conf_of(const char *text, struct ice_tier_conf *c, char *msg, size_t size)
{
        static struct floe_config *cfg;
        struct floe_config_error err;
        int r;

        cfg = floe_config_free(cfg);
        if (!text)
                return 0;
        r = floe_config_load_string("t.conf", text, strlen(text), &cfg, &err);
        if (r == 0)
                r = ice_tier_conf_from(c, cfg, &err);
        if (r < 0)
                floe_config_error_format(&err, msg, size);
        return r;
}

static void test_conf(void **state)
{
        struct ice_tier_conf c;
        char msg[512];

        (void)state;
        assert_int_equal(conf_of("[lake]\nwarehouse = file:///x\n", &c, msg, sizeof(msg)), 0);
        assert_int_equal(c.n_tiers, 1);
        assert_int_equal(c.s3_mode, ICE_TIER_S3_AUTO);
        assert_int_equal(conf_of("[tier]\nroot.1 = file:///w\nage.1 = 7d\nclass.1 = STANDARD_IA\n"
                                 "age.2 = 90d\nclass.2 = GLACIER\ns3 = copy\n",
                                 &c, msg, sizeof(msg)),
                         0);
        assert_int_equal(c.n_tiers, 3);
        assert_int_equal(c.age_ms[1], 7 * DAY_MS);
        assert_int_equal(c.age_ms[2], 90 * DAY_MS);
        assert_null(c.root[2]);
        assert_string_equal(c.storage_class[2], "GLACIER");
        assert_int_equal(c.s3_mode, ICE_TIER_S3_COPY);
        assert_int_equal(conf_of("[tier]\nage.2 = 1d\nroot.2 = file:///c\n", &c, msg, sizeof(msg)),
                         -EINVAL);
        assert_non_null(strstr(msg, "t.conf:2: [tier] age.2: tier 2 comes after a gap"));
        assert_int_equal(conf_of("[tier]\nroot.1 = file:///c\n", &c, msg, sizeof(msg)), -EINVAL);
        assert_non_null(strstr(msg, "no age.1"));
        assert_int_equal(conf_of("[tier]\nage.1 = 2d\n", &c, msg, sizeof(msg)), -EINVAL);
        assert_non_null(strstr(msg, "needs root.1 or class.1"));
        assert_int_equal(conf_of("[tier]\nage.1 = 2d\nclass.1 = A\nage.2 = 1d\nclass.2 = B\n", &c,
                                 msg, sizeof(msg)),
                         -EINVAL);
        assert_non_null(strstr(msg, "t.conf:4: [tier] age.2: ages must be ascending"));
        assert_int_equal(conf_of("[tier]\nage.1 = 2d\nclass.1 = A\nroot.4 = file:///x\n", &c, msg,
                                 sizeof(msg)),
                         -EINVAL);
        assert_non_null(strstr(msg, "t.conf:4: [tier] root.4: unknown key"));
        assert_int_equal(conf_of("[tier]\ns3 = sometimes\n", &c, msg, sizeof(msg)), -EINVAL);
        assert_non_null(strstr(msg, "t.conf:2"));
        conf_of(NULL, &c, msg, sizeof(msg));
}

static void test_alloc_failures(void **state)
{
        struct fx *f = *state;
        struct ice_tier_result res;
        struct census c;
        struct view v;
        char err[512];
        uint64_t total;
        int rc = -1;

        fill(f);
        /* the count of a whole run, on a copy of the table's state: a dry run scans alike */
        floe_alloc_fail_at(0);
        f->o.dry_run = true;
        assert_int_equal(ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        f->o.dry_run = false;
        total = 3 * floe_alloc_count() + 200;
        for (uint64_t n = 1; n <= total && rc != 0; n += 1 + total / 150) {
                floe_alloc_fail_at(n);
                rc = ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err));
                floe_alloc_fail_at(0);
                assert_true(rc == 0 || rc < 0);
                if (rc == 0)
                        break;
                /* a failed run leaves a readable table with every row once */
                view_open(f, &v);
                census(f, &v, &c);
                ice_table_free(v.t);
        }
        floe_alloc_fail_at(0);
        if (rc != 0)
                assert_int_equal(
                        ice_tier_move(&f->o, NULL, "floe", "events", &res, err, sizeof(err)), 0);
        view_open(f, &v);
        census(f, &v, &c);
        assert_int_equal(c.per_tier[0], 2);
        assert_int_equal(c.per_tier[1], 2);
        assert_int_equal(c.per_tier[2], 2);
        ice_table_free(v.t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_move_and_noop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expire_and_orphans, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_between_copy_and_commit, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_append, setup, teardown),
                cmocka_unit_test_setup_teardown(test_compaction_meanwhile, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
                cmocka_unit_test(test_partition_end),
                cmocka_unit_test(test_conf),
                cmocka_unit_test_setup_teardown(test_alloc_failures, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
