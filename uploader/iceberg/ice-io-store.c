/* SPDX-License-Identifier: Apache-2.0 */
/* struct ice_io over uploader/store (locations <-> keys) and struct ice_catalog_ops over
 * uploader/catalog. */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "catalog.h"
#include "ice-table.h"
#include "store.h"

#define KEY_MAX 4096

static int key_of(struct lake_store *s, const char *location, char *key)
{
        return lake_store_key(s, location, key, KEY_MAX);
}

static int store_get(void *ud, const char *location, size_t max, uint8_t **ret, size_t *ret_len)
{
        char key[KEY_MAX];
        int r;

        r = key_of(ud, location, key);
        if (r < 0)
                return r;
        return lake_store_get(ud, key, max, ret, ret_len);
}

static int store_put(void *ud, const char *location, const void *data, size_t len, bool if_absent)
{
        char key[KEY_MAX];
        int r;

        r = key_of(ud, location, key);
        if (r < 0)
                return r;
        return lake_store_put(ud, key, data, len,
                              if_absent ? LAKE_PUT_IF_ABSENT : LAKE_PUT_REPLACE);
}

static int store_del(void *ud, const char *location)
{
        char key[KEY_MAX];
        int r;

        r = key_of(ud, location, key);
        if (r < 0)
                return r;
        return lake_store_delete(ud, key);
}

static int store_size(void *ud, const char *location, uint64_t *ret_size)
{
        char key[KEY_MAX];
        int r;

        r = key_of(ud, location, key);
        if (r < 0)
                return r;
        return lake_store_size(ud, key, ret_size);
}

struct lister {
        struct lake_store *s;
        ice_io_list_fn fn;
        void *ud;
};

static int store_list_one(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        struct lister *l = ud;
        char location[KEY_MAX + 256];
        int r;

        r = lake_store_location(l->s, key, location, sizeof(location));
        if (r < 0)
                return r;
        return l->fn(l->ud, location, size, mtime_ms);
}

int ice_io_dir_location(const char *prefix, char *loc, size_t size)
{
        size_t n = strlen(prefix);

        /* keys have no trailing '/': look the directory up, then list below it */
        while (n > 0 && prefix[n - 1] == '/')
                n--;
        if (n >= size)
                return -ENAMETOOLONG;
        memcpy(loc, prefix, n);
        loc[n] = '\0';
        return 0;
}

int ice_io_store_list_dir(struct lake_store *s, const char *key, ice_io_list_fn fn, void *ud)
{
        struct lister l = {.s = s, .fn = fn, .ud = ud};
        char dir[KEY_MAX];
        size_t n = strlen(key);

        if (n + 2 > sizeof(dir))
                return -ENAMETOOLONG;
        memcpy(dir, key, n + 1);
        if (n > 0) {
                dir[n] = '/';
                dir[n + 1] = '\0';
        }
        return lake_store_list(s, dir, store_list_one, &l);
}

static int store_list(void *ud, const char *prefix, ice_io_list_fn fn, void *fn_ud)
{
        char loc[KEY_MAX], key[KEY_MAX];
        int r;

        r = ice_io_dir_location(prefix, loc, sizeof(loc));
        if (r >= 0)
                r = key_of(ud, loc, key);
        return r < 0 ? r : ice_io_store_list_dir(ud, key, fn, fn_ud);
}

void ice_io_store(struct lake_store *s, struct ice_io *ret)
{
        *ret = (struct ice_io){
                .ud = s,
                .get = store_get,
                .put = store_put,
                .del = store_del,
                .list = store_list,
                .size = store_size,
        };
}

static int sql_load(void *ud, char **ret_location)
{
        struct ice_catalog_sql *c = ud;

        return lake_catalog_load(c->catalog, c->ns, c->table, ret_location);
}

static int sql_create(void *ud, const char *location)
{
        struct ice_catalog_sql *c = ud;
        int r;

        r = lake_catalog_create_namespace(c->catalog, c->ns);
        if (r < 0 && r != -EEXIST)
                return r;
        return lake_catalog_create(c->catalog, c->ns, c->table, location);
}

static int sql_swap(void *ud, const char *expected, const char *new_location)
{
        struct ice_catalog_sql *c = ud;

        return lake_catalog_commit(c->catalog, c->ns, c->table, expected, new_location, c->txn_fn,
                                   c->txn_ud);
}

void ice_catalog_sql(struct ice_catalog_sql *c, struct lake_catalog *catalog, const char *ns,
                     const char *table)
{
        *c = (struct ice_catalog_sql){
                .ops = {.load = sql_load, .create = sql_create, .swap = sql_swap},
                .catalog = catalog,
                .ns = ns,
                .table = table,
        };
        c->ops.ud = c;
}
