/* SPDX-License-Identifier: Apache-2.0 */
/* The SQLite backend of the registry (floe-sql.h). */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "floe-alloc.h"
#include "floe-sql.h"

#define BUSY_TIMEOUT_MS 10000

struct floe_sql {
        sqlite3 *db;
        char error[256];
};

struct floe_sql_stmt {
        struct floe_sql *db;
        sqlite3_stmt *st;
};

static int set_error(struct floe_sql *db, int rc)
{
        const char *msg = db->db ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc);

        snprintf(db->error, sizeof(db->error), "%s", msg ? msg : "unknown error");
        switch (rc & 0xff) {
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_CONSTRAINT:
                if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
                        return -EEXIST;
                return -EINVAL;
        case SQLITE_CANTOPEN:
                return -ENOENT;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        default:
                return -EIO;
        }
}

static void db_close(struct floe_sql *db)
{
        if (!db)
                return;
        sqlite3_close_v2(db->db);
        floe_free(db);
}

/* Switching a new database to WAL takes an exclusive lock, and SQLite answers SQLITE_BUSY at
 * once, without the busy handler, to connections opening it meanwhile (processes starting
 * together on an empty catalog): they wait and try again, up to the busy timeout. */
static int set_pragmas(sqlite3 *db)
{
        static const char pragmas[] = "PRAGMA journal_mode = WAL;"
                                      "PRAGMA synchronous = FULL;"
                                      "PRAGMA foreign_keys = ON;";
        const struct timespec step = {0, 10 * 1000000};
        int rc;

        for (int waited_ms = 0;; waited_ms += 10) {
                rc = sqlite3_exec(db, pragmas, NULL, NULL, NULL);
                if ((rc & 0xff) != SQLITE_BUSY || waited_ms >= BUSY_TIMEOUT_MS)
                        return rc;
                nanosleep(&step, NULL);
        }
}

static int db_open(const char *location, char *why, size_t why_size, struct floe_sql **ret)
{
        struct floe_sql *db;
        int fd, rc, r;

        db = floe_calloc(1, sizeof(*db));
        if (!db)
                return -ENOMEM;
        /* Create the file 0600 first: SQLite would use the umask. */
        fd = open(location, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) {
                r = -errno;
                if (why && why_size > 0)
                        snprintf(why, why_size, "%s", strerror(-r));
                floe_free(db);
                return r;
        }
        close(fd);
        rc = sqlite3_open_v2(location, &db->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
                             NULL);
        if (rc == SQLITE_OK) {
                sqlite3_extended_result_codes(db->db, 1);
                sqlite3_busy_timeout(db->db, BUSY_TIMEOUT_MS);
                rc = set_pragmas(db->db);
        }
        if (rc != SQLITE_OK) {
                r = set_error(db, rc);
                if (why && why_size > 0)
                        snprintf(why, why_size, "%s", db->error);
                db_close(db);
                return r;
        }
        *ret = db;
        return 0;
}

static const char *db_error(const struct floe_sql *db)
{
        return db ? db->error : "";
}

static int db_exec(struct floe_sql *db, const char *sql)
{
        int rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);

        return rc == SQLITE_OK ? 0 : set_error(db, rc);
}

static int db_begin(struct floe_sql *db)
{
        return db_exec(db, "BEGIN IMMEDIATE");
}

static int db_commit(struct floe_sql *db)
{
        return db_exec(db, "COMMIT");
}

static int db_rollback(struct floe_sql *db)
{
        if (sqlite3_get_autocommit(db->db))
                return 0;
        return db_exec(db, "ROLLBACK");
}

static int db_prepare(struct floe_sql *db, const char *sql, struct floe_sql_stmt **ret)
{
        struct floe_sql_stmt *st;
        int rc, r;

        st = floe_calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->db = db;
        rc = sqlite3_prepare_v2(db->db, sql, -1, &st->st, NULL);
        if (rc != SQLITE_OK) {
                r = set_error(db, rc);
                floe_free(st);
                return r;
        }
        *ret = st;
        return 0;
}

static void db_finalize(struct floe_sql_stmt *st)
{
        if (!st)
                return;
        sqlite3_finalize(st->st);
        floe_free(st);
}

static int db_bind_text(struct floe_sql_stmt *st, int idx, const char *v)
{
        int rc = v ? sqlite3_bind_text(st->st, idx, v, -1, SQLITE_TRANSIENT)
                   : sqlite3_bind_null(st->st, idx);

        return rc == SQLITE_OK ? 0 : set_error(st->db, rc);
}

static int db_bind_int64(struct floe_sql_stmt *st, int idx, int64_t v)
{
        int rc = sqlite3_bind_int64(st->st, idx, v);

        return rc == SQLITE_OK ? 0 : set_error(st->db, rc);
}

static int db_step(struct floe_sql_stmt *st)
{
        int rc = sqlite3_step(st->st);

        if (rc == SQLITE_ROW)
                return 1;
        if (rc == SQLITE_DONE)
                return 0;
        return set_error(st->db, rc);
}

static const char *db_column_text(struct floe_sql_stmt *st, int col)
{
        return (const char *)sqlite3_column_text(st->st, col);
}

static int64_t db_column_int64(struct floe_sql_stmt *st, int col)
{
        return sqlite3_column_int64(st->st, col);
}

static bool db_column_is_null(struct floe_sql_stmt *st, int col)
{
        return sqlite3_column_type(st->st, col) == SQLITE_NULL;
}

static int64_t db_changes(struct floe_sql *db)
{
        return sqlite3_changes64(db->db);
}

static int db_lock(struct floe_sql *db, const char *name)
{
        (void)name;
        return sqlite3_get_autocommit(db->db) ? -EINVAL : 0; /* BEGIN IMMEDIATE has it */
}

const struct floe_sql_ops floe_sql_sqlite_ops = {
        .scheme = "sqlite",
        .open = db_open,
        .close = db_close,
        .error = db_error,
        .exec = db_exec,
        .begin = db_begin,
        .commit = db_commit,
        .rollback = db_rollback,
        .prepare = db_prepare,
        .finalize = db_finalize,
        .bind_text = db_bind_text,
        .bind_int64 = db_bind_int64,
        .step = db_step,
        .column_text = db_column_text,
        .column_int64 = db_column_int64,
        .column_is_null = db_column_is_null,
        .changes = db_changes,
        .lock = db_lock,
};
