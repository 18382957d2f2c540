/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQL catalog (catalog.h) over the registry's database seam (floe-sql.h): every
 * statement goes through db_run() below, the one place that prepares, binds and steps.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "floe-sql.h"

#define NAME_MAX_LEN     255  /* VARCHAR(255) */
#define LOCATION_MAX_LEN 1000 /* VARCHAR(1000) */
#define MAX_PARAMS       32

/* Iceberg's JdbcUtil DDL, byte for byte (V0_CREATE_CATALOG_SQL, V1_UPDATE_CATALOG_SQL,
 * CREATE_NAMESPACE_PROPERTIES_TABLE_SQL). */
#define CREATE_TABLES                                                               \
        "CREATE TABLE iceberg_tables(catalog_name VARCHAR(255) NOT NULL,"           \
        "table_namespace VARCHAR(255) NOT NULL,table_name VARCHAR(255) NOT NULL,"   \
        "metadata_location VARCHAR(1000),previous_metadata_location VARCHAR(1000)," \
        "PRIMARY KEY (catalog_name, table_namespace, table_name))"
#define ADD_TYPE "ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)"
#define CREATE_NAMESPACES                                                               \
        "CREATE TABLE iceberg_namespace_properties(catalog_name VARCHAR(255) NOT NULL," \
        "namespace VARCHAR(255) NOT NULL,property_key VARCHAR(255),"                    \
        "property_value VARCHAR(1000),"                                                 \
        "PRIMARY KEY (catalog_name, namespace, property_key))"

/* Rows that are tables: schema V1 also holds views. */
#define IS_TABLE " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)"

struct lake_catalog {
        const struct floe_sql_ops *ops;
        struct floe_sql *db;
        char *name;
        bool v1;     /* iceberg_tables has iceberg_type */
        bool in_txn; /* inside commit/run */
        char error[512];
};

struct lake_catalog_txn {
        struct lake_catalog *c;
};

/* -- the seam ------------------------------------------------------------------------------ */

static const struct floe_sql_ops *backend_of(const char **location)
{
        const char *l = *location;

        if (strncmp(l, "postgresql:", 11) == 0 || strncmp(l, "postgres:", 9) == 0)
                return &floe_sql_pg_ops; /* the whole URI goes to libpq */
        if (strncmp(l, "sqlite:", 7) == 0)
                *location = l + 7;
        return &floe_sql_sqlite_ops;
}

static int db_fail(struct lake_catalog *c, int r, const char *what)
{
        snprintf(c->error, sizeof(c->error), "%s: %s", what, c->ops->error(c->db));
        return r;
}

static int fail(struct lake_catalog *c, int r, const char *fmt, const char *arg)
{
        snprintf(c->error, sizeof(c->error), fmt, arg);
        return r;
}

/* Runs one statement: params bound in order, ncols columns of each row to fn. */
static int db_run(struct lake_catalog *c, const char *sql, const struct lake_param *params,
                  size_t nparams, unsigned ncols, lake_catalog_row_fn fn, void *ud,
                  int64_t *ret_changes)
{
        const char *cols[MAX_PARAMS];
        struct floe_sql_stmt *st = NULL;
        int r;

        if (nparams > 65535 || ncols > MAX_PARAMS)
                return fail(c, -E2BIG, "%s: too many parameters or columns", "statement");
        r = c->ops->prepare(c->db, sql, &st);
        if (r < 0)
                return db_fail(c, r, "prepare");
        for (size_t i = 0; i < nparams && r >= 0; i++) {
                switch (params[i].type) {
                case LAKE_PARAM_TEXT:
                        r = c->ops->bind_text(st, (int)i + 1, params[i].text);
                        break;
                case LAKE_PARAM_INT64:
                        r = c->ops->bind_int64(st, (int)i + 1, params[i].i64);
                        break;
                case LAKE_PARAM_NULL:
                        r = c->ops->bind_text(st, (int)i + 1, NULL);
                        break;
                default:
                        r = -EINVAL;
                }
        }
        if (r < 0) {
                c->ops->finalize(st);
                return r == -EINVAL ? fail(c, r, "%s: bad parameter type", "bind")
                                    : db_fail(c, r, "bind");
        }
        while ((r = c->ops->step(st)) == 1) {
                if (!fn)
                        continue;
                for (unsigned i = 0; i < ncols; i++)
                        cols[i] = c->ops->column_text(st, (int)i);
                r = fn(ud, (int)ncols, cols);
                if (r != 0) {
                        c->ops->finalize(st);
                        return r; /* the caller's: its own message */
                }
        }
        if (r < 0)
                db_fail(c, r, "statement");
        if (r == 0 && ret_changes)
                *ret_changes = c->ops->changes(c->db);
        c->ops->finalize(st);
        return r;
}

#define TEXT(s)                                      \
        {                                            \
                .type = LAKE_PARAM_TEXT, .text = (s) \
        }

static int row_found(void *ud, int ncols, const char *const *cols)
{
        (void)ncols, (void)cols;
        *(bool *)ud = true;
        return 1; /* one is enough */
}

static int exists(struct lake_catalog *c, const char *sql, const struct lake_param *p, size_t n,
                  bool *ret)
{
        bool found = false;
        int r = db_run(c, sql, p, n, 0, row_found, &found, NULL);

        if (r < 0)
                return r;
        *ret = found;
        return 0;
}

static int begin(struct lake_catalog *c)
{
        int r = c->ops->begin(c->db);

        return r < 0 ? db_fail(c, r, "BEGIN") : 0;
}

static int lock(struct lake_catalog *c, const char *name)
{
        int r = c->ops->lock(c->db, name);

        return r < 0 ? db_fail(c, r, "taking the schema lock") : 0;
}

static int rollback(struct lake_catalog *c, int r)
{
        (void)c->ops->rollback(c->db);
        return r;
}

static int commit(struct lake_catalog *c)
{
        int r = c->ops->commit(c->db);

        if (r < 0) {
                db_fail(c, r, "COMMIT");
                return rollback(c, r);
        }
        return 0;
}

/* -- names --------------------------------------------------------------------------------- */

static bool text_ok(const char *s, size_t max)
{
        size_t n;

        if (!s)
                return false;
        n = strlen(s);
        if (n == 0 || n > max)
                return false;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
                        return false;
        return true;
}

static bool ns_ok(const char *ns)
{
        size_t n;

        if (!text_ok(ns, NAME_MAX_LEN))
                return false;
        n = strlen(ns);
        return ns[0] != '.' && ns[n - 1] != '.' && !strstr(ns, "..");
}

static int check_table(struct lake_catalog *c, const char *ns, const char *table)
{
        c->error[0] = '\0';
        if (!ns_ok(ns))
                return fail(c, -EINVAL, "invalid namespace \"%.300s\"", ns ? ns : "");
        if (!text_ok(table, NAME_MAX_LEN))
                return fail(c, -EINVAL, "invalid table name \"%.300s\"", table ? table : "");
        return 0;
}

static int check_location(struct lake_catalog *c, const char *loc)
{
        if (!text_ok(loc, LOCATION_MAX_LEN))
                return fail(c, -EINVAL, "invalid metadata location \"%.300s\"", loc ? loc : "");
        return 0;
}

/* -- schema -------------------------------------------------------------------------------- */

static int table_exists(struct lake_catalog *c, const char *table, bool *ret)
{
        const struct lake_param p[] = {TEXT(table)};

        if (c->ops == &floe_sql_pg_ops) /* the search path's, as unqualified names resolve */
                return exists(c, "SELECT 1 WHERE to_regclass(?) IS NOT NULL", p, 1, ret);
        return exists(c, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", p, 1,
                      ret);
}

static int column_exists(struct lake_catalog *c, const char *table, const char *column, bool *ret)
{
        const struct lake_param p[] = {TEXT(table), TEXT(column)};

        if (c->ops == &floe_sql_pg_ops)
                return exists(c,
                              "SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(?)"
                              " AND attname = ? AND attnum > 0 AND NOT attisdropped",
                              p, 2, ret);
        return exists(c, "SELECT 1 FROM pragma_table_info(?) WHERE name = ?", p, 2, ret);
}

static int schema_try(struct lake_catalog *c)
{
        bool have_tables = false, have_ns = false;
        int r;

        /* the common case, without a write transaction: both are there */
        r = table_exists(c, "iceberg_tables", &have_tables);
        if (r >= 0 && have_tables)
                r = table_exists(c, "iceberg_namespace_properties", &have_ns);
        if (r < 0)
                return r;
        if (have_tables && have_ns)
                return column_exists(c, "iceberg_tables", "iceberg_type", &c->v1);
        r = begin(c);
        if (r < 0)
                return r;
        r = lock(c, "floe catalog schema");
        if (r >= 0)
                r = table_exists(c, "iceberg_tables", &have_tables);
        if (r >= 0)
                r = table_exists(c, "iceberg_namespace_properties", &have_ns);
        if (r >= 0 && !have_tables) {
                r = c->ops->exec(c->db, CREATE_TABLES);
                if (r >= 0)
                        r = c->ops->exec(c->db, ADD_TYPE);
                if (r < 0)
                        db_fail(c, r, "creating iceberg_tables");
        }
        if (r >= 0 && !have_ns) {
                r = c->ops->exec(c->db, CREATE_NAMESPACES);
                if (r < 0)
                        db_fail(c, r, "creating iceberg_namespace_properties");
        }
        if (r < 0)
                return rollback(c, r);
        r = commit(c);
        if (r < 0)
                return r;
        return column_exists(c, "iceberg_tables", "iceberg_type", &c->v1);
}

static int schema_init(struct lake_catalog *c)
{
        /* Two processes creating the tables at once wait on one lock; a lock timeout, a
         * duplicate from a creator that does not take it (another catalog client) or a broken
         * connection is retried. */
        for (int attempt = 0;; attempt++) {
                int r = schema_try(c);

                if (r >= 0 || attempt == 2 || (r != -EEXIST && r != -EBUSY && r != -EIO))
                        return r;
        }
}

/* -- open/close ---------------------------------------------------------------------------- */

int lake_catalog_open_explain(const char *location, const char *catalog_name, char *why,
                              size_t why_size, struct lake_catalog **ret)
{
        struct lake_catalog *c;
        int r;

        if (why && why_size > 0)
                why[0] = '\0';
        if (!catalog_name)
                catalog_name = "floe";
        if (!location || !*location || !text_ok(catalog_name, NAME_MAX_LEN)) {
                if (why && why_size > 0)
                        snprintf(why, why_size, "%s",
                                 location && *location ? "invalid catalog name"
                                                       : "no catalog location");
                return -EINVAL;
        }
        c = floe_calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->ops = backend_of(&location);
        c->name = floe_strdup(catalog_name);
        if (!c->name) {
                floe_free(c);
                return -ENOMEM;
        }
        r = *location ? c->ops->open(location, why, why_size, &c->db) : -EINVAL;
        if (r >= 0) {
                r = schema_init(c);
                if (r < 0 && why && why_size > 0)
                        snprintf(why, why_size, "%s", c->error);
        }
        if (r < 0) {
                lake_catalog_close(c);
                return r;
        }
        *ret = c;
        return 0;
}

int lake_catalog_open(const char *location, const char *catalog_name, struct lake_catalog **ret)
{
        return lake_catalog_open_explain(location, catalog_name, NULL, 0, ret);
}

struct lake_catalog *lake_catalog_close(struct lake_catalog *c)
{
        if (!c)
                return NULL;
        if (c->db)
                c->ops->close(c->db);
        floe_free(c->name);
        floe_free(c);
        return NULL;
}

const char *lake_catalog_error(const struct lake_catalog *c)
{
        return c ? c->error : "";
}

/* -- namespaces and tables ----------------------------------------------------------------- */

/* Whether ns exists as Java and PyIceberg see it: a table in it or below it, or properties. */
static int namespace_exists(struct lake_catalog *c, const char *ns, bool *ret)
{
        char like[2 * NAME_MAX_LEN + 3];
        size_t w = 0;

        for (const char *p = ns; *p; p++) {
                if (*p == '!' || *p == '%' || *p == '_')
                        like[w++] = '!';
                like[w++] = *p;
        }
        memcpy(like + w, ".%", 3);
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns), TEXT(like)};
        int r = exists(c,
                       "SELECT 1 FROM iceberg_tables WHERE catalog_name = ? AND"
                       " (table_namespace = ? OR table_namespace LIKE ? ESCAPE '!')",
                       p, 3, ret);

        if (r < 0 || *ret)
                return r;
        return exists(c,
                      "SELECT 1 FROM iceberg_namespace_properties WHERE catalog_name = ? AND"
                      " (namespace = ? OR namespace LIKE ? ESCAPE '!')",
                      p, 3, ret);
}

static int insert_namespace(struct lake_catalog *c, const char *ns, int64_t *ret_changes)
{
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns)};

        return db_run(c,
                      "INSERT INTO iceberg_namespace_properties"
                      " (catalog_name, namespace, property_key, property_value)"
                      " VALUES (?, ?, 'exists', 'true')" ON_DUPLICATE,
                      p, 2, 0, NULL, NULL, ret_changes);
}

int lake_catalog_create_namespace(struct lake_catalog *c, const char *ns)
{
        int64_t changes = 0;
        bool found = false;
        int r;

        c->error[0] = '\0';
        if (c->in_txn)
                return fail(c, -EBUSY, "%s: inside a transaction", "create namespace");
        if (!ns_ok(ns))
                return fail(c, -EINVAL, "invalid namespace \"%.300s\"", ns ? ns : "");
        r = begin(c);
        if (r < 0)
                return r;
        r = namespace_exists(c, ns, &found);
        if (r >= 0 && !found)
                r = insert_namespace(c, ns, &changes);
        if (r >= 0 && (found || changes == 0))
                r = fail(c, -EEXIST, "namespace %s exists already", ns);
        if (r < 0)
                return rollback(c, r);
        return commit(c);
}

static int take_text(void *ud, int ncols, const char *const *cols)
{
        struct {
                bool found;
                char *text;
        } *t = ud;

        (void)ncols;
        t->found = true;
        if (cols[0]) {
                t->text = floe_strdup(cols[0]);
                if (!t->text)
                        return -ENOMEM;
        }
        return 1;
}

/* metadata_location of a table (NULL if the row has none); -ENOENT if there is no row. */
static int select_location(struct lake_catalog *c, const char *ns, const char *table, char **ret)
{
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns), TEXT(table)};
        struct {
                bool found;
                char *text;
        } t = {false, NULL};
        int r;

        r = db_run(c,
                   c->v1 ? "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?"
                           " AND table_namespace = ? AND table_name = ?" IS_TABLE
                         : "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ?"
                           " AND table_namespace = ? AND table_name = ?",
                   p, 3, 1, take_text, &t, NULL);
        if (r < 0) {
                floe_free(t.text);
                return r;
        }
        if (!t.found)
                return -ENOENT;
        *ret = t.text;
        return 0;
}

int lake_catalog_load(struct lake_catalog *c, const char *ns, const char *table,
                      char **ret_location)
{
        char *loc = NULL;
        int r = check_table(c, ns, table);

        if (r < 0)
                return r;
        r = select_location(c, ns, table, &loc);
        if (r == -ENOENT)
                return fail(c, r, "table %s not registered", table);
        if (r < 0)
                return r;
        if (!loc)
                return fail(c, -EBADMSG, "table %s has no metadata location", table);
        *ret_location = loc;
        return 0;
}

int lake_catalog_create(struct lake_catalog *c, const char *ns, const char *table,
                        const char *metadata_location)
{
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns), TEXT(table),
                                       TEXT(metadata_location)};
        int64_t changes = 0;
        int r = check_table(c, ns, table);

        if (r >= 0)
                r = check_location(c, metadata_location);
        if (r < 0)
                return r;
        if (c->in_txn)
                return fail(c, -EBUSY, "%s: inside a transaction", "create");
        r = begin(c);
        if (r < 0)
                return r;
        r = insert_namespace(c, ns, NULL);
        if (r >= 0)
                r = db_run(c,
                           c->v1 ? "INSERT INTO iceberg_tables (catalog_name, table_namespace,"
                                   " table_name, metadata_location, previous_metadata_location,"
                                   " iceberg_type) VALUES (?, ?, ?, ?, NULL, 'TABLE')" ON_DUPLICATE
                                 : "INSERT INTO iceberg_tables (catalog_name, table_namespace,"
                                   " table_name, metadata_location, previous_metadata_location)"
                                   " VALUES (?, ?, ?, ?, NULL)" ON_DUPLICATE,
                           p, 4, 0, NULL, NULL, &changes);
        if (r >= 0 && changes == 0)
                r = fail(c, -EEXIST, "table %s is registered already", table);
        if (r < 0)
                return rollback(c, r);
        return commit(c);
}

int lake_catalog_drop(struct lake_catalog *c, const char *ns, const char *table)
{
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns), TEXT(table)};
        int64_t changes = 0;
        int r = check_table(c, ns, table);

        if (r < 0)
                return r;
        r = db_run(c,
                   c->v1 ? "DELETE FROM iceberg_tables WHERE catalog_name = ?"
                           " AND table_namespace = ? AND table_name = ?" IS_TABLE
                         : "DELETE FROM iceberg_tables WHERE catalog_name = ?"
                           " AND table_namespace = ? AND table_name = ?",
                   p, 3, 0, NULL, NULL, &changes);
        if (r < 0)
                return r;
        return changes == 0 ? fail(c, -ENOENT, "table %s not registered", table) : 0;
}

struct list {
        lake_catalog_table_fn fn;
        void *ud;
};

static int list_row(void *ud, int ncols, const char *const *cols)
{
        struct list *l = ud;

        (void)ncols;
        return l->fn(l->ud, cols[0] ? cols[0] : "", cols[1] ? cols[1] : "", cols[2]);
}

int lake_catalog_list(struct lake_catalog *c, const char *ns, lake_catalog_table_fn fn, void *ud)
{
        const struct lake_param p[] = {TEXT(c->name), TEXT(ns)};
        struct list l = {fn, ud};
        char sql[400];

        c->error[0] = '\0';
        if (!fn || (ns && !ns_ok(ns)))
                return fail(c, -EINVAL, "invalid namespace \"%.300s\"", ns ? ns : "");
        snprintf(sql, sizeof(sql),
                 "SELECT table_namespace, table_name, metadata_location FROM iceberg_tables"
                 " WHERE catalog_name = ?%s%s ORDER BY table_namespace, table_name",
                 ns ? " AND table_namespace = ?" : "", c->v1 ? IS_TABLE : "");
        return db_run(c, sql, p, ns ? 2 : 1, 3, list_row, &l, NULL);
}

/* -- transactions -------------------------------------------------------------------------- */

int lake_catalog_txn_lock(struct lake_catalog_txn *t, const char *name)
{
        t->c->error[0] = '\0';
        return lock(t->c, name);
}

int lake_catalog_txn_exec(struct lake_catalog_txn *t, const char *sql,
                          const struct lake_param *params, size_t nparams, unsigned ncols,
                          lake_catalog_row_fn fn, void *ud, int64_t *ret_changes)
{
        struct lake_catalog *c = t->c;

        c->error[0] = '\0';
        if (!sql || (nparams && !params))
                return fail(c, -EINVAL, "%s: no SQL or parameters", "statement");
        return db_run(c, sql, params, nparams, ncols, fn, ud, ret_changes);
}

int lake_catalog_commit(struct lake_catalog *c, const char *ns, const char *table,
                        const char *expected_location, const char *new_location,
                        lake_catalog_txn_fn fn, void *ud)
{
        const struct lake_param p[] = {TEXT(new_location), TEXT(expected_location),
                                       TEXT(c->name),      TEXT(ns),
                                       TEXT(table),        TEXT(expected_location)};
        struct lake_catalog_txn t = {c};
        int64_t changes = 0;
        char *now = NULL;
        int r = check_table(c, ns, table);

        if (r >= 0)
                r = check_location(c, expected_location);
        if (r >= 0)
                r = check_location(c, new_location);
        if (r < 0)
                return r;
        if (c->in_txn)
                return fail(c, -EBUSY, "%s: inside a transaction", "commit");
        r = begin(c);
        if (r < 0)
                return r;
        c->in_txn = true;
        if (fn)
                r = fn(ud, &t);
        if (r >= 0) {
                c->error[0] = '\0';
                r = db_run(c,
                           c->v1 ? "UPDATE iceberg_tables SET metadata_location = ?,"
                                   " previous_metadata_location = ? WHERE catalog_name = ?"
                                   " AND table_namespace = ? AND table_name = ?"
                                   " AND metadata_location = ?" IS_TABLE
                                 : "UPDATE iceberg_tables SET metadata_location = ?,"
                                   " previous_metadata_location = ? WHERE catalog_name = ?"
                                   " AND table_namespace = ? AND table_name = ?"
                                   " AND metadata_location = ?",
                           p, 6, 0, NULL, NULL, &changes);
        }
        if (r >= 0 && changes != 1) {
                /* lost the race, or no such table: say which */
                r = select_location(c, ns, table, &now);
                if (r >= 0)
                        snprintf(c->error, sizeof(c->error),
                                 "commit of %s.%s: metadata location is %.400s, not the one "
                                 "expected",
                                 ns, table, now ? now : "NULL");
                else if (r == -ENOENT)
                        fail(c, r, "table %s not registered", table);
                r = r >= 0 ? -ESTALE : r;
                floe_free(now);
        }
        c->in_txn = false;
        if (r < 0)
                return rollback(c, r);
        return commit(c);
}

int lake_catalog_run(struct lake_catalog *c, lake_catalog_txn_fn fn, void *ud)
{
        struct lake_catalog_txn t = {c};
        int r;

        c->error[0] = '\0';
        if (!fn)
                return -EINVAL;
        if (c->in_txn)
                return fail(c, -EBUSY, "%s: inside a transaction", "run");
        r = begin(c);
        if (r < 0)
                return r;
        c->in_txn = true;
        r = fn(ud, &t);
        c->in_txn = false;
        if (r < 0)
                return rollback(c, r);
        return commit(c);
}
