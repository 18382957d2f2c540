/* SPDX-License-Identifier: Apache-2.0 */
/* Loading and committing table metadata: v<N>.metadata.json created if absent, the catalog's
 * compare-and-swap, version-hint.text. */
#include <errno.h>
#include <openssl/rand.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floe-alloc.h"
#include "ice-table.h"

#define HINT "version-hint.text"

static int64_t wall_clock_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int ice_table_fail(struct ice_table *t, int r, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(t->error, sizeof(t->error), fmt, ap);
        va_end(ap);
        return r;
}

struct ice_table *ice_table_free(struct ice_table *t)
{
        if (!t)
                return NULL;
        ice_metadata_free(t->md);
        floe_free(t->metadata_location);
        floe_free(t);
        return NULL;
}

static int path_join(const char *location, const char *dir, const char *name, char **ret)
{
        size_t n = strlen(location) + strlen(dir) + strlen(name) + 3;
        char *p = floe_malloc(n);

        if (!p)
                return -ENOMEM;
        snprintf(p, n, "%s/%s%s%s", location, dir, *dir ? "/" : "", name);
        *ret = p;
        return 0;
}

int ice_table_metadata_path(const struct ice_table *t, const char *name, char **ret)
{
        return path_join(t->md->location, "metadata", name, ret);
}

/* N of ".../v<N>.metadata.json" or ".../<N>-<uuid>.metadata.json"; 0 for other names. */
static int64_t version_of(const char *location)
{
        const char *base = strrchr(location, '/');
        char *end;
        long long v;

        base = base ? base + 1 : location;
        if (*base == 'v')
                base++;
        if (*base < '0' || *base > '9')
                return 0;
        errno = 0;
        v = strtoll(base, &end, 10);
        if (errno || v < 0 || (strcmp(end, ".metadata.json") != 0 && *end != '-'))
                return 0;
        return v;
}

static int load_metadata(const struct ice_io *io, const char *location, char *err, size_t errsize,
                         struct ice_metadata **ret)
{
        _cleanup_free_ uint8_t *data = NULL;
        char why[200];
        size_t len;
        int r;

        r = io->get(io->ud, location, ICE_METADATA_MAX_BYTES, &data, &len);
        if (r < 0) {
                snprintf(err, errsize, "%s: cannot read (%s)", location, strerror(-r));
                return r;
        }
        r = ice_metadata_parse((const char *)data, len, ret, why, sizeof(why));
        if (r < 0)
                snprintf(err, errsize, "%s: %s", location, why);
        return r;
}

static int table_new(const struct ice_io *io, const struct ice_catalog_ops *catalog,
                     struct ice_table **ret)
{
        struct ice_table *t = floe_calloc(1, sizeof(*t));

        if (!t)
                return -ENOMEM;
        t->io = *io;
        t->catalog = catalog;
        t->clock_ms = wall_clock_ms;
        *ret = t;
        return 0;
}

/* Makes md (taken) at loc (taken) current; cannot fail. */
static void take_current(struct ice_table *t, struct ice_metadata *md, char *loc)
{
        ice_metadata_free(t->md);
        floe_free(t->metadata_location);
        t->md = md;
        t->metadata_location = loc;
        t->version = version_of(loc);
}

static int set_current(struct ice_table *t, struct ice_metadata *md, const char *location)
{
        char *loc = floe_strdup(location);

        if (!loc) {
                ice_metadata_free(md);
                return -ENOMEM;
        }
        ice_metadata_free(t->md);
        floe_free(t->metadata_location);
        t->md = md;
        t->metadata_location = loc;
        t->version = version_of(location);
        return 0;
}

static int write_hint(struct ice_table *t, int64_t version)
{
        _cleanup_free_ char *hint = NULL;
        char num[24];
        int r;

        r = ice_table_metadata_path(t, HINT, &hint);
        if (r < 0)
                return r;
        snprintf(num, sizeof(num), "%" PRId64, version); /* no newline: readers parse it raw */
        return t->io.put(t->io.ud, hint, num, strlen(num), false);
}

static void take_error(struct ice_table *t, char *err, size_t errsize)
{
        if (err && errsize)
                snprintf(err, errsize, "%s", t->error[0] ? t->error : "out of memory");
}

int ice_table_create(const struct ice_io *io, const struct ice_catalog_ops *catalog,
                     const struct ice_metadata *md, struct ice_table **ret, char *err,
                     size_t errsize)
{
        _cleanup_free_ char *text = NULL, *loc = NULL;
        struct ice_metadata *copy = NULL;
        struct ice_table *t;
        int r;

        r = table_new(io, catalog, &t);
        if (r < 0)
                return r;
        r = ice_metadata_copy(md, &copy);
        if (r == 0)
                r = ice_metadata_format(copy, &text);
        if (r == 0)
                r = path_join(md->location, "metadata", "v1.metadata.json", &loc);
        if (r == 0) {
                r = io->put(io->ud, loc, text, strlen(text), true);
                if (r < 0)
                        ice_table_fail(t, r, "%s: %s", loc,
                                       r == -EEXIST ? "the table exists" : strerror(-r));
        }
        if (r == 0 && catalog) {
                r = catalog->create(catalog->ud, loc);
                if (r < 0) {
                        ice_table_fail(t, r, "catalog: %s",
                                       r == -EEXIST ? "the table is registered" : strerror(-r));
                        io->del(io->ud, loc);
                }
        }
        if (r == 0) {
                r = set_current(t, copy, loc);
                copy = NULL;
        }
        if (r == 0 && write_hint(t, 1) < 0)
                ice_table_fail(t, 0, "version-hint.text not written");
        ice_metadata_free(copy);
        if (r < 0) {
                take_error(t, err, errsize);
                ice_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

struct max_version {
        int64_t max;
};

static int find_max(void *ud, const char *location, uint64_t size, int64_t mtime_ms)
{
        struct max_version *m = ud;
        const char *base = strrchr(location, '/');
        int64_t v;

        (void)size;
        (void)mtime_ms;
        base = base ? base + 1 : location;
        if (base[0] != 'v')
                return 0;
        v = version_of(location);
        if (v > m->max)
                m->max = v;
        return 0;
}

/* The newest version of a file-system table: version-hint.text, else the largest
 * v<N>.metadata.json listed, then any v<N+1>... created after the hint was written. */
static int hadoop_version(struct ice_table *t, const char *location, int64_t *ret)
{
        _cleanup_free_ char *hint = NULL, *dir = NULL;
        _cleanup_free_ uint8_t *data = NULL;
        struct max_version m = {0};
        size_t len;
        int64_t v = 0;
        int r;

        r = path_join(location, "metadata", HINT, &hint);
        if (r < 0)
                return r;
        r = t->io.get(t->io.ud, hint, 64, &data, &len);
        if (r == 0) {
                char buf[32];
                char *end;

                while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == ' '))
                        len--;
                if (len == 0 || len >= sizeof(buf))
                        return ice_table_fail(t, -EBADMSG, "%s: bad version hint", hint);
                memcpy(buf, data, len);
                buf[len] = '\0';
                v = strtoll(buf, &end, 10);
                if (*end || v < 0)
                        return ice_table_fail(t, -EBADMSG, "%s: bad version hint", hint);
        } else if (r == -ENOENT) {
                r = path_join(location, "metadata", "", &dir);
                if (r == 0)
                        r = t->io.list(t->io.ud, dir, find_max, &m);
                if (r < 0)
                        return ice_table_fail(t, r, "%s: cannot list", dir);
                if (m.max == 0)
                        return ice_table_fail(t, -ENOENT, "%s: no table metadata", location);
                v = m.max;
        } else {
                return ice_table_fail(t, r, "%s: %s", hint, strerror(-r));
        }
        /* a commit may have died between its metadata file and the hint */
        for (;;) {
                _cleanup_free_ char *next = NULL;
                _cleanup_free_ uint8_t *probe = NULL;
                char name[48];
                size_t plen;

                snprintf(name, sizeof(name), "v%" PRId64 ".metadata.json", v + 1);
                r = path_join(location, "metadata", name, &next);
                if (r < 0)
                        return r;
                if (t->io.size) {
                        uint64_t size;

                        r = t->io.size(t->io.ud, next, &size);
                } else {
                        r = t->io.get(t->io.ud, next, 1, &probe, &plen);
                }
                if (r == -ENOENT)
                        break;
                if (r < 0 && r != -EFBIG)
                        return ice_table_fail(t, r, "%s: %s", next, strerror(-r));
                v++;
        }
        *ret = v;
        return 0;
}

static int load(struct ice_table *t, const char *location)
{
        _cleanup_free_ char *meta = NULL;
        struct ice_metadata *md;
        char name[48];
        int64_t v = 0;
        int r;

        if (t->catalog) {
                r = t->catalog->load(t->catalog->ud, &meta);
                if (r < 0)
                        return ice_table_fail(t, r, "catalog: %s",
                                              r == -ENOENT ? "no such table" : strerror(-r));
        } else {
                r = hadoop_version(t, location, &v);
                if (r < 0)
                        return r;
                snprintf(name, sizeof(name), "v%" PRId64 ".metadata.json", v);
                r = path_join(location, "metadata", name, &meta);
                if (r < 0)
                        return r;
        }
        r = load_metadata(&t->io, meta, t->error, sizeof(t->error), &md);
        if (r < 0)
                return r;
        return set_current(t, md, meta);
}

int ice_table_open(const struct ice_io *io, const struct ice_catalog_ops *catalog,
                   const char *location, struct ice_table **ret, char *err, size_t errsize)
{
        struct ice_table *t;
        size_t len = strlen(location);
        _cleanup_free_ char *loc = NULL;
        int r;

        while (len > 1 && location[len - 1] == '/')
                len--;
        loc = floe_strndup(location, len);
        if (!loc)
                return -ENOMEM;
        r = table_new(io, catalog, &t);
        if (r < 0)
                return r;
        r = load(t, loc);
        if (r < 0) {
                take_error(t, err, errsize);
                ice_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int ice_table_open_metadata(const struct ice_io *io, const char *metadata_location,
                            struct ice_table **ret, char *err, size_t errsize)
{
        struct ice_metadata *md;
        struct ice_table *t;
        int r;

        r = table_new(io, NULL, &t);
        if (r < 0)
                return r;
        r = load_metadata(io, metadata_location, t->error, sizeof(t->error), &md);
        if (r == 0)
                r = set_current(t, md, metadata_location);
        if (r < 0) {
                take_error(t, err, errsize);
                ice_table_free(t);
                return r;
        }
        *ret = t;
        return 0;
}

int ice_table_refresh(struct ice_table *t)
{
        _cleanup_free_ char *loc = floe_strdup(t->md->location);

        if (!loc)
                return -ENOMEM;
        return load(t, loc);
}

/* write.metadata.delete-after-commit.enabled: files that fell off the metadata-log. */
static void delete_dropped(struct ice_table *t, const struct ice_metadata *old,
                           const struct ice_metadata *md)
{
        const char *on = ice_kvs_get(&md->properties, "write.metadata.delete-after-commit.enabled");

        if (!on || strcmp(on, "true") != 0)
                return;
        for (size_t i = 0; i < old->n_metadata_log; i++) {
                bool kept = false;

                for (size_t k = 0; k < md->n_metadata_log && !kept; k++)
                        kept = strcmp(old->metadata_log[i].file, md->metadata_log[k].file) == 0;
                if (!kept)
                        t->io.del(t->io.ud, old->metadata_log[i].file);
        }
}

/* Whether a commit whose swap failed landed after all: a broken connection at COMMIT leaves
 * the outcome open, so the catalog is read back (our location, or a later one whose metadata
 * holds our snapshot). 0 if it landed; else the error, with loc deleted only when certain. */
static int swap_failed(struct ice_table *t, const struct ice_metadata *md, const char *loc, int r)
{
        _cleanup_free_ char *now = NULL;
        struct ice_metadata *other = NULL;
        char why[200];
        bool landed;

        ice_table_fail(t, r, "catalog: %s",
                       r == -ESTALE ? "committed by someone else" : strerror(-r));
        /* conflicts, busy locks, missing tables, bad names and the caller's own statements
         * refusing (-EALREADY: the uploader's ledger found batches committed elsewhere) roll
         * the transaction back: they change nothing */
        if (r == -ESTALE || r == -EBUSY || r == -ENOENT || r == -EINVAL || r == -ENOMEM ||
            r == -EALREADY) {
                t->io.del(t->io.ud, loc);
                return r;
        }
        if (t->catalog->load(t->catalog->ud, &now) < 0) {
                t->commit_unknown = true;
                return ice_table_fail(t, r, "catalog: %s; the commit may have landed",
                                      strerror(-r));
        }
        landed = strcmp(now, loc) == 0;
        if (!landed && md->current_snapshot_id > 0 &&
            md->current_snapshot_id != t->md->current_snapshot_id) {
                if (load_metadata(&t->io, now, why, sizeof(why), &other) < 0) {
                        t->commit_unknown = true;
                        return ice_table_fail(t, r, "catalog: %s; the commit may have landed",
                                              strerror(-r));
                }
                landed = ice_metadata_snapshot(other, md->current_snapshot_id) != NULL;
                ice_metadata_free(other);
        }
        if (landed)
                return 0;
        t->io.del(t->io.ud, loc);
        return r;
}

int ice_table_commit(struct ice_table *t, struct ice_metadata *md)
{
        _cleanup_free_ char *text = NULL, *loc = NULL;
        int64_t v = t->version + 1;
        int r;

        t->commit_unknown = false;
        if (t->md->format_version != 2) {
                ice_metadata_free(md);
                return ice_table_fail(t, -EOPNOTSUPP, "only format-version 2 tables are written");
        }
        r = ice_metadata_log_previous(md, t->metadata_location, t->md->last_updated_ms);
        if (r == 0)
                r = ice_metadata_format(md, &text);
        for (int tries = 0; r == 0; tries++) {
                char name[48];

                snprintf(name, sizeof(name), "v%" PRId64 ".metadata.json", v);
                floe_free(loc);
                loc = NULL;
                r = ice_table_metadata_path(t, name, &loc);
                if (r < 0)
                        break;
                r = t->io.put(t->io.ud, loc, text, strlen(text), true);
                /* with a catalog an existing v<N> is an attempt that lost its swap */
                if (r == -EEXIST && t->catalog && tries < 100) {
                        v++;
                        r = 0;
                        continue;
                }
                if (r == -EEXIST)
                        r = ice_table_fail(t, -ESTALE, "%s: committed by someone else", loc);
                else if (r < 0)
                        ice_table_fail(t, r, "%s: %s", loc, strerror(-r));
                break;
        }
        if (r == 0 && t->catalog) {
                r = t->catalog->swap(t->catalog->ud, t->metadata_location, loc);
                if (r < 0)
                        r = swap_failed(t, md, loc, r);
        }
        if (r < 0) {
                ice_metadata_free(md);
                return r;
        }
        /* committed: nothing below may fail (a caller would clean up a landed commit) */
        delete_dropped(t, t->md, md);
        take_current(t, md, TAKE_PTR(loc));
        t->version = v;
        t->error[0] = '\0';
        if (write_hint(t, v) < 0)
                ice_table_fail(t, 0, "version-hint.text not updated");
        return 0;
}

int ice_table_retry_limit(const struct ice_table *t)
{
        int64_t n = 4;

        if (ice_kvs_get_i64(&t->md->properties, ICE_PROP_COMMIT_RETRIES, 4, &n) < 0 || n < 0)
                n = 4;
        return n > 1000 ? 1000 : (int)n;
}

int64_t ice_table_retry_delay_ms(const struct ice_table *t, int attempt)
{
        int64_t min = 100, max = 60000, wait;
        uint32_t jitter = 0;

        if (ice_kvs_get_i64(&t->md->properties, "commit.retry.min-wait-ms", 100, &min) < 0 ||
            min < 0)
                min = 100;
        if (ice_kvs_get_i64(&t->md->properties, "commit.retry.max-wait-ms", 60000, &max) < 0 ||
            max < min)
                max = min;
        wait = min;
        for (int i = 1; i < attempt && wait < max; i++)
                wait *= 2;
        if (wait > max)
                wait = max;
        /* between half and all of it, so that writers that collided do not collide again */
        if (RAND_bytes((uint8_t *)&jitter, sizeof(jitter)) != 1)
                jitter = (uint32_t)attempt * 2654435761u;
        return wait / 2 + (int64_t)(jitter % (uint32_t)(wait / 2 + 1));
}

void ice_table_retry_wait(const struct ice_table *t, int attempt)
{
        int64_t wait;
        struct timespec ts;

        if (t->on_retry)
                t->on_retry(t->on_retry_ud, attempt, t->error);
        wait = ice_table_retry_delay_ms(t, attempt);
        ts.tv_sec = wait / 1000;
        ts.tv_nsec = (wait % 1000) * 1000000;
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

int ice_table_add_column(struct ice_table *t, const char *name, const struct ice_type *type,
                         const char *doc)
{
        for (int attempt = 0;; attempt++) {
                struct ice_metadata *md;
                int r;

                r = ice_metadata_add_column(t->md, name, type, doc, t->clock_ms(), &md);
                if (r < 0)
                        return ice_table_fail(t, r, "add column %s: %s", name, strerror(-r));
                r = ice_table_commit(t, md);
                if (r != -ESTALE || attempt >= 4)
                        return r;
                ice_table_retry_wait(t, attempt + 1);
                r = ice_table_refresh(t);
                if (r < 0)
                        return r;
        }
}

int ice_table_manifests(struct ice_table *t, const struct ice_snapshot *s,
                        struct ice_manifest_file **ret, size_t *ret_n)
{
        _cleanup_free_ uint8_t *data = NULL;
        size_t len;
        int r;

        r = t->io.get(t->io.ud, s->manifest_list, ICE_MANIFEST_MAX_BYTES, &data, &len);
        if (r < 0)
                return ice_table_fail(t, r, "%s: %s", s->manifest_list, strerror(-r));
        r = ice_manifest_list_read(data, len, ret, ret_n, t->error, sizeof(t->error));
        return r;
}

int ice_table_manifest_entries(struct ice_table *t, const struct ice_manifest_file *mf,
                               bool live_only, ice_entry_fn fn, void *ud)
{
        _cleanup_free_ uint8_t *data = NULL;
        struct ice_manifest_reader *rd;
        struct ice_manifest_entry e;
        size_t len;
        int r;

        r = t->io.get(t->io.ud, mf->path, ICE_MANIFEST_MAX_BYTES, &data, &len);
        if (r < 0)
                return ice_table_fail(t, r, "%s: %s", mf->path, strerror(-r));
        r = ice_manifest_reader_open(data, len, mf, t->md, &rd);
        if (r < 0)
                return ice_table_fail(t, r, "%s: not a manifest", mf->path);
        while ((r = ice_manifest_reader_next(rd, &e)) > 0) {
                if (!live_only || e.status != ICE_STATUS_DELETED)
                        r = fn(ud, mf, &e);
                ice_manifest_entry_clear(&e);
                if (r < 0)
                        break;
        }
        if (r < 0 && !t->error[0])
                ice_table_fail(t, r, "%s: %s", mf->path, ice_manifest_reader_error(rd));
        ice_manifest_reader_free(rd);
        return r;
}

int ice_table_scan(struct ice_table *t, int64_t snapshot_id, bool live_only, ice_entry_fn fn,
                   void *ud)
{
        const struct ice_snapshot *s = snapshot_id == -1
                                               ? ice_metadata_current_snapshot(t->md)
                                               : ice_metadata_snapshot(t->md, snapshot_id);
        struct ice_manifest_file *mf = NULL;
        size_t n = 0;
        int r;

        t->error[0] = '\0';
        if (!s)
                return snapshot_id == -1 ? 0 : ice_table_fail(t, -ENOENT, "no such snapshot");
        r = ice_table_manifests(t, s, &mf, &n);
        for (size_t i = 0; r == 0 && i < n; i++)
                r = ice_table_manifest_entries(t, &mf[i], live_only, fn, ud);
        ice_manifest_files_free(mf, n);
        return r;
}
