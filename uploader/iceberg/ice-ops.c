/* SPDX-License-Identifier: Apache-2.0 */
/* Producing snapshots: fast append (one new manifest, the rest carried by reference, small
 * manifests merged) and replace (compaction, tier moves), with commit retries. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-table.h"

struct producer {
        struct ice_table *t;
        char uuid[37];
        int64_t id;
        enum avro_codec codec;
        int manifests;           /* k of <uuid>-m<k>.avro */
        struct ice_strv attempt; /* files of the current attempt, deleted if it fails */
};

static int producer_init(struct producer *p, struct ice_table *t)
{
        const char *c = ice_kvs_get(&t->md->properties, ICE_PROP_MANIFEST_CODEC);
        int r;

        *p = (struct producer){.t = t, .codec = AVRO_CODEC_DEFLATE};
        /* gzip (Java's default) is Avro deflate; zstd and snappy we do not write */
        if (c &&
            (strcmp(c, "none") == 0 || strcmp(c, "uncompressed") == 0 || strcmp(c, "null") == 0))
                p->codec = AVRO_CODEC_NULL;
        if (t->md->format_version != 2)
                return ice_table_fail(t, -EOPNOTSUPP, "only format-version 2 tables are written");
        r = ice_uuid4(p->uuid);
        if (r == 0)
                r = ice_new_snapshot_id(t->md, &p->id);
        return r;
}

static void producer_abort(struct producer *p)
{
        /* a commit that may have landed keeps its files: they are the table's if it did */
        for (size_t i = 0; !p->t->commit_unknown && i < p->attempt.n; i++)
                p->t->io.del(p->t->io.ud, p->attempt.v[i]);
        ice_strv_clear(&p->attempt);
}

static int64_t prop(const struct ice_metadata *md, const char *key, int64_t def)
{
        int64_t v;

        return ice_kvs_get_i64(&md->properties, key, def, &v) < 0 ? def : v;
}

/* Finishes w and stores it as metadata/<uuid>-m<k>.avro. */
static int put_manifest(struct producer *p, struct ice_manifest_writer *w, bool per_attempt,
                        struct ice_manifest_file *ret)
{
        _cleanup_free_ uint8_t *data = NULL;
        struct ice_manifest_file mf;
        char name[64];
        size_t len;
        int r;

        r = ice_manifest_writer_finish(w, &data, &len, &mf);
        if (r < 0)
                return r;
        snprintf(name, sizeof(name), "%s-m%d.avro", p->uuid, p->manifests++);
        r = ice_table_metadata_path(p->t, name, &mf.path);
        if (r == 0)
                r = p->t->io.put(p->t->io.ud, mf.path, data, len, true);
        if (r == 0 && per_attempt)
                r = ice_strv_add(&p->attempt, mf.path);
        if (r < 0) {
                ice_table_fail(p->t, r, "%s: %s", mf.path ? mf.path : name, strerror(-r));
                ice_manifest_file_clear(&mf);
                return r;
        }
        *ret = mf;
        return 0;
}

/* The manifest of new files, ADDED by this snapshot with inherited sequence numbers. */
static int write_added(struct producer *p, const struct ice_data_file *files, size_t n,
                       struct ice_manifest_file *ret)
{
        const struct ice_partition_spec *spec =
                ice_metadata_spec(p->t->md, p->t->md->default_spec_id);
        struct ice_manifest_writer *w = NULL;
        int r;

        r = ice_manifest_writer_new(p->t->md, spec, ICE_CONTENT_DATA, p->codec, &w);
        for (size_t i = 0; r == 0 && i < n; i++) {
                struct ice_manifest_entry e = {
                        .status = ICE_STATUS_ADDED,
                        .has_snapshot_id = true,
                        .snapshot_id = p->id,
                        .file = files[i],
                };

                if (files[i].content != ICE_CONTENT_DATA ||
                    files[i].n_partition != spec->n_fields) {
                        r = ice_table_fail(p->t, -EINVAL, "%s: not a data file of spec %d",
                                           files[i].path ? files[i].path : "?", spec->spec_id);
                        break;
                }
                r = ice_manifest_writer_add(w, &e);
                if (r < 0)
                        ice_table_fail(p->t, r, "%s: cannot be listed (bad partition values?)",
                                       files[i].path ? files[i].path : "?");
        }
        if (r == 0)
                r = put_manifest(p, w, false, ret);
        ice_manifest_writer_free(w);
        return r;
}

struct rewrite {
        struct producer *p;
        struct ice_manifest_writer *w;
        const struct ice_strset *removed; /* replace: paths to mark DELETED */
        size_t found;
        struct ice_summary_delta *delta;
        struct ice_data_file *gone; /* removed files as listed (for partition counting) */
        size_t n_gone;
};

/* Copies an entry into the manifest being rewritten: this snapshot's additions stay ADDED,
 * other live files become EXISTING with their sequence numbers, old deletions are dropped,
 * files being removed become DELETED. */
static int rewrite_entry(void *ud, const struct ice_manifest_file *mf,
                         const struct ice_manifest_entry *e)
{
        struct rewrite *rw = ud;
        struct ice_manifest_entry c = *e;
        struct ice_data_file *gone;
        int r;

        (void)mf;
        if (e->status == ICE_STATUS_DELETED)
                return 0;
        if (e->status == ICE_STATUS_ADDED && e->snapshot_id == rw->p->id) {
                c.has_sequence_number = c.has_file_sequence_number = false;
                return ice_manifest_writer_add(rw->w, &c);
        }
        c.status = ICE_STATUS_EXISTING;
        if (rw->removed && ice_strset_has(rw->removed, e->file.path)) {
                c.status = ICE_STATUS_DELETED;
                c.snapshot_id = rw->p->id;
                rw->found++;
                rw->delta->deleted_files++;
                rw->delta->deleted_records += e->file.record_count;
                rw->delta->removed_size += e->file.file_size;
                gone = floe_reallocarray(rw->gone, rw->n_gone + 1, sizeof(*gone));
                if (!gone)
                        return -ENOMEM;
                rw->gone = gone;
                r = ice_data_file_copy(&e->file, &gone[rw->n_gone]);
                if (r < 0)
                        return r;
                rw->n_gone++;
        }
        return ice_manifest_writer_add(rw->w, &c);
}

static int cmp_tuple(const struct ice_data_file *a, const struct ice_data_file *b)
{
        if (a->spec_id != b->spec_id)
                return a->spec_id < b->spec_id ? -1 : 1;
        for (size_t i = 0; i < a->n_partition && i < b->n_partition; i++) {
                int c = ice_datum_compare(&a->partition[i], &b->partition[i]);

                if (c)
                        return c;
        }
        return (a->n_partition > b->n_partition) - (a->n_partition < b->n_partition);
}

static int cmp_tuple_p(const void *a, const void *b)
{
        return cmp_tuple(*(const struct ice_data_file *const *)a,
                         *(const struct ice_data_file *const *)b);
}

/* Distinct partition tuples among two lists of files. */
static int count_partitions(const struct ice_data_file *a, size_t na, const struct ice_data_file *b,
                            size_t nb, int64_t *ret)
{
        const struct ice_data_file **v;
        int64_t n = 0;

        if (na + nb == 0) {
                *ret = 0;
                return 0;
        }
        v = floe_reallocarray(NULL, na + nb, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < na; i++)
                v[i] = &a[i];
        for (size_t i = 0; i < nb; i++)
                v[na + i] = &b[i];
        qsort(v, na + nb, sizeof(*v), cmp_tuple_p);
        for (size_t i = 0; i < na + nb; i++)
                n += i == 0 || cmp_tuple(v[i - 1], v[i]) != 0;
        floe_free(v);
        *ret = n;
        return 0;
}

/* Writes the manifest list and commits the snapshot. */
static int commit_snapshot(struct producer *p, const char *operation, int attempt,
                           const struct ice_manifest_file *list, size_t n,
                           const struct ice_summary_delta *delta, const struct ice_kv *extra,
                           size_t n_extra)
{
        struct ice_table *t = p->t;
        const struct ice_snapshot *cur = ice_metadata_current_snapshot(t->md);
        struct ice_snapshot s = {
                .snapshot_id = p->id,
                .has_parent = cur != NULL,
                .parent_id = cur ? cur->snapshot_id : 0,
                .sequence_number = t->md->last_sequence_number + 1,
                .timestamp_ms = t->clock_ms(),
                .has_schema_id = true,
                .schema_id = t->md->current_schema_id,
        };
        _cleanup_free_ uint8_t *data = NULL;
        struct ice_metadata *md;
        char name[96];
        size_t len;
        int r;

        if (cur && s.timestamp_ms < cur->timestamp_ms)
                s.timestamp_ms = cur->timestamp_ms; /* snapshot-log stays ordered */
        snprintf(name, sizeof(name), "snap-%" PRId64 "-%d-%s.avro", p->id, attempt, p->uuid);
        r = ice_table_metadata_path(t, name, &s.manifest_list);
        if (r == 0)
                r = ice_manifest_list_write(p->id, cur ? &cur->snapshot_id : NULL,
                                            s.sequence_number, list, n, p->codec, &data, &len);
        if (r == 0)
                r = t->io.put(t->io.ud, s.manifest_list, data, len, true);
        if (r == 0)
                r = ice_strv_add(&p->attempt, s.manifest_list);
        else
                ice_table_fail(t, r, "%s: %s", s.manifest_list ? s.manifest_list : name,
                               strerror(-r));
        if (r == 0)
                r = ice_summary_build(operation, delta, cur, extra, n_extra, &s.summary);
        if (r == 0) {
                r = ice_metadata_add_snapshot(t->md, &s, s.timestamp_ms, &md);
                if (r == 0)
                        r = ice_table_commit(t, md);
        }
        floe_free(s.manifest_list);
        ice_kvs_clear(&s.summary);
        return r;
}

struct plan {
        struct ice_manifest_file *list; /* the new manifest list */
        size_t n;
};

static void plan_clear(struct plan *pl)
{
        ice_manifest_files_free(pl->list, pl->n);
        *pl = (struct plan){0};
}

static int plan_add(struct plan *pl, const struct ice_manifest_file *mf)
{
        struct ice_manifest_file *l = floe_reallocarray(pl->list, pl->n + 1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        pl->list = l;
        if (ice_manifest_file_copy(mf, &l[pl->n]) < 0)
                return -ENOMEM;
        pl->n++;
        return 0;
}

/* One append attempt on the current metadata. */
static int append_attempt(struct producer *p, const struct ice_manifest_file *added, int attempt,
                          struct ice_summary_delta *delta, const struct ice_kv *extra,
                          size_t n_extra, bool *ret_merged)
{
        struct ice_table *t = p->t;
        const struct ice_snapshot *cur = ice_metadata_current_snapshot(t->md);
        struct ice_manifest_file *all = NULL, merged;
        _cleanup_free_ bool *merge = NULL;
        const char *merge_off;
        struct plan pl = {0};
        size_t n = 0, n_merge = 0;
        int r;

        if (cur) {
                r = ice_table_manifests(t, cur, &all, &n);
                if (r < 0)
                        return r;
        }
        /* the new manifest first, as Java orders them */
        {
                struct ice_manifest_file *l = floe_reallocarray(all, n + 1, sizeof(*l));

                if (!l) {
                        ice_manifest_files_free(all, n);
                        return -ENOMEM;
                }
                all = l;
                memmove(all + 1, all, n * sizeof(*all));
                n++;
                r = ice_manifest_file_copy(added, &all[0]);
                if (r < 0) {
                        all[0] = (struct ice_manifest_file){0};
                        goto out;
                }
        }
        merge = floe_calloc(n, sizeof(*merge));
        if (!merge) {
                r = -ENOMEM;
                goto out;
        }
        merge_off = ice_kvs_get(&t->md->properties, ICE_PROP_MERGE_ENABLED);
        if (!merge_off || strcmp(merge_off, "false") != 0)
                ice_merge_plan(all, n, t->md->default_spec_id,
                               (size_t)prop(t->md, ICE_PROP_MERGE_MIN_COUNT, 100),
                               prop(t->md, ICE_PROP_MANIFEST_TARGET_SIZE, 8 << 20), merge,
                               &n_merge);
        *delta = (struct ice_summary_delta){
                .added_files = added->added_files,
                .added_records = added->added_rows,
                .added_size = delta->added_size,
                .changed_partitions = delta->changed_partitions,
                .manifests_created = 1,
        };
        r = 0;
        if (n_merge) {
                struct rewrite rw = {.p = p, .delta = delta};
                const struct ice_partition_spec *spec =
                        ice_metadata_spec(t->md, t->md->default_spec_id);

                r = ice_manifest_writer_new(t->md, spec, ICE_CONTENT_DATA, p->codec, &rw.w);
                for (size_t i = 0; r == 0 && i < n; i++)
                        if (merge[i])
                                r = ice_table_manifest_entries(t, &all[i], false, rewrite_entry,
                                                               &rw);
                if (r == 0)
                        r = put_manifest(p, rw.w, true, &merged);
                ice_manifest_writer_free(rw.w);
                if (r == 0) {
                        r = plan_add(&pl, &merged);
                        ice_manifest_file_clear(&merged);
                }
                /* when the new manifest was merged, the merged one is the only one created */
                delta->manifests_replaced = (int64_t)n_merge - (merge[0] ? 1 : 0);
                delta->manifests_created = merge[0] ? 1 : 2;
        }
        for (size_t i = 0; r == 0 && i < n; i++)
                if (!merge[i])
                        r = plan_add(&pl, &all[i]);
        delta->manifests_kept = (int64_t)(n - n_merge) - (merge[0] ? 0 : 1);
        *ret_merged = merge[0];
        if (r == 0)
                r = commit_snapshot(p, "append", attempt, pl.list, pl.n, delta, extra, n_extra);
out:
        plan_clear(&pl);
        ice_manifest_files_free(all, n);
        return r;
}

static int64_t sum_sizes(const struct ice_data_file *f, size_t n)
{
        int64_t s = 0;

        for (size_t i = 0; i < n; i++)
                s += f[i].file_size;
        return s;
}

int ice_table_append(struct ice_table *t, const struct ice_data_file *files, size_t n,
                     const struct ice_kv *extra, size_t n_extra, int64_t *ret_snapshot_id)
{
        struct ice_manifest_file added = {0};
        struct ice_summary_delta delta = {0};
        struct producer p;
        int64_t retries = t->no_retries ? 0 : prop(t->md, ICE_PROP_COMMIT_RETRIES, 4), parts;
        bool merged = false;
        int r;

        t->error[0] = '\0';
        if (n == 0)
                return ice_table_fail(t, -EINVAL, "nothing to append");
        r = producer_init(&p, t);
        if (r == 0)
                r = count_partitions(files, n, NULL, 0, &parts);
        if (r == 0)
                r = write_added(&p, files, n, &added);
        for (int attempt = 1; r == 0; attempt++) {
                delta = (struct ice_summary_delta){.added_size = sum_sizes(files, n),
                                                   .changed_partitions = parts};
                r = append_attempt(&p, &added, attempt, &delta, extra, n_extra, &merged);
                if (r == 0)
                        break;
                producer_abort(&p);
                if ((r != -ESTALE && r != -EEXIST) || attempt > retries)
                        break;
                ice_table_retry_wait(t, attempt);
                r = ice_table_refresh(t);
                /* the new manifest names this id: a clash with a snapshot committed meanwhile
                 * (p = 2^-53) is no retry */
                if (r == 0 && ice_metadata_snapshot(t->md, p.id))
                        r = -EEXIST;
        }
        /* failed, or merged into another manifest: the new manifest is referenced nowhere */
        if (((r < 0 && !t->commit_unknown) || (r == 0 && merged)) && added.path)
                t->io.del(t->io.ud, added.path);
        ice_manifest_file_clear(&added);
        ice_strv_clear(&p.attempt);
        if (r < 0)
                return r;
        if (ret_snapshot_id)
                *ret_snapshot_id = p.id;
        return 0;
}

/* Whether mf may list any removed file, judged by the partition summaries. */
static bool may_hold(const struct ice_metadata *md, const struct ice_manifest_file *mf,
                     const struct ice_data_file *removed, size_t n)
{
        const struct ice_partition_spec *spec = ice_metadata_spec(md, mf->spec_id);
        struct ice_type types[32];

        if (mf->content != 0)
                return false;
        if (!spec || !mf->has_partitions || mf->n_partitions != spec->n_fields ||
            spec->n_fields > ELEMENTSOF(types) ||
            ice_spec_result_types(spec, ice_metadata_current_schema(md), types) < 0)
                return true;
        for (size_t i = 0; i < n; i++) {
                bool in = removed[i].spec_id == mf->spec_id &&
                          removed[i].n_partition == spec->n_fields;

                for (size_t k = 0; in && k < spec->n_fields; k++) {
                        const struct ice_field_summary *s = &mf->partitions[k];
                        const struct ice_datum *d = &removed[i].partition[k];
                        struct ice_datum lo, hi;

                        if (d->null) {
                                in = s->contains_null;
                                continue;
                        }
                        if (!s->lower || !s->upper ||
                            ice_value_deserialize(&types[k], s->lower, s->lower_len, &lo) < 0)
                                continue; /* no bounds: cannot exclude */
                        if (ice_value_deserialize(&types[k], s->upper, s->upper_len, &hi) < 0) {
                                ice_datum_clear(&lo);
                                continue;
                        }
                        in = ice_datum_compare(d, &lo) >= 0 && ice_datum_compare(d, &hi) <= 0;
                        ice_datum_clear(&lo);
                        ice_datum_clear(&hi);
                }
                if (in || removed[i].n_partition != spec->n_fields)
                        return true;
        }
        return false;
}

struct finder {
        const struct ice_strset *removed;
        bool hit;
};

static int find_removed(void *ud, const struct ice_manifest_file *mf,
                        const struct ice_manifest_entry *e)
{
        struct finder *f = ud;

        (void)mf;
        if (e->status != ICE_STATUS_DELETED && ice_strset_has(f->removed, e->file.path))
                f->hit = true;
        return 0;
}

static int replace_attempt(struct producer *p, const struct ice_strset *removed,
                           const struct ice_data_file *rm, size_t n_rm,
                           const struct ice_manifest_file *added, int attempt,
                           struct ice_summary_delta *delta, const struct ice_data_file *new_files,
                           size_t n_new, const struct ice_kv *extra, size_t n_extra)
{
        struct ice_table *t = p->t;
        const struct ice_snapshot *cur = ice_metadata_current_snapshot(t->md);
        struct rewrite rw = {.p = p, .removed = removed, .delta = delta};
        struct ice_manifest_file *all = NULL;
        struct plan pl = {0};
        size_t n = 0;
        int r = 0;

        if (!cur && n_rm)
                return ice_table_fail(t, -ENOENT, "the table has no files");
        if (cur)
                r = ice_table_manifests(t, cur, &all, &n);
        if (r == 0 && added)
                r = plan_add(&pl, added);
        for (size_t i = 0; r == 0 && i < n; i++) {
                struct finder f = {.removed = removed};
                struct ice_manifest_file mf;
                const struct ice_partition_spec *spec = ice_metadata_spec(t->md, all[i].spec_id);

                if (n_rm && may_hold(t->md, &all[i], rm, n_rm))
                        r = ice_table_manifest_entries(t, &all[i], true, find_removed, &f);
                if (r < 0 || !f.hit) {
                        if (r == 0)
                                r = plan_add(&pl, &all[i]);
                        delta->manifests_kept++;
                        continue;
                }
                r = spec ? ice_manifest_writer_new(t->md, spec, ICE_CONTENT_DATA, p->codec, &rw.w)
                         : -EBADMSG;
                if (r == 0)
                        r = ice_table_manifest_entries(t, &all[i], false, rewrite_entry, &rw);
                if (r == 0)
                        r = put_manifest(p, rw.w, true, &mf);
                rw.w = ice_manifest_writer_free(rw.w);
                if (r == 0) {
                        r = plan_add(&pl, &mf);
                        ice_manifest_file_clear(&mf);
                }
                delta->manifests_created++;
                delta->manifests_replaced++;
        }
        if (r == 0 && rw.found != n_rm)
                r = ice_table_fail(t, -ENOENT, "%zu of the %zu files to replace are not live",
                                   n_rm - rw.found, n_rm);
        if (r == 0)
                r = count_partitions(new_files, n_new, rw.gone, rw.n_gone,
                                     &delta->changed_partitions);
        if (r == 0)
                r = commit_snapshot(p, "replace", attempt, pl.list, pl.n, delta, extra, n_extra);
        for (size_t i = 0; i < rw.n_gone; i++)
                ice_data_file_clear(&rw.gone[i]);
        floe_free(rw.gone);
        plan_clear(&pl);
        ice_manifest_files_free(all, n);
        return r;
}

int ice_table_replace(struct ice_table *t, const struct ice_data_file *removed, size_t n_removed,
                      const struct ice_data_file *added, size_t n_added, const struct ice_kv *extra,
                      size_t n_extra, int64_t *ret_snapshot_id)
{
        struct ice_manifest_file am = {0};
        struct ice_strset set = {0};
        struct producer p;
        int64_t retries = t->no_retries ? 0 : prop(t->md, ICE_PROP_COMMIT_RETRIES, 4);
        int r;

        t->error[0] = '\0';
        if (n_removed + n_added == 0)
                return ice_table_fail(t, -EINVAL, "nothing to replace");
        r = producer_init(&p, t);
        for (size_t i = 0; r == 0 && i < n_removed; i++) {
                r = ice_strset_add(&set, removed[i].path);
                if (r == 0)
                        r = ice_table_fail(t, -EINVAL, "%s: listed twice", removed[i].path);
                else if (r > 0)
                        r = 0;
        }
        if (r == 0 && n_added)
                r = write_added(&p, added, n_added, &am);
        for (int attempt = 1; r == 0; attempt++) {
                struct ice_summary_delta delta = {
                        .added_files = n_added,
                        .added_size = sum_sizes(added, n_added),
                        .manifests_created = n_added ? 1 : 0,
                };

                for (size_t i = 0; i < n_added; i++)
                        delta.added_records += added[i].record_count;
                r = replace_attempt(&p, &set, removed, n_removed, n_added ? &am : NULL, attempt,
                                    &delta, added, n_added, extra, n_extra);
                if (r == 0)
                        break;
                producer_abort(&p);
                if ((r != -ESTALE && r != -EEXIST) || attempt > retries)
                        break;
                ice_table_retry_wait(t, attempt);
                r = ice_table_refresh(t);
                if (r == 0 && ice_metadata_snapshot(t->md, p.id))
                        r = -EEXIST;
        }
        if (r < 0 && !t->commit_unknown && am.path)
                t->io.del(t->io.ud, am.path);
        ice_manifest_file_clear(&am);
        ice_strv_clear(&p.attempt);
        ice_strset_clear(&set);
        if (r < 0)
                return r;
        if (ret_snapshot_id)
                *ret_snapshot_id = p.id;
        return 0;
}
