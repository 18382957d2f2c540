/* SPDX-License-Identifier: Apache-2.0 */
/* Verification of a table: every manifest list, manifest and file its metadata reaches. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-maint.h"
#include "store.h"

struct mstat {
        char *path;
        bool ok;
        int content;
        int64_t files, records, size; /* live entries */
};

struct dfile {
        char *path;
        int64_t size, records;
};

struct vctx {
        struct ice_table *t;
        struct lake_store *store;
        ice_verify_fn fn;
        void *ud;
        struct ice_verify_result res;
        struct mstat *m;
        size_t n_m, cap_m;
        struct ice_strset seen;
        struct dfile *d;
        size_t n_d, cap_d;
        /* one manifest being read */
        int64_t count[3], rows[3];
        struct mstat *cur;
        int err;
};

static void problem(struct vctx *x, const char *what, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void problem(struct vctx *x, const char *what, const char *fmt, ...)
{
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        x->res.problems++;
        x->fn(x->ud, what, buf);
}

static int add_file(struct vctx *x, const struct ice_data_file *f)
{
        int r = ice_strset_add(&x->seen, f->path);

        if (r <= 0)
                return r;
        if (x->n_d == x->cap_d) {
                size_t cap = x->cap_d ? 2 * x->cap_d : 256;
                struct dfile *d = floe_reallocarray(x->d, cap, sizeof(*d));

                if (!d)
                        return -ENOMEM;
                x->d = d;
                x->cap_d = cap;
        }
        x->d[x->n_d] = (struct dfile){floe_strdup(f->path), f->file_size, f->record_count};
        if (!x->d[x->n_d].path)
                return -ENOMEM;
        x->n_d++;
        return 0;
}

static int entry(void *ud, const struct ice_manifest_file *mf, const struct ice_manifest_entry *e)
{
        struct vctx *x = ud;
        int s = e->status;

        (void)mf;
        if (s < 0 || s > 2)
                return 0;
        x->count[s]++;
        x->rows[s] += e->file.record_count;
        if (s == ICE_STATUS_DELETED)
                return 0;
        x->cur->files++;
        x->cur->records += e->file.record_count;
        x->cur->size += e->file.file_size;
        return add_file(x, &e->file);
}

static void check_count(struct vctx *x, const char *path, const char *what, int64_t listed,
                        int64_t found)
{
        if (listed >= 0 && listed != found)
                problem(x, path,
                        "%s: the manifest list says %" PRId64 ", the manifest has %" PRId64, what,
                        listed, found);
}

/* A manifest's size, entries and counts, once per path. */
static struct mstat *manifest(struct vctx *x, const struct ice_manifest_file *mf)
{
        struct mstat *m;
        uint64_t size = 0;
        int r;

        for (size_t i = 0; i < x->n_m; i++)
                if (strcmp(x->m[i].path, mf->path) == 0)
                        return &x->m[i];
        if (x->n_m == x->cap_m) {
                size_t cap = x->cap_m ? 2 * x->cap_m : 64;

                m = floe_reallocarray(x->m, cap, sizeof(*m));
                if (!m) {
                        x->err = -ENOMEM;
                        return NULL;
                }
                x->m = m;
                x->cap_m = cap;
        }
        m = &x->m[x->n_m];
        *m = (struct mstat){.path = floe_strdup(mf->path), .content = mf->content};
        if (!m->path) {
                x->err = -ENOMEM;
                return NULL;
        }
        x->n_m++;
        x->res.manifests++;
        r = x->t->io.size ? x->t->io.size(x->t->io.ud, mf->path, &size) : 0;
        if (r < 0) {
                problem(x, mf->path, "%s", r == -ENOENT ? "missing" : strerror(-r));
                return m;
        }
        if (x->t->io.size && size != (uint64_t)mf->length)
                problem(x, mf->path, "%" PRIu64 " bytes, the manifest list says %" PRId64, size,
                        mf->length);
        memset(x->count, 0, sizeof(x->count));
        memset(x->rows, 0, sizeof(x->rows));
        x->cur = m;
        x->t->error[0] = '\0';
        r = ice_table_manifest_entries(x->t, mf, false, entry, x);
        if (r == -ENOMEM) {
                x->err = r;
                return NULL;
        }
        if (r < 0) {
                problem(x, mf->path, "%s", x->t->error[0] ? x->t->error : strerror(-r));
                return m;
        }
        check_count(x, mf->path, "added files", mf->added_files, x->count[ICE_STATUS_ADDED]);
        check_count(x, mf->path, "existing files", mf->existing_files,
                    x->count[ICE_STATUS_EXISTING]);
        check_count(x, mf->path, "deleted files", mf->deleted_files, x->count[ICE_STATUS_DELETED]);
        check_count(x, mf->path, "added rows", mf->added_rows, x->rows[ICE_STATUS_ADDED]);
        check_count(x, mf->path, "existing rows", mf->existing_rows, x->rows[ICE_STATUS_EXISTING]);
        m->ok = true;
        return m;
}

static void check_total(struct vctx *x, const struct ice_snapshot *s, const char *key,
                        int64_t found)
{
        const char *v = ice_kvs_get(&s->summary, key);
        char what[64];
        char *end;
        long long n;

        if (!v)
                return;
        errno = 0;
        n = strtoll(v, &end, 10);
        snprintf(what, sizeof(what), "snapshot %" PRId64, s->snapshot_id);
        if (errno || *end || n != found)
                problem(x, what, "%s is %s in the summary, %" PRId64 " in the manifests", key, v,
                        found);
}

static int snapshot(struct vctx *x, const struct ice_snapshot *s)
{
        struct ice_manifest_file *mf = NULL;
        int64_t files = 0, records = 0, size = 0, deletes = 0;
        bool complete = true;
        size_t n = 0;
        int r;

        x->t->error[0] = '\0';
        r = ice_table_manifests(x->t, s, &mf, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                problem(x, s->manifest_list, "%s", x->t->error[0] ? x->t->error : strerror(-r));
                return 0;
        }
        x->res.manifest_lists++;
        for (size_t i = 0; i < n; i++) {
                struct mstat *m = manifest(x, &mf[i]);

                if (!m) {
                        ice_manifest_files_free(mf, n);
                        return x->err;
                }
                complete = complete && m->ok;
                if (m->content == 0) {
                        files += m->files;
                        records += m->records;
                } else {
                        deletes += m->files;
                }
                size += m->size;
        }
        ice_manifest_files_free(mf, n);
        if (complete) {
                check_total(x, s, "total-data-files", files);
                check_total(x, s, "total-records", records);
                check_total(x, s, "total-delete-files", deletes);
                check_total(x, s, "total-files-size", size);
        }
        if (s->snapshot_id == x->t->md->current_snapshot_id)
                x->res.records = records;
        return 0;
}

static void data_file(struct vctx *x, const struct dfile *d)
{
        struct parquet_footer *f = NULL;
        struct ice_pq_src src = {.fd = -1, .store = x->store};
        char key[4096], err[256];
        uint64_t size = 0;
        int r;

        r = x->t->io.size ? x->t->io.size(x->t->io.ud, d->path, &size) : -EOPNOTSUPP;
        if (r < 0) {
                problem(x, d->path, "%s", r == -ENOENT ? "missing" : strerror(-r));
                return;
        }
        if (size != (uint64_t)d->size) {
                problem(x, d->path, "%" PRIu64 " bytes, the manifest says %" PRId64, size, d->size);
                return;
        }
        if (!x->store || lake_store_key(x->store, d->path, key, sizeof(key)) < 0)
                return;
        src.key = key;
        src.size = size;
        r = ice_pq_footer(&src, &f, err, sizeof(err));
        if (r < 0) {
                problem(x, d->path, "%s", err);
                return;
        }
        if (f->num_rows != d->records)
                problem(x, d->path, "%" PRId64 " rows, the manifest says %" PRId64, f->num_rows,
                        d->records);
        parquet_footer_free(f);
}

int ice_table_verify(struct ice_table *t, struct lake_store *store, ice_verify_fn fn, void *ud,
                     struct ice_verify_result *ret)
{
        struct vctx x = {.t = t, .store = store, .fn = fn, .ud = ud};
        const struct ice_metadata *md = t->md;
        int r = 0;

        if (md->current_snapshot_id != -1 && !ice_metadata_current_snapshot(md))
                problem(&x, t->metadata_location, "current snapshot %" PRId64 " is not listed",
                        md->current_snapshot_id);
        for (size_t i = 0; i < md->n_refs; i++)
                if (!ice_metadata_snapshot(md, md->refs[i].snapshot_id))
                        problem(&x, t->metadata_location,
                                "ref %s: snapshot %" PRId64 " is not listed", md->refs[i].name,
                                md->refs[i].snapshot_id);
        for (size_t i = 0; r == 0 && i < md->n_snapshots; i++) {
                x.res.snapshots++;
                r = snapshot(&x, &md->snapshots[i]);
        }
        for (size_t i = 0; r == 0 && i < x.n_d; i++)
                data_file(&x, &x.d[i]);
        x.res.data_files = x.n_d;
        for (size_t i = 0; i < x.n_m; i++)
                floe_free(x.m[i].path);
        floe_free(x.m);
        for (size_t i = 0; i < x.n_d; i++)
                floe_free(x.d[i].path);
        floe_free(x.d);
        ice_strset_clear(&x.seen);
        if (r < 0)
                return r;
        *ret = x.res;
        return 0;
}
