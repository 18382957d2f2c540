/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/*
 * The registry's database seam: registry.c speaks portable SQL through these
 * few calls, and a backend (registry-sqlite.c; PostgreSQL later) implements
 * them. SQL uses '?' placeholders numbered from 1 in order; a backend whose
 * server wants $1, $2, ... rewrites them. Internal to libcerts.
 *
 * All calls return 0 or a negative errno (-EIO for a database error, whose
 * text regdb_error() returns; -EEXIST for a uniqueness violation; -EBUSY when
 * the database stayed locked past the busy timeout).
 */

struct regdb;
struct regdb_stmt;

struct regdb_ops {
        const char *scheme; /* "sqlite" */
        int (*open)(const char *location, struct regdb **ret);
        void (*close)(struct regdb *db);
        const char *(*error)(const struct regdb *db);
        /* One or more statements without parameters or results. */
        int (*exec)(struct regdb *db, const char *sql);
        /* Write transaction (SQLite: BEGIN IMMEDIATE, so no lock upgrades). */
        int (*begin)(struct regdb *db);
        int (*commit)(struct regdb *db);
        int (*rollback)(struct regdb *db);
        int (*prepare)(struct regdb *db, const char *sql, struct regdb_stmt **ret);
        void (*finalize)(struct regdb_stmt *st);
        int (*bind_text)(struct regdb_stmt *st, int idx, const char *v); /* NULL binds NULL */
        int (*bind_int64)(struct regdb_stmt *st, int idx, int64_t v);
        /* 1: a row is available, 0: done. */
        int (*step)(struct regdb_stmt *st);
        /* Columns of the current row, from 0. Text is borrowed until the next
         * step; NULL for SQL NULL. */
        const char *(*column_text)(struct regdb_stmt *st, int col);
        int64_t (*column_int64)(struct regdb_stmt *st, int col);
        bool (*column_is_null)(struct regdb_stmt *st, int col);
        /* Rows changed by the last completed INSERT/UPDATE/DELETE. */
        int64_t (*changes)(struct regdb *db);
};

extern const struct regdb_ops regdb_sqlite_ops;
