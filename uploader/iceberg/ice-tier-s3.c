/* SPDX-License-Identifier: Apache-2.0 */
/* Tiers on S3 by storage class (lifecycle rules, or CopyObject by partition age), and the
 * [tier] configuration (docs/lake.md "Tiers"). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"
#include "ice-tier-internal.h"
#include "store-lifecycle.h"
#include "store.h"

#define DAY_MS  INT64_C(86400000)
#define KEY_MAX 4096

/* The store key data files go under: write.data.path, or <location>/data. */
static int data_key(struct lake_store *s, const struct ice_metadata *md, char *buf, size_t size)
{
        const char *data = ice_kvs_get(&md->properties, "write.data.path");
        int r;

        if (data)
                return lake_store_key(s, data, buf, size);
        r = lake_store_key(s, md->location, buf, size - 5);
        if (r == 0)
                memcpy(buf + strlen(buf), "/data", 6);
        return r;
}

/* A key's partition end, for CopyObject by partition age. */
struct timed {
        char *key;
        int64_t end_ms;
};

struct timing {
        struct ice_table *t;
        struct lake_store *s;
        struct timed *v;
        size_t n, cap;
};

static int time_entry(void *ud, const struct ice_manifest_file *mf,
                      const struct ice_manifest_entry *e)
{
        struct timing *tm = ud;
        const struct ice_metadata *md = tm->t->md;
        char key[KEY_MAX];
        int64_t end;

        if (e->file.content != ICE_CONTENT_DATA ||
            ice_tier_partition_end(ice_metadata_spec(md, mf->spec_id),
                                   ice_metadata_current_schema(md), e->file.partition,
                                   e->file.n_partition, &end) < 0 ||
            lake_store_key(tm->s, e->file.path, key, sizeof(key)) < 0)
                return 0;
        if (tm->n == tm->cap) {
                size_t cap = tm->cap ? 2 * tm->cap : 64;
                struct timed *v = floe_reallocarray(tm->v, cap, sizeof(*v));

                if (!v)
                        return -ENOMEM;
                tm->v = v;
                tm->cap = cap;
        }
        tm->v[tm->n].key = floe_strdup(key);
        if (!tm->v[tm->n].key)
                return -ENOMEM;
        tm->v[tm->n++].end_ms = end;
        return 0;
}

static int cmp_timed(const void *a, const void *b)
{
        return strcmp(((const struct timed *)a)->key, ((const struct timed *)b)->key);
}

/* Live files by their partition's end; other objects (old snapshots' files) are left alone. */
static int time_of(void *ud, const char *key, int64_t mtime_ms, int64_t *ret)
{
        struct timing *tm = ud;
        struct timed k = {.key = (char *)key};
        const struct timed *hit =
                tm->n ? bsearch(&k, tm->v, tm->n, sizeof(*tm->v), cmp_timed) : NULL;

        (void)mtime_ms;
        if (!hit)
                return 1;
        *ret = hit->end_ms;
        return 0;
}

static void timing_clear(struct timing *tm)
{
        for (size_t i = 0; i < tm->n; i++)
                floe_free(tm->v[i].key);
        floe_free(tm->v);
}

static int by_copy(const struct ice_tier_opts *o, struct ice_table *t, struct lake_store *s,
                   const char *prefix, struct ice_tier_result *res, char *err, size_t errsize)
{
        struct lake_lifecycle_rule rule = {.id = "floe-copy", .prefix = prefix};
        struct lake_lifecycle_apply_result ar;
        struct timing tm = {.t = t, .s = s};
        int r;

        /* ages in seconds: partition ages need no rounding to days here */
        for (size_t i = 1; i < o->n_tiers; i++)
                rule.transitions[rule.n_transitions++] = (struct lake_lifecycle_transition){
                        (uint32_t)((o->tiers[i].age_ms + 999) / 1000), o->tiers[i].storage_class};
        r = ice_table_scan(t, -1, true, time_entry, &tm);
        if (r < 0) {
                snprintf(err, errsize, "%s", t->error[0] ? t->error : strerror(-r));
                timing_clear(&tm);
                return r;
        }
        if (tm.n > 1)
                qsort(tm.v, tm.n, sizeof(*tm.v), cmp_timed);
        r = lake_lifecycle_apply(s, &rule, 1, ice_tier_now_ms(o), 1000, time_of, &tm, &ar);
        timing_clear(&tm);
        if (r < 0) {
                snprintf(err, errsize, "%s", lake_store_error(s));
                return r;
        }
        res->files = ar.due;
        res->objects_changed = ar.changed;
        return 0;
}

int ice_tier_s3(const struct ice_tier_opts *o, struct lake_catalog *catalog, const char *ns,
                const char *table, struct ice_tier_result *ret, char *err, size_t errsize)
{
        struct ice_tier_result res = {0};
        struct lake_store *s = o->tiers[0].store;
        struct lake_lifecycle_rule rule = {0};
        struct ice_catalog_sql sql;
        struct ice_tier_io ti;
        struct ice_table *t = NULL;
        char key[KEY_MAX], prefix[KEY_MAX + 1], id[KEY_MAX + 256], rule_id[KEY_MAX + 256];
        const char *bucket_key;
        int r;

        err[0] = '\0';
        r = ice_tier_check_opts(o, false, err, errsize);
        for (size_t i = 1; r == 0 && i < o->n_tiers; i++)
                if (!o->tiers[i].storage_class || o->tiers[i].age_ms / 1000 > UINT32_MAX) {
                        snprintf(err, errsize, "tier %zu: %s", i,
                                 o->tiers[i].storage_class ? "age too large" : "no storage class");
                        r = -EINVAL;
                }
        if (r == 0)
                r = ice_tier_open_table(o, &ti, &sql, catalog, ns, table, &t, err, errsize);
        if (r == 0 && (r = data_key(s, t->md, key, sizeof(key))) < 0)
                snprintf(err, errsize, "%s: not in the warehouse's store", t->md->location);
        if (r < 0)
                goto out;
        snprintf(prefix, sizeof(prefix), "%s/", key);
        if (o->s3_mode != ICE_TIER_S3_COPY) {
                struct lake_lifecycle_result lr;

                /* one rule per table, named after its data prefix in the bucket (warehouses
                 * under other prefixes of the bucket have tables of the same names): rules of
                 * other tables and of others stay */
                r = lake_store_location(s, key, id, sizeof(id));
                if (r == 0 && (strncmp(id, "s3://", 5) != 0 || !strchr(id + 5, '/')))
                        r = -EOPNOTSUPP;
                if (r < 0) {
                        snprintf(err, errsize, "%s: not an s3:// warehouse", key);
                        goto out;
                }
                bucket_key = strchr(id + 5, '/') + 1;
                snprintf(rule_id, sizeof(rule_id), "%s%s/", LAKE_LIFECYCLE_OWNED, bucket_key);
                rule.id = rule_id;
                rule.prefix = prefix;
                for (size_t i = 1; i < o->n_tiers; i++) {
                        int64_t days = (o->tiers[i].age_ms + DAY_MS - 1) / DAY_MS;

                        if (rule.n_transitions &&
                            days <= rule.transitions[rule.n_transitions - 1].days) {
                                snprintf(err, errsize,
                                         "tier %zu: lifecycle rules count whole days: its age "
                                         "must be at least a day more than tier %zu's",
                                         i, i - 1);
                                r = -EINVAL;
                                goto out;
                        }
                        rule.transitions[rule.n_transitions++] = (struct lake_lifecycle_transition){
                                (uint32_t)days, o->tiers[i].storage_class};
                }
                if (o->dry_run) {
                        res.lifecycle = true;
                        goto out;
                }
                r = lake_lifecycle_install(s, rule_id, &rule, 1, &lr);
                if (r == 0) {
                        res.lifecycle = true;
                        res.lifecycle_changed = lr.changed;
                        goto out;
                }
                if (r != -EOPNOTSUPP || o->s3_mode == ICE_TIER_S3_LIFECYCLE) {
                        snprintf(err, errsize, "%s", lake_store_error(s));
                        goto out;
                }
                /* no lifecycle on this server: the same by hand */
        }
        if (o->dry_run)
                goto out;
        r = by_copy(o, t, s, prefix, &res, err, errsize);
out:
        ice_table_free(t);
        if (r < 0)
                return r;
        if (ret)
                *ret = res;
        return 0;
}

/* ---- [tier] ---- */

const struct floe_config_key ice_tier_conf_keys[] = {
        {"tier", "root.1"},  {"tier", "age.1"},   {"tier", "class.1"}, {"tier", "root.2"},
        {"tier", "age.2"},   {"tier", "class.2"}, {"tier", "root.3"},  {"tier", "age.3"},
        {"tier", "class.3"}, {"tier", "s3"},      {NULL, NULL},
};

struct key_check {
        const struct floe_config *cfg;
        struct floe_config_error *err;
};

static int known_key(const char *section, const char *key, const char *value, void *ud)
{
        struct key_check *k = ud;

        (void)value;
        for (size_t i = 0; ice_tier_conf_keys[i].section; i++)
                if (strcmp(ice_tier_conf_keys[i].key, key) == 0)
                        return 0;
        return floe_config_key_error(k->cfg, section, key, -EINVAL, k->err, "unknown key");
}

int ice_tier_conf_from(struct ice_tier_conf *c, const struct floe_config *cfg,
                       struct floe_config_error *err)
{
        static const char *const modes[] = {"auto", "lifecycle", "copy", NULL};
        struct ice_tier_conf n = {.n_tiers = 1};
        int mode = 0, r;

        if (cfg) {
                struct key_check k = {.cfg = cfg, .err = err};

                r = floe_config_foreach_key(cfg, "tier", known_key, &k);
                if (r < 0)
                        return r;
        }
        r = floe_config_get_enum(cfg, "tier", "s3", modes, 0, &mode, err);
        n.s3_mode = (enum ice_tier_s3_mode)mode;
        for (size_t i = 1; r == 0 && i < ICE_TIER_MAX; i++) {
                char ka[16], kr[16], kc[16];
                uint64_t us = 0;

                snprintf(ka, sizeof(ka), "age.%zu", i);
                snprintf(kr, sizeof(kr), "root.%zu", i);
                snprintf(kc, sizeof(kc), "class.%zu", i);
                r = floe_config_get_string(cfg, "tier", kr, NULL, &n.root[i]);
                if (r == 0)
                        r = floe_config_get_string(cfg, "tier", kc, NULL, &n.storage_class[i]);
                if (r == 0)
                        r = floe_config_get_duration(cfg, "tier", ka, 0, 1000,
                                                     UINT64_C(100) * 365 * 86400 * 1000000, &us,
                                                     err);
                if (r < 0)
                        break;
                n.age_ms[i] = (int64_t)(us / 1000);
                if (!us && !n.root[i] && !n.storage_class[i])
                        continue;
                if (n.n_tiers != i)
                        return floe_config_key_error(cfg, "tier",
                                                     us          ? ka
                                                     : n.root[i] ? kr
                                                                 : kc,
                                                     -EINVAL, err, "tier %zu comes after a gap", i);
                if (!us)
                        return floe_config_key_error(cfg, "tier", n.root[i] ? kr : kc, -EINVAL, err,
                                                     "tier %zu has no age.%zu", i, i);
                if (!n.root[i] && !n.storage_class[i])
                        return floe_config_key_error(cfg, "tier", ka, -EINVAL, err,
                                                     "tier %zu needs root.%zu or class.%zu", i, i,
                                                     i);
                if (i > 1 && n.age_ms[i] <= n.age_ms[i - 1])
                        return floe_config_key_error(cfg, "tier", ka, -EINVAL, err,
                                                     "ages must be ascending");
                n.n_tiers = i + 1;
        }
        if (r < 0)
                return r;
        *c = n;
        return 0;
}

int ice_tier_opts_open(struct ice_tier_opts *o, const struct ice_tier_conf *c,
                       struct lake_store *warehouse, const struct lake_store_opts *so, char *err,
                       size_t errsize)
{
        struct ice_tier_opts n = {.n_tiers = c->n_tiers, .s3_mode = c->s3_mode};

        n.tiers[0].store = warehouse;
        for (size_t i = 1; i < c->n_tiers && i < ICE_TIER_MAX; i++) {
                char why[256];
                int r;

                n.tiers[i].age_ms = c->age_ms[i];
                n.tiers[i].storage_class = c->storage_class[i];
                n.tiers[i].store = warehouse;
                if (!c->root[i])
                        continue;
                r = lake_store_open_explain(c->root[i], so, why, sizeof(why), &n.tiers[i].store);
                if (r < 0) {
                        snprintf(err, errsize, "tier %zu: %s: %s", i, c->root[i], why);
                        n.tiers[i].store = warehouse;
                        ice_tier_opts_close(&n);
                        return r;
                }
        }
        *o = n;
        return 0;
}

void ice_tier_opts_close(struct ice_tier_opts *o)
{
        for (size_t i = 1; i < o->n_tiers && i < ICE_TIER_MAX; i++) {
                if (o->tiers[i].store && o->tiers[i].store != o->tiers[0].store)
                        lake_store_close(o->tiers[i].store);
                o->tiers[i].store = NULL;
        }
}
