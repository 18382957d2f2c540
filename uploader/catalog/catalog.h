/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The SQL catalog of Iceberg's JDBC catalog and PyIceberg's SqlCatalog:
 *
 *   iceberg_tables (catalog_name, table_namespace, table_name,
 *                   metadata_location, previous_metadata_location)
 *   iceberg_namespace_properties (catalog_name, namespace, property_key,
 *                   property_value)
 *
 * same tables, columns and primary keys, so Java, Trino, Spark and PyIceberg
 * open what floe commits. Backends: SQLite (a file, WAL; the default) and
 * PostgreSQL (libpq), chosen by the location: a path or "sqlite:PATH", or
 * "postgresql://...".
 *
 * A commit is a compare-and-swap: UPDATE iceberg_tables SET
 * metadata_location = new, previous_metadata_location = old WHERE ... AND
 * metadata_location = old, inside one transaction that also runs the
 * caller's statements (the uploader's ledger), so the table and the ledger
 * move together or not at all. 0 rows updated: -ESTALE (someone else
 * committed; reload and retry).
 *
 * Return values: 0 or a negative errno; -EIO with lake_catalog_error() for
 * database failures; -EBUSY for lock/serialization conflicts (retry); -EINVAL
 * for names the schema cannot hold (empty, longer than its VARCHAR, control
 * characters; namespaces are dot-joined levels, none empty).
 *
 * Opening creates the tables if they are missing, as Java's JdbcCatalog does,
 * with its schema V1 (the iceberg_type column that Java >= 1.5 uses for
 * views); a catalog made by PyIceberg or an older Java without that column is
 * used as it is. docs/catalog.md has the schema and the compatibility notes.
 * A catalog is one connection: not thread-safe.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lake_catalog;

/* catalog_name: the catalog's name in its tables (NULL: "floe"). */
int lake_catalog_open(const char *location, const char *catalog_name, struct lake_catalog **ret);
/* The same; on failure why (why_size bytes, may be NULL) says why, never with a password. */
int lake_catalog_open_explain(const char *location, const char *catalog_name, char *why,
                              size_t why_size, struct lake_catalog **ret);
struct lake_catalog *lake_catalog_close(struct lake_catalog *c);
const char *lake_catalog_error(const struct lake_catalog *c);

int lake_catalog_create_namespace(struct lake_catalog *c, const char *ns); /* -EEXIST */
/* *ret_location allocated with floe_malloc; -ENOENT if the table is not registered. */
int lake_catalog_load(struct lake_catalog *c, const char *ns, const char *table,
                      char **ret_location);
/* Registers a new table at its first metadata file; -EEXIST if registered. Its namespace's
 * "exists" property row is written too (kept when the namespace's last table is dropped). */
int lake_catalog_create(struct lake_catalog *c, const char *ns, const char *table,
                        const char *metadata_location);
/* -ENOENT if not registered. The table's files stay where they are. */
int lake_catalog_drop(struct lake_catalog *c, const char *ns, const char *table);
/* The tables of ns (NULL: of every namespace), ordered by namespace and name. fn returns 0
 * to go on, anything else stops the listing and is returned; it may not call the catalog. */
typedef int (*lake_catalog_table_fn)(void *ud, const char *ns, const char *table,
                                     const char *metadata_location);
int lake_catalog_list(struct lake_catalog *c, const char *ns, lake_catalog_table_fn fn, void *ud);

/*
 * Statements the caller runs inside a commit's transaction. SQL uses '?'
 * placeholders (portable SQL that SQLite and PostgreSQL both take; for an
 * INSERT that may hit a duplicate, append " ON CONFLICT DO NOTHING" and look
 * at the changes: a failed statement aborts a PostgreSQL transaction); text
 * and int64 parameters; rows come back through the callback, ncols columns
 * per row as text (NULL for SQL NULL); ncols is what the statement selects
 * (0 for statements without rows; the backends cannot count columns). fn
 * returns 0 to go on, anything else stops and is returned. After an error
 * the transaction can only be rolled back: return the error from the
 * lake_catalog_txn_fn.
 */
struct lake_catalog_txn;
enum lake_param_type { LAKE_PARAM_TEXT, LAKE_PARAM_INT64, LAKE_PARAM_NULL };
struct lake_param {
        enum lake_param_type type;
        const char *text;
        int64_t i64;
};
typedef int (*lake_catalog_row_fn)(void *ud, int ncols, const char *const *cols);
/* *ret_changes: rows changed by an INSERT/UPDATE/DELETE (may be NULL). -EEXIST on a unique
 * violation. */
int lake_catalog_txn_exec(struct lake_catalog_txn *t, const char *sql,
                          const struct lake_param *params, size_t nparams, unsigned ncols,
                          lake_catalog_row_fn fn, void *ud, int64_t *ret_changes);

/* Holds the lock called name until the transaction ends (floe_sql_ops.lock): for creating
 * tables that several processes may create at once. */
int lake_catalog_txn_lock(struct lake_catalog_txn *t, const char *name);

/* Runs fn (may be NULL) and then the compare-and-swap in one transaction; fn < 0 rolls back and
 * is returned. -ESTALE when metadata_location is no longer expected_location (nothing was
 * changed: reload, rebase, retry), -ENOENT when the table is not registered. A commit whose
 * COMMIT fails with -EIO may have landed (the connection broke): reload to find out. */
typedef int (*lake_catalog_txn_fn)(void *ud, struct lake_catalog_txn *t);
int lake_catalog_commit(struct lake_catalog *c, const char *ns, const char *table,
                        const char *expected_location, const char *new_location,
                        lake_catalog_txn_fn fn, void *ud);
/* A transaction without a table commit (schema set-up of the ledger, reads). */
int lake_catalog_run(struct lake_catalog *c, lake_catalog_txn_fn fn, void *ud);
