/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * floe's SQL seam: the certificate registry (certs/registry.c) and the lake's
 * catalog and ledger (uploader/catalog/) speak portable SQL through these few
 * calls, and a backend (floe-sql-sqlite.c, floe-sql-pg.c) implements them.
 * SQL uses '?' placeholders numbered from 1 in order; a backend whose server
 * wants $1, $2, ... rewrites them (floe_sql_placeholders).
 *
 * All calls return 0 or a negative errno (-EIO for a database error, whose
 * text floe_sql_error() returns; -EEXIST for a uniqueness violation; -EBUSY when
 * the database stayed locked past the busy timeout, or a concurrent
 * transaction forced this one to give up: deadlock, serialization failure).
 */

struct floe_sql;
struct floe_sql_stmt;

/* Appended to an INSERT: a duplicate key inserts nothing (changes 0, then
 * the caller's -EEXIST) instead of failing, which in PostgreSQL would abort
 * the caller's whole transaction. */
#define ON_DUPLICATE " ON CONFLICT DO NOTHING"

struct floe_sql_ops {
        const char *scheme; /* "sqlite", "postgresql" */
        /* On failure, why (why_size bytes, may be NULL) gets the reason: never
         * a password. */
        int (*open)(const char *location, char *why, size_t why_size, struct floe_sql **ret);
        void (*close)(struct floe_sql *db);
        const char *(*error)(const struct floe_sql *db);
        /* One or more statements without parameters or results. */
        int (*exec)(struct floe_sql *db, const char *sql);
        /* Write transaction (SQLite: BEGIN IMMEDIATE, so no lock upgrades;
         * PostgreSQL: READ COMMITTED). Outside a transaction a backend may
         * replace a lost connection; inside one it fails with -EIO instead. */
        int (*begin)(struct floe_sql *db);
        int (*commit)(struct floe_sql *db);
        /* Accepts a database with no open transaction (then does nothing). */
        int (*rollback)(struct floe_sql *db);
        int (*prepare)(struct floe_sql *db, const char *sql, struct floe_sql_stmt **ret);
        void (*finalize)(struct floe_sql_stmt *st);
        int (*bind_text)(struct floe_sql_stmt *st, int idx, const char *v); /* NULL binds NULL */
        int (*bind_int64)(struct floe_sql_stmt *st, int idx, int64_t v);
        /* 1: a row is available, 0: done. */
        int (*step)(struct floe_sql_stmt *st);
        /* Columns of the current row, from 0. Text is borrowed until the next
         * step; NULL for SQL NULL. */
        const char *(*column_text)(struct floe_sql_stmt *st, int col);
        int64_t (*column_int64)(struct floe_sql_stmt *st, int col);
        bool (*column_is_null)(struct floe_sql_stmt *st, int col);
        /* Rows changed by the last completed INSERT/UPDATE/DELETE. */
        int64_t (*changes)(struct floe_sql *db);
        /* Inside a write transaction: waits until no other transaction holds the lock
         * called name, and holds it until this one ends. Processes creating the same
         * tables at once take it first, so the second one finds them instead of failing
         * on the system catalogs (PostgreSQL: an advisory transaction lock; SQLite: the
         * database lock BEGIN IMMEDIATE took already). */
        int (*lock)(struct floe_sql *db, const char *name);
};

extern const struct floe_sql_ops floe_sql_sqlite_ops;
extern const struct floe_sql_ops floe_sql_pg_ops;

/*
 * The '?' placeholders of sql outside quoted strings, quoted identifiers and
 * comments: their number in *ret_n, and if out is not NULL, sql with each
 * replaced by $1, $2, ... written to out (size bytes; strlen(sql) + 5 * n + 1
 * always suffice). -ENOBUFS if out is too small, -E2BIG past 65535.
 */
int floe_sql_placeholders(const char *sql, char *out, size_t size, size_t *ret_n);
