/* SPDX-License-Identifier: Apache-2.0 */
/* Snapshot expiry (spec "Snapshot Retention Policy") and the files it frees; orphan files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "floe-alloc.h"
#include "ice-table.h"

#define DAY_MS (INT64_C(86400) * 1000)

static int64_t prop(const struct ice_metadata *md, const char *key, int64_t def)
{
        int64_t v;

        return ice_kvs_get_i64(&md->properties, key, def, &v) < 0 || v <= 0 ? def : v;
}

static bool has_id(const int64_t *ids, size_t n, int64_t id)
{
        for (size_t i = 0; i < n; i++)
                if (ids[i] == id)
                        return true;
        return false;
}

/* Drops expired snapshots' entries from statistics and partition-statistics. */
static int prune_statistics(json_t *extra, const int64_t *expired, size_t n)
{
        static const char *const KEYS[] = {"statistics", "partition-statistics"};

        for (size_t k = 0; extra && k < ELEMENTSOF(KEYS); k++) {
                json_t *a = json_object_get(extra, KEYS[k]);

                for (size_t i = json_array_size(a); i > 0; i--) {
                        json_t *id = json_object_get(json_array_get(a, i - 1), "snapshot-id");

                        if (json_is_integer(id) && has_id(expired, n, json_integer_value(id)) &&
                            json_array_remove(a, i - 1) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

/* Which snapshots stay: refs, their branches' ancestry within the limits, and snapshots no
 * ref reaches that are newer than the cutoff (as Java keeps them). */
static int retained_set(const struct ice_metadata *md, const struct ice_expire_opts *o, bool *keep,
                        bool *drop_ref)
{
        int64_t cutoff = o->older_than_ms >= 0
                                 ? o->older_than_ms
                                 : o->now_ms - prop(md, ICE_PROP_MAX_SNAPSHOT_AGE, 5 * DAY_MS);
        int64_t min_keep =
                o->retain_last > 0 ? o->retain_last : prop(md, ICE_PROP_MIN_SNAPSHOTS, 1);
        int64_t max_ref_age = prop(md, ICE_PROP_MAX_REF_AGE, INT64_MAX);
        bool *reached = floe_calloc(md->n_snapshots + 1, sizeof(*reached));

        if (!reached)
                return -ENOMEM;
        for (size_t r = 0; r < md->n_refs; r++) {
                const struct ice_ref *ref = &md->refs[r];
                const struct ice_snapshot *s = ice_metadata_snapshot(md, ref->snapshot_id);
                int64_t age = ref->max_ref_age_ms > 0 ? ref->max_ref_age_ms : max_ref_age;
                int64_t keep_n = ref->min_snapshots_to_keep > 0 && o->retain_last <= 0
                                         ? ref->min_snapshots_to_keep
                                         : min_keep;
                int64_t ref_cutoff = ref->max_snapshot_age_ms > 0 && o->older_than_ms < 0
                                             ? o->now_ms - ref->max_snapshot_age_ms
                                             : cutoff;
                bool is_main = strcmp(ref->name, "main") == 0;

                drop_ref[r] = !s || (!is_main && o->now_ms - s->timestamp_ms > age);
                if (drop_ref[r])
                        continue;
                for (int64_t k = 0; s; k++) {
                        size_t idx = (size_t)(s - md->snapshots);

                        /* a tag keeps its snapshot; a branch its ancestors until they are both
                         * too old and beyond the ones to keep */
                        if (k > 0 && (ref->tag || (s->timestamp_ms < ref_cutoff && k >= keep_n)))
                                break;
                        keep[idx] = true;
                        s = s->has_parent ? ice_metadata_snapshot(md, s->parent_id) : NULL;
                }
                /* the whole ancestry counts as referenced */
                for (s = ice_metadata_snapshot(md, ref->snapshot_id);
                     s && !reached[s - md->snapshots];
                     s = ref->tag || !s->has_parent ? NULL
                                                    : ice_metadata_snapshot(md, s->parent_id))
                        reached[s - md->snapshots] = true;
        }
        for (size_t i = 0; i < md->n_snapshots; i++)
                if (!reached[i] && md->snapshots[i].timestamp_ms >= cutoff)
                        keep[i] = true;
        floe_free(reached);
        return 0;
}

int ice_metadata_expire(const struct ice_metadata *md, const struct ice_expire_opts *o,
                        struct ice_metadata **ret, int64_t **ret_expired, size_t *ret_n)
{
        _cleanup_free_ bool *keep = NULL, *drop_ref = NULL;
        _cleanup_free_ int64_t *expired = NULL;
        struct ice_metadata *n = NULL;
        size_t ne = 0, w;
        int r;

        keep = floe_calloc(md->n_snapshots + 1, sizeof(*keep));
        drop_ref = floe_calloc(md->n_refs + 1, sizeof(*drop_ref));
        expired = floe_calloc(md->n_snapshots + 1, sizeof(*expired));
        if (!keep || !drop_ref || !expired)
                return -ENOMEM;
        r = retained_set(md, o, keep, drop_ref);
        if (r < 0)
                return r;
        for (size_t i = 0; i < md->n_snapshots; i++)
                if (!keep[i])
                        expired[ne++] = md->snapshots[i].snapshot_id;
        r = ice_metadata_copy(md, &n);
        if (r < 0)
                return r;
        /* the copy has the same order: filter in place */
        w = 0;
        for (size_t i = 0; i < n->n_snapshots; i++) {
                if (keep[i]) {
                        n->snapshots[w++] = n->snapshots[i];
                        continue;
                }
                floe_free(n->snapshots[i].manifest_list);
                ice_kvs_clear(&n->snapshots[i].summary);
        }
        n->n_snapshots = w;
        w = 0;
        for (size_t i = 0; i < n->n_refs; i++) {
                if (!drop_ref[i]) {
                        n->refs[w++] = n->refs[i];
                        continue;
                }
                floe_free(n->refs[i].name);
        }
        n->n_refs = w;
        /* snapshot-log: history before an expired snapshot is gone (as Java keeps it) */
        w = 0;
        for (size_t i = 0; i < n->n_snapshot_log; i++) {
                if (!ice_metadata_snapshot(n, n->snapshot_log[i].snapshot_id)) {
                        w = 0;
                        continue;
                }
                n->snapshot_log[w++] = n->snapshot_log[i];
        }
        n->n_snapshot_log = w;
        r = prune_statistics(n->extra, expired, ne);
        if (r < 0) {
                ice_metadata_free(n);
                return r;
        }
        if (ne)
                n->last_updated_ms = o->now_ms;
        *ret = n;
        *ret_expired = TAKE_PTR(expired);
        *ret_n = ne;
        return 0;
}

struct collect {
        struct ice_strset *set;
        bool deleted_only; /* DELETED entries only */
        bool live_only;    /* ADDED/EXISTING entries only: remove from set */
        int64_t snapshot_id;
};

static int collect_entry(void *ud, const struct ice_manifest_file *mf,
                         const struct ice_manifest_entry *e)
{
        struct collect *c = ud;
        int r;

        (void)mf;
        if (c->live_only) {
                if (e->status != ICE_STATUS_DELETED)
                        ice_strset_remove(c->set, e->file.path);
                return 0;
        }
        if (c->deleted_only &&
            (e->status != ICE_STATUS_DELETED || e->snapshot_id != c->snapshot_id))
                return 0;
        r = ice_strset_add(c->set, e->file.path);
        return r < 0 ? r : 0;
}

/* Position in the current snapshot's ancestry (0 = current), or -1. */
static ssize_t chain_pos(const struct ice_metadata *md, int64_t id)
{
        const struct ice_snapshot *s = ice_metadata_current_snapshot(md);

        for (ssize_t k = 0; s; k++) {
                if (s->snapshot_id == id)
                        return k;
                s = s->has_parent ? ice_metadata_snapshot(md, s->parent_id) : NULL;
        }
        return -1;
}

static int list_paths(struct ice_table *t, const struct ice_snapshot *s, struct ice_strset *set)
{
        struct ice_manifest_file *mf;
        size_t n;
        int r;

        r = ice_table_manifests(t, s, &mf, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; r == 0 && i < n; i++) {
                r = ice_strset_add(set, mf[i].path);
                r = r < 0 ? r : 0;
        }
        ice_manifest_files_free(mf, n);
        return r;
}

static int strset_to_strv(const struct ice_strset *s, struct ice_strv *v)
{
        for (size_t i = 0; i < s->cap; i++)
                if (s->slots[i] && ice_strv_add(v, s->slots[i]) < 0)
                        return -ENOMEM;
        return 0;
}

/* The files the oldest retained snapshot deleted, when its parent is gone. */
static int deleted_by_oldest(struct ice_table *t, const struct ice_metadata *kept, ssize_t oldest,
                             struct ice_strset *files)
{
        const struct ice_snapshot *s = NULL;
        struct ice_manifest_file *mf = NULL;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < kept->n_snapshots && !s; i++)
                if (chain_pos(t->md, kept->snapshots[i].snapshot_id) == oldest)
                        s = &kept->snapshots[i];
        if (!s || !s->has_parent || ice_metadata_snapshot(kept, s->parent_id))
                return 0;
        r = ice_table_manifests(t, s, &mf, &n);
        for (size_t k = 0; r == 0 && k < n; k++) {
                struct collect c = {
                        .set = files, .deleted_only = true, .snapshot_id = s->snapshot_id};

                if (mf[k].added_snapshot_id == s->snapshot_id && mf[k].deleted_files != 0)
                        r = ice_table_manifest_entries(t, &mf[k], false, collect_entry, &c);
        }
        ice_manifest_files_free(mf, n);
        return r;
}

/* Files only expired snapshots reach. md: before expiry; keep: ids of what stays. */
static int unreachable(struct ice_table *t, const int64_t *expired, size_t ne,
                       const struct ice_metadata *kept, struct ice_strv *out)
{
        const struct ice_metadata *md = t->md;
        struct ice_strset live = {0}, gone = {0}, files = {0};
        ssize_t oldest = -1;
        bool linear = true;
        int r = 0;

        for (size_t i = 0; i < kept->n_snapshots; i++) {
                ssize_t p = chain_pos(md, kept->snapshots[i].snapshot_id);

                linear = linear && p >= 0;
                oldest = p > oldest ? p : oldest;
        }
        for (size_t i = 0; i < ne; i++) {
                ssize_t p = chain_pos(md, expired[i]);

                linear = linear && p > oldest;
        }
        /* manifests the retained snapshots still use */
        for (size_t i = 0; r == 0 && i < kept->n_snapshots; i++) {
                const struct ice_snapshot *s = &kept->snapshots[i];

                /* linear history: the oldest retained snapshot's list is enough, as manifests
                 * dropped from a list never come back */
                if (linear && chain_pos(md, s->snapshot_id) != oldest)
                        continue;
                r = list_paths(t, s, &live);
        }
        for (size_t i = 0; r == 0 && i < ne; i++) {
                const struct ice_snapshot *s = ice_metadata_snapshot(md, expired[i]);
                struct ice_manifest_file *mf = NULL;
                size_t n = 0;

                r = ice_strv_add(out, s->manifest_list);
                if (r == 0)
                        r = ice_table_manifests(t, s, &mf, &n);
                for (size_t k = 0; r == 0 && k < n; k++) {
                        struct collect c = {.set = &files,
                                            .deleted_only = linear,
                                            .snapshot_id = s->snapshot_id};

                        if (!ice_strset_has(&live, mf[k].path)) {
                                r = ice_strset_add(&gone, mf[k].path);
                                r = r < 0 ? r : 0;
                        }
                        /* linear: the files this snapshot deleted; else: all files of
                         * manifests nothing retained uses */
                        if (r == 0 && linear && mf[k].added_snapshot_id == s->snapshot_id &&
                            mf[k].deleted_files != 0)
                                r = ice_table_manifest_entries(t, &mf[k], false, collect_entry, &c);
                        else if (r == 0 && !linear && !ice_strset_has(&live, mf[k].path))
                                r = ice_table_manifest_entries(t, &mf[k], false, collect_entry, &c);
                }
                ice_manifest_files_free(mf, n);
        }
        /* linear: the oldest retained snapshot's deletions were live only in its ancestors,
         * all expired now (a compaction's replaced files go with the snapshots before it) */
        if (r == 0 && linear && oldest >= 0)
                r = deleted_by_oldest(t, kept, oldest, &files);
        /* general case: what a retained manifest lists as live stays */
        if (r == 0 && !linear && files.n) {
                for (size_t i = 0; r == 0 && i < live.cap; i++) {
                        struct ice_manifest_file mf = {.path = live.slots[i]};
                        struct collect c = {.set = &files, .live_only = true};

                        if (live.slots[i])
                                r = ice_table_manifest_entries(t, &mf, false, collect_entry, &c);
                }
        }
        if (r == 0)
                r = strset_to_strv(&gone, out);
        if (r == 0)
                r = strset_to_strv(&files, out);
        ice_strset_clear(&live);
        ice_strset_clear(&gone);
        ice_strset_clear(&files);
        return r;
}

int ice_table_expire(struct ice_table *t, const struct ice_expire_opts *o, bool delete,
                     struct ice_strv *ret_files)
{
        const char *gc = ice_kvs_get(&t->md->properties, ICE_PROP_GC_ENABLED);
        struct ice_strv files = {0};
        int r;

        t->error[0] = '\0';
        if (gc && strcmp(gc, "false") == 0)
                return ice_table_fail(t, -EPERM, "gc.enabled is false: snapshots are not expired");
        for (int attempt = 0;; attempt++) {
                struct ice_metadata *md;
                _cleanup_free_ int64_t *expired = NULL;
                size_t ne;

                r = ice_metadata_expire(t->md, o, &md, &expired, &ne);
                if (r < 0)
                        return r;
                if (ne == 0) {
                        ice_metadata_free(md);
                        break;
                }
                r = unreachable(t, expired, ne, md, &files);
                if (r == 0)
                        r = ice_table_commit(t, md);
                else
                        ice_metadata_free(md);
                if (r == 0)
                        break;
                ice_strv_clear(&files);
                if (r != -ESTALE || attempt >= 4)
                        return r;
                ice_table_retry_wait(t, attempt + 1);
                r = ice_table_refresh(t);
                if (r < 0)
                        return r;
        }
        ice_strv_sort_unique(&files);
        for (size_t i = 0; delete &&i < files.n; i++) {
                int d = t->io.del(t->io.ud, files.v[i]);

                if (d < 0)
                        ice_table_fail(t, 0, "%s: not deleted (%s)", files.v[i], strerror(-d));
        }
        *ret_files = files;
        return 0;
}

struct orphans {
        struct ice_strset *referenced;
        int64_t older_than;
        struct ice_strv *out;
};

static int orphan_entry(void *ud, const char *location, uint64_t size, int64_t mtime_ms)
{
        struct orphans *o = ud;

        (void)size;
        if (mtime_ms >= o->older_than || ice_strset_has(o->referenced, location))
                return 0;
        return ice_strv_add(o->out, location);
}

static int add_ref(struct ice_strset *s, const char *path)
{
        int r = path ? ice_strset_add(s, path) : 0;

        return r < 0 ? r : 0;
}

int ice_table_orphans(struct ice_table *t, int64_t older_than_ms, struct ice_strv *ret_files)
{
        const struct ice_metadata *md = t->md;
        struct ice_strset refs = {0}, manifests = {0};
        struct ice_strv out = {0};
        struct orphans o = {.referenced = &refs, .older_than = older_than_ms, .out = &out};
        _cleanup_free_ char *hint = NULL, *root = NULL;
        int r;

        t->error[0] = '\0';
        r = ice_table_metadata_path(t, "version-hint.text", &hint);
        if (r == 0)
                r = add_ref(&refs, hint);
        if (r == 0)
                r = add_ref(&refs, t->metadata_location);
        for (size_t i = 0; r == 0 && i < md->n_metadata_log; i++)
                r = add_ref(&refs, md->metadata_log[i].file);
        for (size_t k = 0; r == 0 && k < 2; k++) {
                json_t *a = json_object_get(md->extra, k ? "partition-statistics" : "statistics");

                for (size_t i = 0; r == 0 && i < json_array_size(a); i++)
                        r = add_ref(&refs, json_string_value(json_object_get(json_array_get(a, i),
                                                                             "statistics-path")));
        }
        for (size_t i = 0; r == 0 && i < md->n_snapshots; i++) {
                struct ice_manifest_file *mf = NULL;
                size_t n = 0;

                r = add_ref(&refs, md->snapshots[i].manifest_list);
                if (r == 0)
                        r = ice_table_manifests(t, &md->snapshots[i], &mf, &n);
                for (size_t k = 0; r == 0 && k < n; k++) {
                        struct collect c = {.set = &refs};

                        r = ice_strset_add(&manifests, mf[k].path);
                        if (r == 1)
                                r = ice_table_manifest_entries(t, &mf[k], false, collect_entry, &c);
                        if (r == 0)
                                r = add_ref(&refs, mf[k].path);
                }
                ice_manifest_files_free(mf, n);
        }
        if (r == 0) {
                size_t n = strlen(md->location) + 2;

                root = floe_malloc(n);
                if (!root)
                        r = -ENOMEM;
                else
                        snprintf(root, n, "%s/", md->location);
        }
        if (r == 0) {
                r = t->io.list(t->io.ud, root, orphan_entry, &o);
                if (r < 0)
                        ice_table_fail(t, r, "%s: cannot list", root);
        }
        ice_strset_clear(&refs);
        ice_strset_clear(&manifests);
        if (r < 0) {
                ice_strv_clear(&out);
                return r;
        }
        ice_strv_sort_unique(&out);
        *ret_files = out;
        return 0;
}
