/* SPDX-License-Identifier: Apache-2.0 */
/* Tier moves: live data files of old partitions copied to a colder root, then one replace
 * snapshot swaps their paths (docs/lake.md "Tiers"). Also the ice_io over several roots. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floe-alloc.h"
#include "ice-tier-internal.h"
#include "store.h"

#define COPY_CHUNK (1u << 20)
#define KEY_MAX    4096
#define MAX_PASSES 3 /* scans when a file to move was replaced meanwhile (compaction) */

/* ---- the ice_io over several roots ---- */

int ice_tier_io_find(const struct ice_tier_io *ti, const char *location, char *key, size_t size)
{
        size_t best_len = SIZE_MAX;
        int best = -EXDEV;

        for (size_t i = 0; i < ti->n; i++) {
                char k[KEY_MAX];

                if (!ti->stores[i] || lake_store_key(ti->stores[i], location, k, sizeof(k)) < 0)
                        continue;
                /* nested roots: the most specific one (the shortest key) holds it */
                if (strlen(k) < best_len) {
                        best_len = strlen(k);
                        best = (int)i;
                        if (best_len >= size)
                                return -ENAMETOOLONG;
                        memcpy(key, k, best_len + 1);
                }
        }
        return best;
}

static int tio_get(void *ud, const char *location, size_t max, uint8_t **ret, size_t *ret_len)
{
        struct ice_tier_io *ti = ud;
        char key[KEY_MAX];
        int i = ice_tier_io_find(ti, location, key, sizeof(key));

        return i < 0 ? i : lake_store_get(ti->stores[i], key, max, ret, ret_len);
}

static int tio_put(void *ud, const char *location, const void *data, size_t len, bool if_absent)
{
        struct ice_tier_io *ti = ud;
        char key[KEY_MAX];
        int i = ice_tier_io_find(ti, location, key, sizeof(key));

        return i < 0 ? i
                     : lake_store_put(ti->stores[i], key, data, len,
                                      if_absent ? LAKE_PUT_IF_ABSENT : LAKE_PUT_REPLACE);
}

static int tio_del(void *ud, const char *location)
{
        struct ice_tier_io *ti = ud;
        char key[KEY_MAX];
        int i = ice_tier_io_find(ti, location, key, sizeof(key));

        return i < 0 ? i : lake_store_delete(ti->stores[i], key);
}

static int tio_size(void *ud, const char *location, uint64_t *ret_size)
{
        struct ice_tier_io *ti = ud;
        char key[KEY_MAX];
        int i = ice_tier_io_find(ti, location, key, sizeof(key));

        return i < 0 ? i : lake_store_size(ti->stores[i], key, ret_size);
}

/* The prefix's key under its root, listed under every root (a store lists each store once). */
static int tio_list(void *ud, const char *prefix, ice_io_list_fn fn, void *fn_ud)
{
        struct ice_tier_io *ti = ud;
        char loc[KEY_MAX], key[KEY_MAX];
        int r;

        r = ice_io_dir_location(prefix, loc, sizeof(loc));
        if (r >= 0)
                r = ice_tier_io_find(ti, loc, key, sizeof(key));
        if (r < 0)
                return r;
        for (size_t i = 0; i < ti->n; i++) {
                bool seen = !ti->stores[i];

                for (size_t j = 0; j < i && !seen; j++)
                        seen = ti->stores[j] == ti->stores[i];
                if (seen)
                        continue;
                r = ice_io_store_list_dir(ti->stores[i], key, fn, fn_ud);
                if (r < 0)
                        return r;
        }
        return 0;
}

void ice_tier_io(struct ice_tier_io *ti, const struct ice_tier_opts *o, struct ice_io *ret)
{
        *ti = (struct ice_tier_io){.n = o->n_tiers < ICE_TIER_MAX ? o->n_tiers : ICE_TIER_MAX};
        for (size_t i = 0; i < ti->n; i++)
                ti->stores[i] = o->tiers[i].store;
        *ret = (struct ice_io){
                .ud = ti,
                .get = tio_get,
                .put = tio_put,
                .del = tio_del,
                .list = tio_list,
                .size = tio_size,
        };
}

/* ---- partition time ---- */

/* Days from 1970-01-01 to y-m-01 (proleptic Gregorian; H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int64_t m)
{
        int64_t era, yoe, doy, doe;

        y -= m <= 2;
        era = (y >= 0 ? y : y - 399) / 400;
        yoe = y - era * 400;
        doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
        doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

int ice_tier_partition_end(const struct ice_partition_spec *spec, const struct ice_schema *schema,
                           const struct ice_datum *values, size_t n, int64_t *ret_ms)
{
        const int64_t day = INT64_C(86400000);

        for (size_t k = 0; spec && k < spec->n_fields && k < n; k++) {
                const struct ice_partition_field *pf = &spec->fields[k];
                const struct ice_field *src = ice_schema_field(schema, pf->source_id);
                const struct ice_datum *v = &values[k];
                int64_t x, months;

                if (!src || src->nested || v->null)
                        continue;
                x = v->v.i;
                switch (pf->transform.kind) {
                case ICE_TRANSFORM_HOUR:
                        *ret_ms = (x + 1) * INT64_C(3600000);
                        return 0;
                case ICE_TRANSFORM_DAY:
                        *ret_ms = (x + 1) * day;
                        return 0;
                case ICE_TRANSFORM_MONTH:
                        months = x + 1;
                        *ret_ms = days_from_civil(
                                          1970 + (months >= 0 ? months / 12 : (months - 11) / 12),
                                          ((months % 12) + 12) % 12 + 1) *
                                  day;
                        return 0;
                case ICE_TRANSFORM_YEAR:
                        *ret_ms = days_from_civil(1970 + x + 1, 1) * day;
                        return 0;
                case ICE_TRANSFORM_IDENTITY:
                        if (src->type.id == ICE_TYPE_DATE) {
                                *ret_ms = (x + 1) * day;
                                return 0;
                        }
                        break;
                default:
                        break;
                }
        }
        return -ENOENT;
}

/* ---- the move ---- */

static void (*test_hook)(void *ud);
static void *test_hook_ud;

void ice_tier_set_test_hook(void (*before_commit)(void *ud), void *ud)
{
        test_hook = before_commit;
        test_hook_ud = ud;
}

struct cand {
        struct ice_data_file file; /* as listed, spec_id set */
        int from, to;
        int64_t end_ms;
        char *part; /* its partition path */
};

struct plan {
        const struct ice_tier_opts *o;
        struct ice_tier_io *ti;
        struct ice_table *t;
        int64_t now_ms;
        struct cand *c;
        size_t n, cap;
        struct ice_strset live;
        size_t skipped;
};

static void plan_clear(struct plan *p)
{
        for (size_t i = 0; i < p->n; i++) {
                ice_data_file_clear(&p->c[i].file);
                floe_free(p->c[i].part);
        }
        floe_free(p->c);
        p->c = NULL;
        p->n = p->cap = 0;
        p->skipped = 0;
        ice_strset_clear(&p->live);
}

/* The coldest tier a partition that ended at end_ms belongs to. */
static int due_tier(const struct ice_tier_opts *o, int64_t now_ms, int64_t end_ms)
{
        int to = 0;

        for (size_t i = 1; i < o->n_tiers; i++)
                if (now_ms - end_ms >= o->tiers[i].age_ms)
                        to = (int)i;
        return to;
}

static int collect(void *ud, const struct ice_manifest_file *mf, const struct ice_manifest_entry *e)
{
        struct plan *p = ud;
        const struct ice_metadata *md = p->t->md;
        const struct ice_data_file *f = &e->file;
        char key[KEY_MAX], part[2048];
        int64_t end;
        int from, to, r;

        r = ice_strset_add(&p->live, f->path);
        if (r < 0)
                return r;
        if (f->content != ICE_CONTENT_DATA)
                return 0;
        if (mf->spec_id != md->default_spec_id ||
            ice_tier_partition_end(ice_metadata_spec(md, mf->spec_id),
                                   ice_metadata_current_schema(md), f->partition, f->n_partition,
                                   &end) < 0 ||
            ice_partition_path(ice_metadata_spec(md, mf->spec_id), f->partition, f->n_partition,
                               part, sizeof(part)) < 0) {
                p->skipped++;
                return 0;
        }
        from = ice_tier_io_find(p->ti, f->path, key, sizeof(key));
        if (from < 0) {
                p->skipped++;
                return 0;
        }
        to = due_tier(p->o, p->now_ms, end);
        if (to <= from)
                return 0; /* where it belongs, or colder: never moved back */
        if (p->n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct cand *c = floe_reallocarray(p->c, cap, sizeof(*c));

                if (!c)
                        return -ENOMEM;
                p->c = c;
                p->cap = cap;
        }
        p->c[p->n] = (struct cand){.from = from, .to = to, .end_ms = end};
        p->c[p->n].part = floe_strdup(part);
        if (!p->c[p->n].part)
                return -ENOMEM;
        r = ice_data_file_copy(f, &p->c[p->n].file);
        if (r < 0) {
                floe_free(p->c[p->n].part);
                return r;
        }
        p->c[p->n].file.spec_id = mf->spec_id;
        p->n++;
        return 0;
}

static int cmp_cand(const void *a, const void *b)
{
        const struct cand *x = a, *y = b;

        if (x->end_ms != y->end_ms)
                return x->end_ms < y->end_ms ? -1 : 1;
        return strcmp(x->file.path, y->file.path);
}

/* Copies a file's bytes to key in the target store: 1 when a complete copy was there. */
static int copy_file(struct lake_store *from, const char *src_key, struct lake_store *to,
                     const char *key, uint64_t size, char *err, size_t errsize)
{
        _cleanup_free_ uint8_t *buf = NULL;
        struct lake_store_writer *w = NULL;
        uint64_t have = 0, off = 0, wrote = 0;
        int r;

        r = lake_store_size(from, src_key, &have);
        if (r == 0 && have != size) {
                snprintf(err, errsize, "%s: %" PRIu64 " bytes, the manifest says %" PRIu64, src_key,
                         have, size);
                return -EIO;
        }
        if (r < 0) {
                snprintf(err, errsize, "%s", lake_store_error(from));
                return r;
        }
        r = lake_store_size(to, key, &have);
        if (r == 0 && have == size)
                return 1; /* an earlier run copied it (writes are atomic: it is whole) */
        if (r == 0) {
                snprintf(err, errsize, "%s: exists in the target root with another size", key);
                return -EEXIST;
        }
        if (r != -ENOENT) {
                snprintf(err, errsize, "%s", lake_store_error(to));
                return r;
        }
        buf = floe_malloc(COPY_CHUNK);
        if (!buf)
                return -ENOMEM;
        r = lake_store_writer_open(to, key, &w);
        while (r == 0 && off < size) {
                size_t want = size - off < COPY_CHUNK ? (size_t)(size - off) : COPY_CHUNK, got = 0;

                r = lake_store_get_range(from, src_key, off, want, buf, &got);
                if (r < 0) {
                        snprintf(err, errsize, "%s", lake_store_error(from));
                        break;
                }
                if (got == 0) {
                        snprintf(err, errsize, "%s: shorter than its %" PRIu64 " bytes", src_key,
                                 size);
                        r = -EIO;
                        break;
                }
                r = lake_store_writer_write(w, buf, got);
                off += got;
        }
        if (r == 0)
                r = lake_store_writer_commit(w, &wrote);
        if (r == 0 && wrote != size)
                r = -EIO;
        if (r < 0 && !err[0])
                snprintf(err, errsize, "%s", lake_store_error(to));
        lake_store_writer_free(w);
        return r;
}

struct retry_ctx {
        const struct ice_tier_opts *o;
        int retries;
};

static void on_retry(void *ud, int attempt, const char *why)
{
        struct retry_ctx *rc = ud;

        rc->retries++;
        if (rc->o->on_retry)
                rc->o->on_retry(rc->o->retry_ud, attempt, why);
}

/* Copies the candidates and commits one replace; -ENOENT when one is not live any more. */
static int move_files(struct plan *p, struct ice_tier_result *res, struct retry_ctx *rc, char *err,
                      size_t errsize)
{
        const struct ice_tier_opts *o = p->o;
        size_t n = o->max_files && p->n > o->max_files ? o->max_files : p->n, k = 0;
        struct ice_data_file *rm = floe_calloc(n + 1, sizeof(*rm));
        struct ice_data_file *add = floe_calloc(n + 1, sizeof(*add));
        struct ice_strset parts = {0};
        int r = rm && add ? 0 : -ENOMEM;

        for (size_t i = 0; r == 0 && i < n; i++) {
                struct cand *c = &p->c[i];
                struct lake_store *src = o->tiers[c->from].store, *dst = o->tiers[c->to].store;
                char src_key[KEY_MAX], loc[KEY_MAX + 256];
                int cp;

                if (lake_store_key(src, c->file.path, src_key, sizeof(src_key)) < 0 ||
                    lake_store_location(dst, src_key, loc, sizeof(loc)) < 0 ||
                    ice_strset_has(&p->live, loc)) {
                        res->skipped++;
                        continue;
                }
                cp = copy_file(src, src_key, dst, src_key, (uint64_t)c->file.file_size, err,
                               errsize);
                if (cp == -EEXIST) {
                        res->skipped++;
                        err[0] = '\0';
                        continue;
                }
                if (cp < 0) {
                        r = cp;
                        break;
                }
                res->copied += cp == 0;
                r = ice_data_file_copy(&c->file, &add[k]);
                if (r == 0) {
                        floe_free(add[k].path);
                        add[k].path = floe_strdup(loc);
                        rm[k] = c->file;
                        c->file = (struct ice_data_file){0};
                        k++;
                        r = add[k - 1].path ? 0 : -ENOMEM;
                }
                if (r == 0)
                        r = ice_strset_add(&parts, c->part) < 0 ? -ENOMEM : 0;
        }
        if (r == 0 && k > 0) {
                if (test_hook)
                        test_hook(test_hook_ud);
                p->t->on_retry = on_retry;
                p->t->on_retry_ud = rc;
                r = ice_table_replace(p->t, rm, k, add, k, o->summary, o->n_summary,
                                      &res->snapshot_id);
                p->t->on_retry = NULL;
                if (r < 0 && r != -ENOENT)
                        snprintf(err, errsize, "%s", p->t->error[0] ? p->t->error : strerror(-r));
        }
        if (r == 0) {
                res->files = k;
                res->partitions = parts.n;
                for (size_t i = 0; i < k; i++)
                        res->bytes += (uint64_t)add[i].file_size;
        } else {
                res->copied = 0;
        }
        for (size_t i = 0; i < k; i++) {
                ice_data_file_clear(&rm[i]);
                ice_data_file_clear(&add[i]);
        }
        floe_free(rm);
        floe_free(add);
        ice_strset_clear(&parts);
        return r;
}

int ice_tier_open_table(const struct ice_tier_opts *o, struct ice_tier_io *ti,
                        struct ice_catalog_sql *sql, struct lake_catalog *catalog, const char *ns,
                        const char *table, struct ice_table **ret, char *err, size_t errsize)
{
        char key[1024], loc[4096], why[256] = "";
        struct ice_io io;
        int r;

        if (o->n_tiers < 1 || o->n_tiers > ICE_TIER_MAX || !o->tiers[0].store) {
                snprintf(err, errsize, "no warehouse store");
                return -EINVAL;
        }
        if (snprintf(key, sizeof(key), "%s/%s", ns, table) >= (int)sizeof(key)) {
                snprintf(err, errsize, "%s.%s: name too long", ns, table);
                return -ENAMETOOLONG;
        }
        for (char *q = key; *q; q++)
                if (*q == '.')
                        *q = '/'; /* nested namespaces are directories */
        r = lake_store_location(o->tiers[0].store, key, loc, sizeof(loc));
        if (r < 0) {
                snprintf(err, errsize, "%s.%s: bad table name", ns, table);
                return r;
        }
        ice_tier_io(ti, o, &io);
        if (catalog)
                ice_catalog_sql(sql, catalog, ns, table);
        r = ice_table_open(&io, catalog ? &sql->ops : NULL, loc, ret, why, sizeof(why));
        if (r < 0)
                snprintf(err, errsize, "%s.%s: %s", ns, table, why);
        return r;
}

int ice_tier_check_opts(const struct ice_tier_opts *o, bool roots, char *err, size_t errsize)
{
        if (o->n_tiers < 2 || o->n_tiers > ICE_TIER_MAX) {
                snprintf(err, errsize, "no tier beside the warehouse");
                return -EINVAL;
        }
        for (size_t i = 1; i < o->n_tiers; i++) {
                if (o->tiers[i].age_ms <= (i > 1 ? o->tiers[i - 1].age_ms : 0)) {
                        snprintf(err, errsize, "tier %zu: ages must be positive and ascending", i);
                        return -EINVAL;
                }
                if (roots && (!o->tiers[i].store || o->tiers[i].store == o->tiers[0].store)) {
                        snprintf(err, errsize, "tier %zu: no root of its own", i);
                        return -EINVAL;
                }
        }
        return 0;
}

int64_t ice_tier_now_ms(const struct ice_tier_opts *o)
{
        struct timespec ts;

        if (o->now_ms)
                return o->now_ms;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Delete files would not follow a data file to its new path (nor keep its sequence number). */
static int check_no_deletes(struct ice_table *t, char *err, size_t errsize)
{
        const struct ice_snapshot *s = ice_metadata_current_snapshot(t->md);
        const char *d = s ? ice_kvs_get(&s->summary, "total-delete-files") : NULL;

        if (d && strcmp(d, "0") != 0) {
                snprintf(err, errsize, "the table has delete files: its data files are not moved");
                return -EOPNOTSUPP;
        }
        return 0;
}

int ice_tier_move(const struct ice_tier_opts *o, struct lake_catalog *catalog, const char *ns,
                  const char *table, struct ice_tier_result *ret, char *err, size_t errsize)
{
        struct ice_tier_result res = {0};
        struct retry_ctx rc = {.o = o};
        struct ice_catalog_sql sql;
        struct ice_tier_io ti;
        struct ice_table *t = NULL;
        struct plan p = {.o = o, .ti = &ti, .now_ms = ice_tier_now_ms(o)};
        int r;

        err[0] = '\0';
        r = ice_tier_check_opts(o, true, err, errsize);
        if (r == 0)
                r = ice_tier_open_table(o, &ti, &sql, catalog, ns, table, &t, err, errsize);
        if (r == 0)
                r = check_no_deletes(t, err, errsize);
        p.t = t;
        for (int pass = 1; r == 0; pass++) {
                res = (struct ice_tier_result){.passes = (size_t)pass};
                plan_clear(&p);
                r = ice_table_scan(t, -1, true, collect, &p);
                if (r < 0) {
                        snprintf(err, errsize, "%s", t->error[0] ? t->error : strerror(-r));
                        break;
                }
                res.skipped = p.skipped;
                if (p.n > 1)
                        qsort(p.c, p.n, sizeof(*p.c), cmp_cand);
                if (o->dry_run) {
                        struct ice_strset parts = {0};
                        size_t n = o->max_files && p.n > o->max_files ? o->max_files : p.n;

                        for (size_t i = 0; r == 0 && i < n; i++) {
                                r = ice_strset_add(&parts, p.c[i].part) < 0 ? -ENOMEM : 0;
                                res.bytes += (uint64_t)p.c[i].file.file_size;
                        }
                        res.files = n;
                        res.partitions = parts.n;
                        ice_strset_clear(&parts);
                        break;
                }
                r = move_files(&p, &res, &rc, err, errsize);
                if (r != -ENOENT || pass == MAX_PASSES)
                        break;
                /* a file to move was replaced meanwhile: look again (copies are reused) */
                r = ice_table_refresh(t);
                if (r < 0)
                        snprintf(err, errsize, "%s", t->error[0] ? t->error : strerror(-r));
        }
        if (r == -ENOENT && !err[0])
                snprintf(err, errsize, "%s", t && t->error[0] ? t->error : strerror(-r));
        res.retries = rc.retries;
        plan_clear(&p);
        ice_table_free(t);
        if (r < 0)
                return r;
        if (ret)
                *ret = res;
        return 0;
}
