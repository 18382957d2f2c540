/* SPDX-License-Identifier: Apache-2.0 */
/* What the maintenance worker does to one table: compaction, tier moves, snapshot expiry, old
 * metadata files and orphan files (docs/uploader.md, "Maintenance"). */
#include "maintain-internal.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "ice-floe.h"
#include "ice-maint.h"
#include "ice-table.h"
#include "lake.h"
#include "store.h"

uint64_t upl_maint_mono_us(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

int64_t upl_maint_wall_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool upl_maint_stopping(struct upl_maint *m)
{
        return atomic_load(&m->stop);
}

void upl_maint_fail(struct upl_maint_result *res, enum upl_maint_task task, int r, const char *why)
{
        const char *text = why && *why ? why : strerror(-r);
        size_t n = strnlen(text, sizeof(res->why[task]) - 1); /* the start tells */

        res->error[task] = r;
        memcpy(res->why[task], text, n);
        res->why[task][n] = '\0';
}

/* Whether the next task may start: not when the daemon stops (then the result says so). */
bool upl_maint_may(struct upl_maint *m, struct upl_maint_result *res)
{
        if (!upl_maint_stopping(m))
                return true;
        res->stopped = true;
        return false;
}

/* -- the table ---------------------------------------------------------------------------- */

static int open_table(struct upl_maint *m, unsigned index, struct tbl *tb, char *why, size_t size)
{
        const char *ns = m->conf->ns;
        char key[1024], loc[4096];
        int r;

        tb->m = m;
        tb->index = index;
        tb->name = ice_floe_table_name(index == 0 ? FLOE_KIND_EVENTS : FLOE_KIND_AGGREGATES);
        if (snprintf(key, sizeof(key), "%s/%s", ns, tb->name) >= (int)sizeof(key))
                return -ENAMETOOLONG;
        for (char *p = key; *p; p++)
                if (*p == '.')
                        *p = '/'; /* nested namespaces are directories, as the writer has it */
        r = lake_store_location(m->lake.store, key, loc, sizeof(loc));
        if (r < 0)
                return r;
        if (m->tier.n_tiers > 1)
                ice_tier_io(&tb->ti, &m->tier, &tb->io); /* each file in the root holding it */
        else
                ice_io_store(m->lake.store, &tb->io);
        ice_catalog_sql(&tb->sql, m->lake.catalog, ns, tb->name);
        return ice_table_open(&tb->io, &tb->sql.ops, loc, &tb->t, why, size);
}

static const char *table_error(const struct ice_table *t, int r)
{
        return t->error[0] ? t->error : strerror(-r);
}

/* The sequence number of the last complete compaction: floe.maintenance=compact in the
 * history (its other steps say compact-partial), else what this process saw before (expiry may
 * have removed it). */
static void note_compactions(struct tbl *tb)
{
        const struct ice_metadata *md = tb->t->md;
        int64_t *seq = &tb->m->compact_seq[tb->index];

        for (size_t i = 0; i < md->n_snapshots; i++) {
                const char *v = ice_kvs_get(&md->snapshots[i].summary, "floe.maintenance");

                if (v && strcmp(v, "compact") == 0 && md->snapshots[i].sequence_number > *seq)
                        *seq = md->snapshots[i].sequence_number;
        }
}

static int refresh(struct tbl *tb)
{
        int r = ice_table_refresh(tb->t);

        if (r == 0)
                note_compactions(tb);
        return r;
}

static bool gc_enabled(const struct ice_table *t)
{
        const char *gc = ice_kvs_get(&t->md->properties, ICE_PROP_GC_ENABLED);

        return !gc || strcmp(gc, "false") != 0;
}

/* Deletes files (locations; with only, those in it), checking the stop flag between batches:
 * what is left becomes an orphan for a later pass. */
static void delete_files(struct tbl *tb, const struct ice_strv *files,
                         const struct ice_strset *only, struct upl_maint_result *res,
                         enum upl_maint_task task)
{
        for (size_t i = 0; i < files->n; i++) {
                int r;

                if (i % DELETE_BATCH == 0 && i > 0 && !upl_maint_may(tb->m, res))
                        return;
                if (only && !ice_strset_has(only, files->v[i]))
                        continue;
                r = tb->io.del(tb->io.ud, files->v[i]);
                if (r == 0)
                        res->deleted[task]++;
                else if (!res->not_deleted[task]++)
                        snprintf(res->why[task], sizeof(res->why[task]), "%s: %s", files->v[i],
                                 strerror(-r));
        }
}

/* The ids of the table's snapshots now (floe_malloc). */
static int snapshot_ids(const struct ice_metadata *md, int64_t **ret, size_t *ret_n)
{
        int64_t *ids = floe_calloc(md->n_snapshots + 1, sizeof(*ids));

        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; i < md->n_snapshots; i++)
                ids[i] = md->snapshots[i].snapshot_id;
        *ret = ids;
        *ret_n = md->n_snapshots;
        return 0;
}

/* -- compaction ---------------------------------------------------------------------------- */

struct small {
        char *part; /* partition path */
        uint64_t bytes;
};

struct scan {
        const struct ice_metadata *md;
        uint64_t small;
        struct small *v;
        size_t n, cap;
};

/* The small Parquet data files of the current snapshot, with their partition paths (as
 * ice_compact chooses them). */
static int scan_small(void *ud, const struct ice_manifest_file *mf,
                      const struct ice_manifest_entry *e)
{
        struct scan *s = ud;
        const struct ice_partition_spec *spec = ice_metadata_spec(s->md, mf->spec_id);
        const struct ice_data_file *f = &e->file;
        char path[2048];

        if (f->content != ICE_CONTENT_DATA || !f->format || strcmp(f->format, "PARQUET") != 0 ||
            (uint64_t)f->file_size >= s->small || !spec ||
            ice_partition_path(spec, f->partition, f->n_partition, path, sizeof(path)) < 0)
                return 0;
        if (s->n == s->cap) {
                size_t cap = s->cap ? 2 * s->cap : 64;
                struct small *v = floe_reallocarray(s->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n].part = floe_strdup(path);
        if (!s->v[s->n].part)
                return -ENOMEM;
        s->v[s->n++].bytes = (uint64_t)f->file_size;
        return 0;
}

static int cmp_small(const void *a, const void *b)
{
        return strcmp(((const struct small *)a)->part, ((const struct small *)b)->part);
}

static uint64_t target_of(const struct tbl *tb, const struct upl_maint_settings *set)
{
        int64_t v = 0;

        if (set->compact_target_size)
                return set->compact_target_size;
        if (tb->m->conf->writer.target_file_bytes)
                return tb->m->conf->writer.target_file_bytes;
        if (ice_kvs_get_i64(&tb->t->md->properties, "write.target-file-size-bytes",
                            (int64_t)TARGET_DEFAULT, &v) < 0 ||
            v <= 0)
                v = (int64_t)TARGET_DEFAULT;
        return (uint64_t)v;
}

/* One step: the partitions parts[0..n) rewritten in one replace snapshot; the last step of a
 * run marks the compaction complete. */
static int compact_step(struct tbl *tb, const struct upl_maint_request *req, uint64_t target,
                        uint64_t small, const char *const *parts, size_t n, bool last,
                        struct upl_maint_result *res)
{
        const struct ice_kv summary[] = {
                {(char *)"floe.maintenance", (char *)(last ? "compact" : "compact-partial")},
                {(char *)"floe.uploader", (char *)req->uploader},
        };
        struct ice_compact_opts o = {
                .target_bytes = target,
                .small_bytes = small,
                .min_files = (size_t)req->set.compact_min_files,
                .partitions = parts,
                .n_partitions = n,
                .summary = summary,
                .n_summary = ELEMENTSOF(summary),
        };
        struct ice_compact_result cr;
        char err[600];
        int r;

        for (int attempt = 0;; attempt++) {
                r = ice_compact(tb->m->lake.store, tb->m->lake.catalog, tb->m->conf->ns, tb->name,
                                &o, &cr, err, sizeof(err));
                /* lost to appends more often than the table's commit.retry allows: again */
                if ((r != -ESTALE && r != -EEXIST) || attempt >= RETRIES ||
                    upl_maint_stopping(tb->m))
                        break;
                res->retries++;
        }
        if (r < 0) {
                if (!res->error[UPL_MAINT_COMPACT]) /* the first failure tells */
                        upl_maint_fail(res, UPL_MAINT_COMPACT, r, err);
                return r;
        }
        res->skipped += cr.skipped;
        if (cr.snapshot_id == 0)
                return 0;
        res->commits++;
        res->partitions += cr.partitions;
        res->files_in += cr.files_in;
        res->files_out += cr.files_out;
        res->rows += cr.rows;
        res->bytes_in += cr.bytes_in;
        res->bytes_out += cr.bytes_out;
        res->retries += cr.retries;
        return 0;
}

static int compact(struct tbl *tb, const struct upl_maint_request *req,
                   struct upl_maint_result *res)
{
        const struct upl_maint_settings *set = &req->set;
        const struct ice_snapshot *cur = ice_metadata_current_snapshot(tb->t->md);
        struct scan s = {.md = tb->t->md};
        const char **parts = NULL;
        uint64_t target, small, bytes = 0;
        int64_t seq;
        int r = 0;

        if (!cur)
                return 0;
        seq = tb->m->compact_seq[tb->index];
        if (tb->m->checked_seq[tb->index] > seq)
                seq = tb->m->checked_seq[tb->index];
        res->since_compaction = (uint64_t)(cur->sequence_number - seq);
        if (res->since_compaction < set->compact_min_snapshots)
                return 0;
        seq = cur->sequence_number;
        res->ran[UPL_MAINT_COMPACT] = true;
        target = target_of(tb, set);
        small = (uint64_t)((double)target * set->compact_small_fraction);
        s.small = small ? small : 1;
        r = ice_table_scan(tb->t, -1, true, scan_small, &s);
        if (r < 0) {
                upl_maint_fail(res, UPL_MAINT_COMPACT, r, table_error(tb->t, r));
                goto out;
        }
        qsort(s.v, s.n, sizeof(*s.v), cmp_small);
        parts = floe_calloc(s.n + 1, sizeof(*parts));
        if (!parts) {
                r = -ENOMEM;
                upl_maint_fail(res, UPL_MAINT_COMPACT, r, NULL);
                goto out;
        }
        /* the partitions with enough small files, in steps of about compact_step input bytes:
         * one replace snapshot each */
        for (size_t a = 0, b, n = 0; a < s.n; a = b) {
                bool last;

                for (b = a; b < s.n && strcmp(s.v[a].part, s.v[b].part) == 0; b++)
                        ;
                if (b - a >= set->compact_min_files) {
                        parts[n++] = s.v[a].part;
                        for (size_t i = a; i < b; i++)
                                bytes += s.v[i].bytes;
                }
                last = b == s.n;
                if (n == 0 || (bytes < set->compact_step && !last))
                        continue;
                if (!upl_maint_may(tb->m, res))
                        break;
                if (compact_step(tb, req, target, small, parts, n, last, res) < 0 && r == 0)
                        r = res->error[UPL_MAINT_COMPACT];
                n = 0;
                bytes = 0;
        }
        /* done, or nothing to do: considered again after compact_min_snapshots more */
        if (r == 0 && !res->stopped)
                tb->m->checked_seq[tb->index] = seq;
out:
        for (size_t i = 0; i < s.n; i++)
                floe_free(s.v[i].part);
        floe_free(s.v);
        floe_free(parts);
        return r;
}

/* -- tiers ----------------------------------------------------------------------------------- */

static void tier_retry(void *ud, int attempt, const char *why)
{
        (void)attempt;
        (void)why;
        ((struct upl_maint_result *)ud)->retries++;
}

/* File roots: partitions past a tier's age move in one replace snapshot (at most tier_max_files
 * files a run); without roots (S3 classes): the lifecycle rule, or CopyObject by age. */
static int tier(struct tbl *tb, const struct upl_maint_request *req, struct upl_maint_result *res)
{
        const struct ice_kv summary[] = {
                {(char *)"floe.maintenance", (char *)"tier"},
                {(char *)"floe.uploader", (char *)req->uploader},
        };
        struct upl_maint *m = tb->m;
        struct ice_tier_opts o = m->tier;
        struct ice_tier_result tr;
        bool roots = false;
        char err[600];
        int r;

        res->ran[UPL_MAINT_TIER] = true;
        for (size_t i = 1; i < o.n_tiers; i++)
                roots = roots || m->tiers->root[i];
        o.max_files = (size_t)req->set.tier_max_files;
        o.summary = summary;
        o.n_summary = ELEMENTSOF(summary);
        o.on_retry = tier_retry;
        o.retry_ud = res;
        for (int attempt = 0;; attempt++) {
                r = roots ? ice_tier_move(&o, m->lake.catalog, m->conf->ns, tb->name, &tr, err,
                                          sizeof(err))
                          : ice_tier_s3(&o, m->lake.catalog, m->conf->ns, tb->name, &tr, err,
                                        sizeof(err));
                if ((r != -ESTALE && r != -EEXIST) || attempt >= RETRIES || upl_maint_stopping(m))
                        break;
        }
        if (r < 0) {
                upl_maint_fail(res, UPL_MAINT_TIER, r, err);
                return r;
        }
        res->tier_files = roots ? tr.files : tr.objects_changed;
        res->tier_partitions = tr.partitions;
        res->tier_bytes = tr.bytes;
        res->lifecycle_changed = tr.lifecycle_changed;
        return refresh(tb); /* committed beside this table handle */
}

/* -- expiry ---------------------------------------------------------------------------------- */

static size_t count_gone(const int64_t *ids, size_t n, const struct ice_metadata *md)
{
        size_t gone = 0;

        for (size_t i = 0; i < n; i++)
                gone += !ice_metadata_snapshot(md, ids[i]);
        return gone;
}

static int expire(struct tbl *tb, const struct upl_maint_request *req, int64_t now_ms,
                  struct upl_maint_result *res)
{
        const struct upl_maint_settings *set = &req->set;
        struct ice_expire_opts o = {
                .now_ms = now_ms,
                .older_than_ms = now_ms - (int64_t)(set->expire_max_age_us / 1000),
                .retain_last = set->expire_min_snapshots > INT32_MAX
                                       ? INT32_MAX
                                       : (int32_t)set->expire_min_snapshots,
        };
        struct ice_strv files = {0};
        int64_t *ids = NULL;
        size_t n_ids = 0;
        int r;

        res->ran[UPL_MAINT_EXPIRE] = true;
        for (int attempt = 0;; attempt++) {
                floe_free(ids);
                ids = NULL;
                r = refresh(tb);
                if (r == 0)
                        r = snapshot_ids(tb->t->md, &ids, &n_ids);
                /* conflicts are rebased there (commit.retry); beyond, the whole step again */
                if (r == 0)
                        r = ice_table_expire(tb->t, &o, false, &files);
                if ((r != -ESTALE && r != -EEXIST) || attempt >= RETRIES ||
                    upl_maint_stopping(tb->m))
                        break;
        }
        if (r < 0) {
                upl_maint_fail(res, UPL_MAINT_EXPIRE, r, table_error(tb->t, r));
                floe_free(ids);
                return r;
        }
        res->snapshots_expired = count_gone(ids, n_ids, tb->t->md);
        note_compactions(tb);
        floe_free(ids);
        delete_files(tb, &files, NULL, res, UPL_MAINT_EXPIRE);
        ice_strv_clear(&files);
        return 0;
}

/* -- old metadata files --------------------------------------------------------------------- */

/* N of ".../v<N>.metadata.json" or ".../<N>-<uuid>.metadata.json" (Java's), else -1. */
static int64_t metadata_version(const char *location)
{
        const char *base = strrchr(location, '/');
        size_t len;
        int64_t v = 0;

        base = base ? base + 1 : location;
        len = strlen(base);
        if (len < 15 || strcmp(base + len - 14, ".metadata.json") != 0)
                return -1;
        if (*base == 'v')
                base++;
        if (*base < '0' || *base > '9')
                return -1;
        for (; *base >= '0' && *base <= '9'; base++) {
                if (v > (INT64_MAX - 9) / 10)
                        return -1;
                v = v * 10 + (*base - '0');
        }
        return *base == '.' || *base == '-' ? v : -1;
}

struct old_meta {
        int64_t below;
        const char *current;
        struct ice_strv *out;
};

static int old_meta_entry(void *ud, const char *location, uint64_t size, int64_t mtime_ms)
{
        struct old_meta *o = ud;
        int64_t v = metadata_version(location);

        (void)size;
        (void)mtime_ms;
        if (v < 0 || v >= o->below || strcmp(location, o->current) == 0)
                return 0;
        return ice_strv_add(o->out, location);
}

/* With write.metadata.delete-after-commit.enabled, metadata files older than every file of the
 * metadata-log: those a commit should have deleted (a crash came between). */
static int old_metadata(struct tbl *tb, struct upl_maint_result *res)
{
        const struct ice_metadata *md = tb->t->md;
        const char *on = ice_kvs_get(&md->properties, "write.metadata.delete-after-commit.enabled");
        struct ice_strv files = {0};
        struct old_meta o = {.current = tb->t->metadata_location, .out = &files};
        _cleanup_free_ char *prefix = NULL;
        size_t n;
        int r;

        if (!on || strcmp(on, "true") != 0)
                return 0;
        res->ran[UPL_MAINT_METADATA] = true;
        o.below = metadata_version(tb->t->metadata_location);
        for (size_t i = 0; i < md->n_metadata_log; i++) {
                int64_t v = metadata_version(md->metadata_log[i].file);

                if (v >= 0 && v < o.below)
                        o.below = v;
        }
        if (o.below <= 0)
                return 0; /* names floe cannot order: left to the orphan pass */
        n = strlen(md->location) + sizeof("/metadata/");
        prefix = floe_malloc(n);
        if (!prefix) {
                upl_maint_fail(res, UPL_MAINT_METADATA, -ENOMEM, NULL);
                return -ENOMEM;
        }
        snprintf(prefix, n, "%s/metadata/", md->location);
        r = tb->io.list(tb->io.ud, prefix, old_meta_entry, &o);
        if (r < 0) {
                upl_maint_fail(res, UPL_MAINT_METADATA, r, "cannot list the metadata files");
                ice_strv_clear(&files);
                return r;
        }
        ice_strv_sort_unique(&files);
        delete_files(tb, &files, NULL, res, UPL_MAINT_METADATA);
        ice_strv_clear(&files);
        return 0;
}

/* -- orphans --------------------------------------------------------------------------------- */

static int keep_entry(void *ud, const struct ice_manifest_file *mf,
                      const struct ice_manifest_entry *e)
{
        (void)mf;
        ice_strset_remove(ud, e->file.path);
        return 0;
}

/* Files of snapshots committed since the orphans were found (before: the snapshot ids then)
 * are not orphans: a file registered in place may be old. */
static int recheck(struct tbl *tb, const int64_t *before, size_t n_before, struct ice_strset *cand)
{
        const struct ice_metadata *md;
        int r;

        r = refresh(tb);
        if (r < 0)
                return r;
        md = tb->t->md;
        ice_strset_remove(cand, tb->t->metadata_location);
        for (size_t i = 0; i < md->n_metadata_log; i++)
                ice_strset_remove(cand, md->metadata_log[i].file);
        for (size_t i = 0; r == 0 && i < md->n_snapshots; i++) {
                const struct ice_snapshot *s = &md->snapshots[i];
                struct ice_manifest_file *mf = NULL;
                bool known = false;
                size_t n = 0;

                for (size_t k = 0; k < n_before && !known; k++)
                        known = before[k] == s->snapshot_id;
                if (known)
                        continue;
                ice_strset_remove(cand, s->manifest_list);
                r = ice_table_manifests(tb->t, s, &mf, &n);
                for (size_t k = 0; r == 0 && k < n; k++) {
                        ice_strset_remove(cand, mf[k].path);
                        if (mf[k].added_snapshot_id == s->snapshot_id)
                                r = ice_table_manifest_entries(tb->t, &mf[k], false, keep_entry,
                                                               cand);
                }
                ice_manifest_files_free(mf, n);
        }
        return r;
}

static int orphans(struct tbl *tb, const struct upl_maint_request *req, int64_t now_ms,
                   struct upl_maint_result *res)
{
        struct ice_strset cand = {0};
        struct ice_strv files = {0};
        int64_t *ids = NULL;
        size_t n_ids = 0;
        int r;

        res->ran[UPL_MAINT_ORPHANS] = true;
        r = refresh(tb);
        if (r == 0)
                r = snapshot_ids(tb->t->md, &ids, &n_ids);
        if (r == 0)
                r = ice_table_orphans(tb->t, now_ms - (int64_t)(req->set.orphan_min_age_us / 1000),
                                      &files);
        for (size_t i = 0; r == 0 && i < files.n; i++) {
                r = ice_strset_add(&cand, files.v[i]);
                r = r < 0 ? r : 0;
        }
        if (r == 0 && files.n)
                r = recheck(tb, ids, n_ids, &cand);
        if (r < 0)
                upl_maint_fail(res, UPL_MAINT_ORPHANS, r, table_error(tb->t, r));
        else
                delete_files(tb, &files, &cand, res, UPL_MAINT_ORPHANS);
        ice_strv_clear(&files);
        ice_strset_clear(&cand);
        floe_free(ids);
        return r;
}

/* -- the worker ------------------------------------------------------------------------------ */

static void timed(struct upl_maint_result *res, enum upl_maint_task task, uint64_t t0)
{
        res->seconds[task] = (double)(upl_maint_mono_us() - t0) / 1e6;
}

void upl_maint_table(struct upl_maint *m, const struct upl_maint_request *req, unsigned index,
                     struct upl_maint_result *res)
{
        const struct upl_maint_settings *set = &req->set;
        bool gc;
        struct tbl tb = {0};
        char why[400] = "";
        uint64_t t0 = upl_maint_mono_us();
        int r;

        r = open_table(m, index, &tb, why, sizeof(why));
        if (r == -ENOENT)
                return; /* made at the first flush: nothing to maintain until then */
        if (r < 0) {
                enum upl_maint_task task = set->compact ? UPL_MAINT_COMPACT : UPL_MAINT_EXPIRE;

                res->ran[task] = true;
                upl_maint_fail(res, task, r, why);
                return;
        }
        note_compactions(&tb);
        if (set->compact && upl_maint_may(m, res)) {
                compact(&tb, req, res);
                timed(res, UPL_MAINT_COMPACT, t0);
        }
        if (set->tier && m->tier.n_tiers > 1 && upl_maint_may(m, res)) {
                t0 = upl_maint_mono_us();
                tier(&tb, req, res);
                timed(res, UPL_MAINT_TIER, t0);
        }
        gc = gc_enabled(tb.t);
        res->gc_disabled = !gc && (set->expire || (req->orphans && set->orphans));
        if (set->expire && gc && upl_maint_may(m, res)) {
                t0 = upl_maint_mono_us();
                expire(&tb, req, upl_maint_wall_ms(), res);
                timed(res, UPL_MAINT_EXPIRE, t0);
        }
        if (set->expire && gc && upl_maint_may(m, res)) {
                t0 = upl_maint_mono_us();
                old_metadata(&tb, res);
                timed(res, UPL_MAINT_METADATA, t0);
        }
        if (req->orphans && set->orphans && gc && upl_maint_may(m, res)) {
                t0 = upl_maint_mono_us();
                orphans(&tb, req, upl_maint_wall_ms(), res);
                timed(res, UPL_MAINT_ORPHANS, t0);
        }
        ice_table_free(tb.t);
}
