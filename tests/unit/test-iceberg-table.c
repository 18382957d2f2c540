/* SPDX-License-Identifier: Apache-2.0 */
/* Table operations over files: create, append (carry, merge), replace, conflicts and retries,
 * a catalog's compare-and-swap, snapshot expiry, orphan files, failing writes. */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "floe-alloc.h"
#include "ice-table.h"
#include "test-iceberg-io.h"

#define T0 INT64_C(1763676000000)

static int64_t now_ms = T0;

static int64_t fake_clock(void)
{
        return now_ms += 1000;
}

struct env {
        char dir[256];
        char location[300];
        struct test_io tio;
        struct ice_io io;
};

static int setup(void **state)
{
        struct env *e = calloc(1, sizeof(*e));
        const char *tmp = getenv("TMPDIR");

        if (!e)
                return -1;
        snprintf(e->dir, sizeof(e->dir), "%s/floe-iceberg-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(e->dir)) {
                free(e);
                return -1;
        }
        snprintf(e->location, sizeof(e->location), "file://%s/floe/events", e->dir);
        e->io = test_io_make(&e->tio);
        now_ms = T0;
        *state = e;
        return 0;
}

static int teardown(void **state)
{
        struct env *e = *state;

        test_rmtree(e->dir);
        free(e);
        return 0;
}

static struct ice_metadata *new_md(const char *location, const struct ice_kv *props, size_t n_props)
{
        static const struct ice_field fields[] = {
                {.id = 1, .name = "tenant", .required = true, .type = {ICE_TYPE_STRING}},
                {.id = 5, .name = "ts", .required = true, .type = {ICE_TYPE_TIMESTAMPTZ}},
                {.id = 6, .name = "value", .type = {ICE_TYPE_DOUBLE}},
        };
        const struct ice_partition_field part[] = {
                {.source_id = 1, .transform = {ICE_TRANSFORM_IDENTITY, 0}},
                {.source_id = 5, .transform = {ICE_TRANSFORM_HOUR, 0}},
        };
        struct ice_table_def def = {.location = location,
                                    .fields = fields,
                                    .n_fields = 3,
                                    .partition = part,
                                    .n_partition = 2,
                                    .properties = props,
                                    .n_properties = n_props};
        struct ice_metadata *md;

        assert_int_equal(ice_metadata_new(&def, T0, &md), 0);
        return md;
}

static struct ice_table *create(struct env *e, const struct ice_kv *props, size_t n_props)
{
        struct ice_metadata *md = new_md(e->location, props, n_props);
        struct ice_table *t;
        char err[256];

        assert_int_equal(ice_table_create(&e->io, NULL, md, &t, err, sizeof(err)), 0);
        ice_metadata_free(md);
        t->clock_ms = fake_clock;
        return t;
}

/* A data file of tenant, hour, with rows; the file exists on disk when real. */
static struct ice_data_file data_file(struct env *e, const char *name, const char *tenant,
                                      int32_t hour, int64_t rows, bool real)
{
        struct ice_data_file f = {
                .sort_order_id = -1, .record_count = rows, .file_size = 100 * rows};
        char path[512];

        snprintf(path, sizeof(path), "%s/data/tenant=%s/%s.parquet", e->location, tenant, name);
        f.path = floe_strdup(path);
        f.format = floe_strdup("PARQUET");
        f.n_partition = 2;
        f.partition = floe_calloc(2, sizeof(*f.partition));
        f.partition[0] = (struct ice_datum){.type = ICE_TYPE_STRING,
                                            .len = strlen(tenant),
                                            .bytes = (uint8_t *)floe_strdup(tenant)};
        f.partition[1] = (struct ice_datum){.type = ICE_TYPE_INT, .v.i = hour};
        if (real)
                assert_int_equal(tio_put(&e->tio, path, "PAR1", 4, false), 0);
        return f;
}

static int64_t append1(struct env *e, struct ice_table *t, const char *name, int64_t rows)
{
        struct ice_data_file f = data_file(e, name, "acme", 490000, rows, true);
        int64_t id;

        assert_int_equal(ice_table_append(t, &f, 1, NULL, 0, &id), 0);
        ice_data_file_clear(&f);
        return id;
}

static char *slurp(struct env *e, const char *rel)
{
        char loc[600];
        uint8_t *d;
        size_t n;

        snprintf(loc, sizeof(loc), "%s/%s", e->location, rel);
        if (tio_get(&e->tio, loc, 1 << 20, &d, &n) < 0)
                return NULL;
        return (char *)d;
}

struct live {
        int64_t files, records;
        int64_t existing, added, deleted;
        char paths[16][300];
};

static int count_live(void *ud, const struct ice_manifest_file *mf,
                      const struct ice_manifest_entry *e)
{
        struct live *l = ud;

        (void)mf;
        assert_true(e->has_sequence_number && e->has_file_sequence_number);
        if (e->status == ICE_STATUS_DELETED) {
                l->deleted++;
                return 0;
        }
        if (l->files < 16)
                snprintf(l->paths[l->files], sizeof(l->paths[0]), "%s", e->file.path);
        l->files++;
        l->records += e->file.record_count;
        if (e->status == ICE_STATUS_ADDED)
                l->added++;
        else
                l->existing++;
        return 0;
}

static struct live scan(struct ice_table *t, bool all)
{
        struct live l = {0};

        assert_int_equal(ice_table_scan(t, -1, !all, count_live, &l), 0);
        return l;
}

static const char *summary(const struct ice_table *t, const char *key)
{
        const char *v = ice_kvs_get(&ice_metadata_current_snapshot(t->md)->summary, key);

        return v ? v : "(none)";
}

static void test_create_and_append(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0), *again;
        struct ice_data_file f[3];
        struct ice_manifest_file *mf;
        struct ice_kv extra[] = {{"uploader.acme.gw-1.last-batch-seq", "7"}};
        struct ice_metadata *md;
        char *hint, err[256];
        int64_t id;
        size_t n;

        hint = slurp(e, "metadata/version-hint.text");
        assert_string_equal(hint, "1"); /* the bare number: no newline */
        floe_free(hint);
        assert_int_equal(t->version, 1);
        assert_int_equal(t->md->current_snapshot_id, -1);
        /* a second create loses */
        assert_int_equal(ice_metadata_copy(t->md, &md), 0);
        assert_int_equal(ice_table_create(&e->io, NULL, md, &again, err, sizeof(err)), -EEXIST);
        assert_non_null(strstr(err, "exists"));
        ice_metadata_free(md);

        f[0] = data_file(e, "a", "acme", 490000, 10, false);
        f[1] = data_file(e, "b", "acme", 490001, 20, false);
        f[2] = data_file(e, "c", "zeta corp", 490000, 30, false);
        assert_int_equal(ice_table_append(t, f, 3, extra, 1, &id), 0);
        assert_true(id > 0 && id <= ICE_SNAPSHOT_ID_MAX);
        assert_int_equal(t->version, 2);
        assert_int_equal(t->md->current_snapshot_id, id);
        assert_string_equal(summary(t, "operation"), "append");
        assert_string_equal(summary(t, "added-data-files"), "3");
        assert_string_equal(summary(t, "added-records"), "60");
        assert_string_equal(summary(t, "added-files-size"), "6000");
        assert_string_equal(summary(t, "changed-partition-count"), "3");
        assert_string_equal(summary(t, "total-records"), "60");
        assert_string_equal(summary(t, "total-data-files"), "3");
        assert_string_equal(summary(t, "uploader.acme.gw-1.last-batch-seq"), "7");
        hint = slurp(e, "metadata/version-hint.text");
        assert_string_equal(hint, "2");
        floe_free(hint);
        assert_int_equal(t->md->n_metadata_log, 1);
        assert_non_null(strstr(t->md->metadata_log[0].file, "/metadata/v1.metadata.json"));

        assert_int_equal(ice_table_manifests(t, ice_metadata_current_snapshot(t->md), &mf, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(mf[0].added_snapshot_id, id);
        assert_int_equal(mf[0].sequence_number, 1);
        assert_int_equal(mf[0].min_sequence_number, 1);
        assert_int_equal(mf[0].added_files, 3);
        assert_int_equal(mf[0].n_partitions, 2);
        assert_memory_equal(mf[0].partitions[0].lower, "acme", 4);
        assert_memory_equal(mf[0].partitions[0].upper, "zeta corp", 9);
        ice_manifest_files_free(mf, n);
        assert_int_equal(scan(t, false).records, 60);

        /* a fresh handle from version-hint.text sees the same */
        assert_int_equal(ice_table_open(&e->io, NULL, e->location, &again, err, sizeof(err)), 0);
        assert_int_equal(again->version, 2);
        assert_int_equal(again->md->current_snapshot_id, id);
        ice_table_free(again);
        for (int i = 0; i < 3; i++)
                ice_data_file_clear(&f[i]);
        /* a file of another spec shape is refused, nothing committed */
        f[0] = data_file(e, "x", "acme", 1, 1, false);
        f[0].n_partition = 1;
        assert_int_equal(ice_table_append(t, f, 1, NULL, 0, &id), -EINVAL);
        f[0].n_partition = 2;
        ice_data_file_clear(&f[0]);
        assert_int_equal(t->version, 2);
        ice_table_free(t);
}

static void test_carry_and_merge(void **state)
{
        struct env *e = *state;
        struct ice_kv props[] = {{ICE_PROP_MERGE_MIN_COUNT, "4"}};
        struct ice_table *t = create(e, props, 1);
        struct ice_manifest_file *mf, *prev = NULL;
        size_t n, n_prev = 0;
        struct live l;
        char name[8];

        for (int i = 0; i < 3; i++) {
                snprintf(name, sizeof(name), "f%d", i);
                append1(e, t, name, 10 + i);
                assert_int_equal(
                        ice_table_manifests(t, ice_metadata_current_snapshot(t->md), &mf, &n), 0);
                assert_int_equal(n, (size_t)i + 1);
                /* the earlier manifests are carried by reference: same files, same numbers */
                for (size_t k = 0; k < n_prev; k++) {
                        assert_string_equal(mf[k + 1].path, prev[k].path);
                        assert_int_equal(mf[k + 1].sequence_number, prev[k].sequence_number);
                }
                assert_int_equal(mf[0].sequence_number, i + 1);
                assert_string_equal(summary(t, "manifests-kept"), i == 0   ? "0"
                                                                  : i == 1 ? "1"
                                                                           : "2");
                ice_manifest_files_free(prev, n_prev);
                prev = mf;
                n_prev = n;
        }
        ice_manifest_files_free(prev, n_prev);
        /* the fourth reaches commit.manifest.min-count-to-merge: one manifest */
        append1(e, t, "f3", 13);
        assert_int_equal(ice_table_manifests(t, ice_metadata_current_snapshot(t->md), &mf, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(mf[0].added_files, 1);
        assert_int_equal(mf[0].existing_files, 3);
        assert_int_equal(mf[0].sequence_number, 4);
        assert_int_equal(mf[0].min_sequence_number, 1);
        ice_manifest_files_free(mf, n);
        assert_string_equal(summary(t, "manifests-created"), "1");
        assert_string_equal(summary(t, "manifests-replaced"), "3");
        assert_string_equal(summary(t, "total-records"), "46");
        l = scan(t, true);
        assert_int_equal(l.files, 4);
        assert_int_equal(l.existing, 3);
        assert_int_equal(l.added, 1);
        assert_int_equal(l.records, 46);
        /* the standalone new manifest was merged and removed: no orphans */
        {
                struct ice_strv o;

                assert_int_equal(ice_table_orphans(t, INT64_MAX, &o), 0);
                for (size_t i = 0; i < o.n; i++)
                        assert_null(strstr(o.v[i], "-m0.avro"));
                ice_strv_clear(&o);
        }
        ice_table_free(t);
}

static void test_replace(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0);
        struct ice_data_file rm[2], add, gone;
        int64_t before, id;
        struct live l;

        rm[0] = data_file(e, "a", "acme", 490000, 10, false);
        rm[1] = data_file(e, "b", "acme", 490000, 20, false);
        assert_int_equal(ice_table_append(t, rm, 2, NULL, 0, NULL), 0);
        append1(e, t, "other", 5);
        add = data_file(e, "ab", "acme", 490000, 30, false);
        assert_int_equal(ice_table_replace(t, rm, 2, &add, 1, NULL, 0, &id), 0);
        assert_string_equal(summary(t, "operation"), "replace");
        assert_string_equal(summary(t, "added-data-files"), "1");
        assert_string_equal(summary(t, "deleted-data-files"), "2");
        assert_string_equal(summary(t, "added-records"), "30");
        assert_string_equal(summary(t, "deleted-records"), "30");
        assert_string_equal(summary(t, "removed-files-size"), "3000");
        assert_string_equal(summary(t, "total-records"), "35");
        assert_string_equal(summary(t, "total-data-files"), "2");
        assert_string_equal(summary(t, "changed-partition-count"), "1");
        l = scan(t, true);
        assert_int_equal(l.files, 2);
        assert_int_equal(l.deleted, 2);
        assert_int_equal(l.records, 35);
        /* replacing a file that is no longer live: refused, nothing committed */
        before = t->version;
        gone = data_file(e, "a", "acme", 490000, 10, false);
        assert_int_equal(ice_table_replace(t, &gone, 1, NULL, 0, NULL, 0, NULL), -ENOENT);
        assert_int_equal(t->version, before);
        /* the same path twice */
        assert_int_equal(
                ice_table_replace(t, (struct ice_data_file[]){add, add}, 2, NULL, 0, NULL, 0, NULL),
                -EINVAL);
        /* a tier move: same rows at a new path; partition pruning by the summaries still
         * finds the file */
        {
                struct ice_data_file moved = data_file(e, "ab-cold", "acme", 490000, 30, false);

                assert_int_equal(ice_table_replace(t, &add, 1, &moved, 1, NULL, 0, NULL), 0);
                assert_string_equal(summary(t, "total-records"), "35");
                ice_data_file_clear(&moved);
        }
        ice_data_file_clear(&gone);
        ice_data_file_clear(&add);
        ice_data_file_clear(&rm[0]);
        ice_data_file_clear(&rm[1]);
        ice_table_free(t);
}

static void test_conflict_retry(void **state)
{
        struct env *e = *state;
        struct ice_table *a = create(e, NULL, 0), *b;
        struct ice_data_file f;
        char err[256];
        int64_t ida, idb;
        struct live l;

        assert_int_equal(ice_table_open(&e->io, NULL, e->location, &b, err, sizeof(err)), 0);
        b->clock_ms = fake_clock;
        ida = append1(e, a, "from-a", 1);
        /* b's base is v1: its v2 exists, it reloads and lands on top of a's snapshot */
        idb = append1(e, b, "from-b", 2);
        assert_int_equal(b->version, 3);
        assert_true(ice_metadata_current_snapshot(b->md)->has_parent);
        assert_int_equal(ice_metadata_current_snapshot(b->md)->parent_id, ida);
        assert_int_equal(ice_metadata_current_snapshot(b->md)->sequence_number, 2);
        assert_int_equal(b->md->current_snapshot_id, idb);
        assert_string_equal(summary(b, "total-records"), "3");
        l = scan(b, false);
        assert_int_equal(l.files, 2);
        /* a is stale now; without retries its append fails and leaves nothing behind */
        assert_int_equal(ice_kvs_set(&a->md->properties, ICE_PROP_COMMIT_RETRIES, "0"), 0);
        f = data_file(e, "lost", "acme", 490000, 1, false);
        assert_int_equal(ice_table_append(a, &f, 1, NULL, 0, NULL), -ESTALE);
        ice_data_file_clear(&f);
        {
                struct ice_strv o;

                assert_int_equal(ice_table_orphans(b, INT64_MAX, &o), 0);
                for (size_t i = 0; i < o.n; i++)
                        assert_null(strstr(o.v[i], "/metadata/")); /* only data files */
                ice_strv_clear(&o);
        }
        ice_table_free(a);
        ice_table_free(b);
}

/* An in-memory catalog with compare-and-swap. */
struct fake_catalog {
        struct ice_catalog_ops ops;
        char location[512];
        int swaps, refused;
};

static int fc_load(void *ud, char **ret)
{
        struct fake_catalog *c = ud;

        if (!c->location[0])
                return -ENOENT;
        *ret = floe_strdup(c->location);
        return 0;
}

static int fc_create(void *ud, const char *location)
{
        struct fake_catalog *c = ud;

        if (c->location[0])
                return -EEXIST;
        snprintf(c->location, sizeof(c->location), "%s", location);
        return 0;
}

static int fc_swap(void *ud, const char *expected, const char *new_location)
{
        struct fake_catalog *c = ud;

        if (strcmp(c->location, expected) != 0) {
                c->refused++;
                return -ESTALE;
        }
        snprintf(c->location, sizeof(c->location), "%s", new_location);
        c->swaps++;
        return 0;
}

static void test_catalog_cas(void **state)
{
        struct env *e = *state;
        struct fake_catalog fc = {.ops = {.load = fc_load, .create = fc_create, .swap = fc_swap}};
        struct ice_table *a, *b;
        struct ice_metadata *md;
        char err[256], *leftover;

        fc.ops.ud = &fc;
        md = new_md(e->location, NULL, 0);
        assert_int_equal(ice_table_create(&e->io, &fc.ops, md, &a, err, sizeof(err)), 0);
        ice_metadata_free(md);
        a->clock_ms = fake_clock;
        assert_non_null(strstr(fc.location, "/metadata/v1.metadata.json"));
        assert_int_equal(ice_table_open(&e->io, &fc.ops, e->location, &b, err, sizeof(err)), 0);
        b->clock_ms = fake_clock;
        append1(e, a, "a1", 1);
        assert_int_equal(fc.swaps, 1);
        assert_non_null(strstr(fc.location, "/metadata/v2.metadata.json"));
        /* a leftover v3 from an attempt that lost its swap does not block the table */
        leftover = floe_strdup(fc.location);
        leftover[strlen(leftover) - strlen("2.metadata.json")] = '3';
        assert_int_equal(tio_put(&e->tio, leftover, "{}", 2, true), 0);
        /* b: v2 exists, so it takes v3 -> taken -> v4, then its swap from v1 is refused; it
         * deletes its v4, reloads from the catalog and commits */
        append1(e, b, "b1", 2);
        assert_int_equal(fc.refused, 1);
        assert_int_equal(fc.swaps, 2);
        assert_string_equal(b->metadata_location, fc.location);
        assert_int_equal(b->md->n_snapshots, 2);
        assert_int_equal(scan(b, false).records, 3);
        floe_free(leftover);
        ice_table_free(a);
        ice_table_free(b);
}

static int exists(struct env *e, const char *location)
{
        uint8_t *d = NULL;
        size_t n;
        int r = tio_get(&e->tio, location, 1 << 20, &d, &n);

        if (r == 0)
                floe_free(d);
        return r == 0;
}

static void test_expire(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0);
        struct ice_data_file f0, f0b;
        struct ice_expire_opts o = {.older_than_ms = -1, .retain_last = 2};
        struct ice_strv files;
        int64_t s1, s2, s3;
        size_t lists = 0, manifests = 0, data = 0;

        s1 = append1(e, t, "f0", 10);
        s2 = append1(e, t, "f1", 11);
        f0 = data_file(e, "f0", "acme", 490000, 10, false);
        f0b = data_file(e, "f0b", "acme", 490000, 10, true);
        assert_int_equal(ice_table_replace(t, &f0, 1, &f0b, 1, NULL, 0, &s3), 0);
        append1(e, t, "f2", 12);
        append1(e, t, "f3", 13);
        o.now_ms = now_ms + 1000;
        o.older_than_ms = o.now_ms;
        assert_int_equal(ice_table_expire(t, &o, false, &files), 0);
        assert_int_equal(t->md->n_snapshots, 2);
        assert_null(ice_metadata_snapshot(t->md, s1));
        assert_null(ice_metadata_snapshot(t->md, s3));
        for (size_t i = 0; i < files.n; i++) {
                if (strstr(files.v[i], "/metadata/snap-"))
                        lists++;
                else if (strstr(files.v[i], "/metadata/"))
                        manifests++;
                else
                        data++;
                assert_true(exists(e, files.v[i]));
        }
        /* three manifest lists; f0's original manifest (rewritten by the replace); f0 itself */
        assert_int_equal(lists, 3);
        assert_int_equal(manifests, 1);
        assert_int_equal(data, 1);
        assert_non_null(strstr(files.v[0], "/f0.parquet"));
        for (size_t i = 0; i < files.n; i++)
                e->io.del(e->io.ud, files.v[i]);
        ice_strv_clear(&files);
        /* the table reads completely without them */
        assert_int_equal(scan(t, false).records, 10 + 11 + 12 + 13);
        assert_int_equal(scan(t, true).deleted, 1);
        /* nothing more to expire */
        assert_int_equal(ice_table_expire(t, &o, true, &files), 0);
        assert_int_equal(files.n, 0);
        ice_data_file_clear(&f0);
        ice_data_file_clear(&f0b);
        (void)s2;
        ice_table_free(t);
}

static void test_expire_with_tag(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0);
        struct ice_expire_opts o = {.retain_last = 1};
        struct ice_metadata *md;
        struct ice_ref *refs;
        struct ice_strv files;
        int64_t s1;

        s1 = append1(e, t, "f0", 1);
        append1(e, t, "f1", 1);
        append1(e, t, "f2", 1);
        /* tag the first snapshot: its files stay, only the lists of s2 go */
        assert_int_equal(ice_metadata_copy(t->md, &md), 0);
        refs = floe_reallocarray(md->refs, md->n_refs + 1, sizeof(*refs));
        md->refs = refs;
        refs[md->n_refs++] =
                (struct ice_ref){.name = floe_strdup("first"), .snapshot_id = s1, .tag = true};
        assert_int_equal(ice_table_commit(t, md), 0);
        o.now_ms = now_ms + 1000;
        o.older_than_ms = o.now_ms;
        assert_int_equal(ice_table_expire(t, &o, true, &files), 0);
        assert_int_equal(t->md->n_snapshots, 2);
        assert_non_null(ice_metadata_snapshot(t->md, s1));
        assert_int_equal(files.n, 1);
        assert_non_null(strstr(files.v[0], "/metadata/snap-"));
        assert_false(exists(e, files.v[0]));
        ice_strv_clear(&files);
        assert_int_equal(scan(t, false).files, 3);
        /* gc.enabled=false: refused */
        assert_int_equal(ice_kvs_set(&t->md->properties, ICE_PROP_GC_ENABLED, "false"), 0);
        assert_int_equal(ice_table_expire(t, &o, true, &files), -EPERM);
        ice_table_free(t);
}

static void test_orphans(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0);
        struct ice_strv o;
        char stray[600];

        append1(e, t, "kept", 3);
        append1(e, t, "kept2", 3);
        snprintf(stray, sizeof(stray), "%s/data/tenant=acme/stray.parquet", e->location);
        assert_int_equal(tio_put(&e->tio, stray, "x", 1, false), 0);
        assert_int_equal(ice_table_orphans(t, INT64_MAX, &o), 0);
        assert_int_equal(o.n, 1);
        assert_string_equal(o.v[0], stray);
        ice_strv_clear(&o);
        /* too young to be an orphan */
        assert_int_equal(ice_table_orphans(t, 0, &o), 0);
        assert_int_equal(o.n, 0);
        ice_strv_clear(&o);
        ice_table_free(t);
}

static void test_add_column_and_hints(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0), *u;
        struct ice_type lng = {.id = ICE_TYPE_LONG};
        char hint[600], err[256];

        assert_int_equal(ice_table_add_column(t, "batch_seq", &lng, NULL), 0);
        assert_int_equal(ice_metadata_current_schema(t->md)->fields[3].id, 7);
        append1(e, t, "f", 1);
        assert_int_equal(t->version, 3);
        /* a commit that died before its hint: the newer version is found */
        snprintf(hint, sizeof(hint), "%s/metadata/version-hint.text", e->location);
        assert_int_equal(tio_put(&e->tio, hint, "1", 1, false), 0);
        assert_int_equal(ice_table_open(&e->io, NULL, e->location, &u, err, sizeof(err)), 0);
        assert_int_equal(u->version, 3);
        assert_int_equal(u->md->current_schema_id, 1);
        ice_table_free(u);
        /* no hint at all: the largest listed version */
        e->io.del(e->io.ud, hint);
        assert_int_equal(ice_table_open(&e->io, NULL, e->location, &u, err, sizeof(err)), 0);
        assert_int_equal(u->version, 3);
        ice_table_free(u);
        /* a bad hint */
        assert_int_equal(tio_put(&e->tio, hint, "x", 1, false), 0);
        assert_int_equal(ice_table_open(&e->io, NULL, e->location, &u, err, sizeof(err)), -EBADMSG);
        ice_table_free(t);
}

/* Each write of an append fails in turn: the append fails, the table stays at its old
 * snapshot and reads completely. */
static void test_failing_writes(void **state)
{
        struct env *e = *state;
        struct ice_table *t = create(e, NULL, 0), *u;
        char err[256];

        append1(e, t, "first", 1);
        for (unsigned k = 1;; k++) {
                struct ice_data_file f = data_file(e, "second", "acme", 490000, 2, false);
                int r;

                e->tio.puts = 0;
                e->tio.fail_put_at = k;
                r = ice_table_append(t, &f, 1, NULL, 0, NULL);
                e->tio.fail_put_at = 0;
                ice_data_file_clear(&f);
                assert_int_equal(ice_table_open(&e->io, NULL, e->location, &u, err, sizeof(err)),
                                 0);
                if (r == 0) {
                        /* only the best-effort version hint was left to fail */
                        assert_true(k > 3);
                        assert_int_equal(scan(u, false).records, 3);
                        ice_table_free(u);
                        break;
                }
                assert_int_equal(r, -EIO);
                assert_int_equal(scan(u, false).records, 1);
                assert_int_equal(u->md->n_snapshots, 1);
                ice_table_free(u);
        }
        ice_table_free(t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_create_and_append, setup, teardown),
                cmocka_unit_test_setup_teardown(test_carry_and_merge, setup, teardown),
                cmocka_unit_test_setup_teardown(test_replace, setup, teardown),
                cmocka_unit_test_setup_teardown(test_conflict_retry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_catalog_cas, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expire, setup, teardown),
                cmocka_unit_test_setup_teardown(test_expire_with_tag, setup, teardown),
                cmocka_unit_test_setup_teardown(test_orphans, setup, teardown),
                cmocka_unit_test_setup_teardown(test_add_column_and_hints, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failing_writes, setup, teardown),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
