/* SPDX-License-Identifier: Apache-2.0 */
/* The PostgreSQL backend of the registry (floe-sql.h), with libpq. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "floe-alloc.h"
#include "floe-sql.h"
#include "registry.h"

/* Defaults the location overrides. The keepalives and tcp_user_timeout notice a
 * peer gone without a word (a dropped network) in about a minute, not after
 * TCP's quarter of an hour of retransmissions. */
static const char *const conn_defaults[][2] = {
        {"connect_timeout", "10"},     {"fallback_application_name", "floe"},
        {"client_encoding", "UTF8"},   {"keepalives_idle", "30"},
        {"keepalives_interval", "10"}, {"keepalives_count", "3"},
        {"tcp_user_timeout", "30000"},
};
/* Like SQLite's busy timeout: a row lock held longer fails with -EBUSY instead of
 * stalling a daemon's event loop. Set only where the role or URI set none. */
#define SESSION_SETUP                                     \
        "SELECT set_config('lock_timeout', '10s', false)" \
        " WHERE current_setting('lock_timeout') IN ('0', '0ms')"

/* Statements prepared on the server once per connection (PQprepare), then run
 * with PQexecPrepared: on the token-burn path this measured about 3x faster
 * than PQexecParams, which parses and plans every time. */
#define PREPARED_MAX 64

struct floe_sql {
        PGconn *conn;
        char *prepared[PREPARED_MAX]; /* SQL of the statements named floe_reg_<i> */
        size_t n_prepared;
        char *password; /* of the URI, scrubbed from every message */
        bool in_tx;     /* between begin and commit/rollback */
        bool lost;      /* the connection broke inside the transaction */
        int64_t changes;
        char error[512];
};

struct floe_sql_stmt {
        struct floe_sql *db;
        char *sql; /* '?' rewritten to $n */
        int nparams;
        char **values; /* text form; NULL for SQL NULL */
        PGresult *res;
        int row, nrows;
        int failed; /* the error of a failed execution, returned again */
};

/* -- messages --------------------------------------------------------------------------- */

/* One line: newlines and tabs become spaces, runs collapsed, ends trimmed. */
static void one_line(char *s)
{
        char *w = s;
        bool space = true;

        for (const char *p = s; *p; p++) {
                if (*p == '\n' || *p == '\t' || *p == '\r' || *p == ' ') {
                        if (!space)
                                *w++ = ' ';
                        space = true;
                        continue;
                }
                *w++ = *p;
                space = false;
        }
        while (w > s && w[-1] == ' ')
                w--;
        *w = '\0';
}

/* Replaces every occurrence of secret (slen bytes) in buf (a message of struct
 * floe_sql) with "***". */
static void scrub(char *buf, size_t size, const char *secret, size_t slen)
{
        char out[sizeof(((struct floe_sql *)NULL)->error)];
        size_t w = 0;

        if (slen == 0 || !memmem(buf, strlen(buf), secret, slen))
                return;
        for (const char *p = buf; *p && w + 1 < sizeof(out);) {
                if (strncmp(p, secret, slen) == 0) {
                        for (int k = 0; k < 3 && w + 1 < sizeof(out); k++)
                                out[w++] = '*';
                        p += slen;
                } else {
                        out[w++] = *p++;
                }
        }
        out[w] = '\0';
        snprintf(buf, size, "%s", out);
}

static void set_message(struct floe_sql *db, const char *msg, const char *state)
{
        if (state)
                snprintf(db->error, sizeof(db->error), "%s (SQLSTATE %s)",
                         msg && *msg ? msg : "unknown error", state);
        else
                snprintf(db->error, sizeof(db->error), "%s", msg && *msg ? msg : "unknown error");
        one_line(db->error);
        if (db->password)
                scrub(db->error, sizeof(db->error), db->password, strlen(db->password));
}

/* The connection failed or broke: its message, -EIO. */
static int conn_error(struct floe_sql *db)
{
        set_message(db, PQerrorMessage(db->conn), NULL);
        if (db->in_tx)
                db->lost = true;
        return -EIO;
}

/* A failed statement: its message and the errno for its SQLSTATE. */
static int result_error(struct floe_sql *db, const PGresult *res)
{
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;

        if (PQstatus(db->conn) != CONNECTION_OK)
                return conn_error(db);
        if (!res)
                set_message(db, PQerrorMessage(db->conn), NULL);
        else
                set_message(db, msg ? msg : PQresultErrorMessage(res), state);
        if (!res)
                return -ENOMEM; /* libpq could not allocate a result */
        if (!state)
                return -EIO;
        if (strcmp(state, "23505") == 0) /* unique_violation */
                return -EEXIST;
        if (strcmp(state, "40001") == 0 || /* serialization_failure */
            strcmp(state, "40P01") == 0 || /* deadlock_detected */
            strcmp(state, "55P03") == 0)   /* lock_not_available (lock_timeout) */
                return -EBUSY;
        if (strncmp(state, "23", 2) == 0) /* other integrity constraints */
                return -EINVAL;
        if (strcmp(state, "42501") == 0) /* insufficient_privilege */
                return -EACCES;
        if (strcmp(state, "25006") == 0) /* read_only_sql_transaction */
                return -EROFS;
        if (strcmp(state, "53200") == 0) /* out_of_memory */
                return -ENOMEM;
        return -EIO;
}

static void ignore_notice(void *userdata, const PGresult *res)
{
        (void)userdata;
        (void)res; /* library code does not log: notices (e.g. "already exists") are dropped */
}

/* -- connection ------------------------------------------------------------------------- */

/* Per-session settings, again after every reconnection. */
static int session_setup(struct floe_sql *db)
{
        PGresult *res = PQexec(db->conn, SESSION_SETUP);
        int r = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : result_error(db, res);

        PQclear(res);
        return r;
}

static void forget_prepared(struct floe_sql *db)
{
        for (size_t i = 0; i < db->n_prepared; i++)
                floe_free(db->prepared[i]);
        db->n_prepared = 0;
}

/* Outside a transaction: a connection that broke since the last call is made
 * again (PQreset). Inside one: -EIO once it broke, so the caller rolls back. */
static int ready(struct floe_sql *db)
{
        if (db->in_tx)
                return db->lost ? -EIO : 0;
        /* A server that shut down or ended the session said so before closing:
         * reading what is there notices it without sending anything. */
        if (PQstatus(db->conn) == CONNECTION_OK)
                (void)PQconsumeInput(db->conn);
        if (PQstatus(db->conn) == CONNECTION_OK)
                return 0;
        forget_prepared(db); /* they died with the server's session */
        PQreset(db->conn);
        if (PQstatus(db->conn) != CONNECTION_OK)
                return conn_error(db);
        return session_setup(db);
}

static void db_close(struct floe_sql *db)
{
        if (!db)
                return;
        PQfinish(db->conn);
        forget_prepared(db);
        if (db->password)
                explicit_bzero(db->password, strlen(db->password));
        floe_free(db->password);
        floe_free(db);
}

static bool is_pg_uri(const char *s)
{
        return strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
}

/* What libpq gets: a URI as it is, or the key=value words after "postgresql:"
 * or "postgres:"; NULL for anything else. */
static const char *conninfo_of(const char *location)
{
        const char *p;

        if (is_pg_uri(location))
                return location;
        if (strncmp(location, "postgresql:", 11) == 0)
                p = location + 11;
        else if (strncmp(location, "postgres:", 9) == 0)
                p = location + 9;
        else
                return NULL;
        p += strspn(p, " \t");
        return strchr(p, '=') ? p : NULL;
}

typedef void (*piece_fn)(const char *s, size_t len, bool secret, void *userdata);
static void location_pieces(const char *location, piece_fn fn, void *userdata);

static void scrub_piece(const char *s, size_t len, bool secret, void *userdata)
{
        struct floe_sql *db = userdata;

        if (secret)
                scrub(db->error, sizeof(db->error), s, len);
}

/* Checks the conninfo and keeps its password (to scrub it from messages). */
static int parse_location(struct floe_sql *db, const char *conninfo, const char *location)
{
        PQconninfoOption *opts;
        char *err = NULL;
        int r = 0;

        opts = PQconninfoParse(conninfo, &err);
        if (!opts) {
                /* libpq may quote pieces of it: never its secrets */
                set_message(db, err ? err : "out of memory", NULL);
                location_pieces(location, scrub_piece, db);
                PQfreemem(err);
                return err ? -EINVAL : -ENOMEM;
        }
        for (PQconninfoOption *o = opts; o->keyword && r >= 0; o++)
                if (strcmp(o->keyword, "password") == 0 && o->val && *o->val) {
                        db->password = floe_strdup(o->val);
                        r = db->password ? 0 : -ENOMEM;
                }
        PQconninfoFree(opts);
        return r;
}

static int db_open(const char *location, char *why, size_t why_size, struct floe_sql **ret)
{
        const char *conninfo = conninfo_of(location);
        const char *keys[ELEMENTSOF(conn_defaults) + 2], *values[ELEMENTSOF(conn_defaults) + 2];
        size_t n;
        struct floe_sql *db;
        int r;

        db = floe_calloc(1, sizeof(*db));
        if (!db)
                return -ENOMEM;
        if (!conninfo) {
                set_message(db, "not a postgresql:// URI or \"postgresql: key=value ...\"", NULL);
                r = -EINVAL;
        } else {
                r = parse_location(db, conninfo, location);
        }
        if (r >= 0) {
                /* Defaults first: what the location says comes later and wins. */
                for (n = 0; n < ELEMENTSOF(conn_defaults); n++) {
                        keys[n] = conn_defaults[n][0];
                        values[n] = conn_defaults[n][1];
                }
                keys[n] = "dbname"; /* expanded: a URI or key=value words */
                values[n++] = conninfo;
                keys[n] = values[n] = NULL;
                db->conn = PQconnectdbParams(keys, values, 1);
                if (!db->conn) {
                        set_message(db, "out of memory", NULL);
                        r = -ENOMEM;
                } else if (PQstatus(db->conn) != CONNECTION_OK) {
                        r = conn_error(db);
                }
        }
        if (r >= 0) {
                PQsetNoticeReceiver(db->conn, ignore_notice, NULL);
                r = session_setup(db);
        }
        if (r < 0) {
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

/* A command without results (PQexec; several statements allowed). */
static int command(struct floe_sql *db, const char *sql, PGresult **ret)
{
        PGresult *res = PQexec(db->conn, sql);
        int r;

        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
                r = result_error(db, res);
                PQclear(res);
                return r;
        }
        if (ret)
                *ret = res;
        else
                PQclear(res);
        return 0;
}

static int db_exec(struct floe_sql *db, const char *sql)
{
        int r = ready(db);

        return r < 0 ? r : command(db, sql, NULL);
}

static int db_begin(struct floe_sql *db)
{
        static const char begin[] = "BEGIN ISOLATION LEVEL READ COMMITTED";
        int r;

        if (db->in_tx)
                return -EALREADY;
        r = ready(db);
        if (r >= 0) {
                r = command(db, begin, NULL);
                /* Broken without notice (no FIN): BEGIN changed nothing, so try once
                 * more on a new connection. */
                if (r == -EIO && PQstatus(db->conn) != CONNECTION_OK) {
                        r = ready(db);
                        if (r >= 0)
                                r = command(db, begin, NULL);
                }
        }
        if (r < 0)
                return r;
        db->in_tx = true;
        db->lost = false;
        return 0;
}

static int db_commit(struct floe_sql *db)
{
        PGresult *res = NULL;
        int r;

        if (!db->in_tx)
                return -ENOTCONN;
        r = db->lost ? -EIO : command(db, "COMMIT", &res);
        /* COMMIT of a transaction that an error aborted rolls back and says so. */
        if (r >= 0 && strcmp(PQcmdStatus(res), "COMMIT") != 0) {
                set_message(db, "the transaction was aborted by an earlier error; rolled back",
                            NULL);
                r = -EIO;
        }
        PQclear(res);
        db->in_tx = false;
        return r;
}

static int db_rollback(struct floe_sql *db)
{
        PGTransactionStatusType ts = PQtransactionStatus(db->conn);

        db->in_tx = false;
        db->lost = false;
        /* A lost connection took its transaction with it. */
        if (PQstatus(db->conn) != CONNECTION_OK || (ts != PQTRANS_INTRANS && ts != PQTRANS_INERROR))
                return 0;
        return command(db, "ROLLBACK", NULL);
}

/* -- statements ------------------------------------------------------------------------- */

static void db_finalize(struct floe_sql_stmt *st)
{
        if (!st)
                return;
        PQclear(st->res);
        for (int i = 0; i < st->nparams && st->values; i++)
                floe_free(st->values[i]);
        floe_free(st->values);
        floe_free(st->sql);
        floe_free(st);
}

static int db_prepare(struct floe_sql *db, const char *sql, struct floe_sql_stmt **ret)
{
        struct floe_sql_stmt *st;
        size_t n = 0, size;
        int r;

        r = floe_sql_placeholders(sql, NULL, 0, &n);
        if (r < 0)
                return r;
        st = floe_calloc(1, sizeof(*st));
        if (!st)
                return -ENOMEM;
        st->db = db;
        st->nparams = (int)n;
        st->row = -1;
        size = strlen(sql) + 5 * n + 1;
        st->sql = floe_malloc(size);
        st->values = n > 0 ? floe_calloc(n, sizeof(char *)) : NULL;
        if (!st->sql || (n > 0 && !st->values))
                r = -ENOMEM;
        else
                r = floe_sql_placeholders(sql, st->sql, size, &n);
        if (r < 0) {
                db_finalize(st);
                return r;
        }
        *ret = st;
        return 0;
}

static int bind(struct floe_sql_stmt *st, int idx, const char *v)
{
        char *copy = NULL;

        if (idx < 1 || idx > st->nparams || st->res || st->failed)
                return -EINVAL;
        if (v) {
                copy = floe_strdup(v);
                if (!copy)
                        return -ENOMEM;
        }
        floe_free(st->values[idx - 1]);
        st->values[idx - 1] = copy;
        return 0;
}

static int db_bind_text(struct floe_sql_stmt *st, int idx, const char *v)
{
        return bind(st, idx, v);
}

static int db_bind_int64(struct floe_sql_stmt *st, int idx, int64_t v)
{
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return bind(st, idx, buf);
}

static int64_t parse_int64(const char *s)
{
        char *end;
        long long v;

        if (!s || !*s)
                return 0;
        errno = 0;
        v = strtoll(s, &end, 10);
        return errno == 0 && *end == '\0' ? (int64_t)v : 0;
}

/* The index of st's prepared statement, preparing it on first use; -ENOSPC
 * when the cache is full (then run it unprepared). */
static int prepared(struct floe_sql_stmt *st, char name[static 24])
{
        struct floe_sql *db = st->db;
        PGresult *res;
        size_t i;
        int r;

        for (i = 0; i < db->n_prepared; i++)
                if (strcmp(db->prepared[i], st->sql) == 0)
                        break;
        snprintf(name, 24, "floe_reg_%zu", i);
        if (i < db->n_prepared)
                return (int)i;
        if (i == PREPARED_MAX)
                return -ENOSPC;
        db->prepared[i] = floe_strdup(st->sql);
        if (!db->prepared[i])
                return -ENOMEM;
        res = PQprepare(db->conn, name, st->sql, st->nparams, NULL);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                db->n_prepared++;
                r = (int)i;
        } else {
                r = result_error(db, res);
                floe_free(db->prepared[i]);
                db->prepared[i] = NULL;
        }
        PQclear(res);
        return r;
}

/* Runs the statement: text parameters and results, one round trip once prepared. */
static int execute(struct floe_sql_stmt *st)
{
        const char *const *values = (const char *const *)st->values;
        struct floe_sql *db = st->db;
        ExecStatusType status;
        char name[24];
        int r;

        r = ready(db);
        if (r >= 0)
                r = prepared(st, name);
        if (r >= 0)
                st->res = PQexecPrepared(db->conn, name, st->nparams, values, NULL, NULL, 0);
        else if (r == -ENOSPC)
                st->res = PQexecParams(db->conn, st->sql, st->nparams, NULL, values, NULL, NULL, 0);
        else
                return r;
        status = PQresultStatus(st->res);
        if (status == PGRES_TUPLES_OK) {
                st->nrows = PQntuples(st->res);
                return 0;
        }
        if (status == PGRES_COMMAND_OK) {
                db->changes = parse_int64(PQcmdTuples(st->res));
                return 0;
        }
        r = result_error(db, st->res);
        PQclear(st->res);
        st->res = NULL;
        return r;
}

static int db_step(struct floe_sql_stmt *st)
{
        int r;

        if (st->failed)
                return st->failed;
        if (!st->res) {
                r = execute(st);
                if (r < 0) {
                        st->failed = r;
                        return r;
                }
        }
        if (st->row < st->nrows)
                st->row++;
        return st->row < st->nrows ? 1 : 0;
}

static bool have_value(struct floe_sql_stmt *st, int col)
{
        return st->res && st->row >= 0 && st->row < st->nrows && col >= 0 &&
               col < PQnfields(st->res) && !PQgetisnull(st->res, st->row, col);
}

static const char *db_column_text(struct floe_sql_stmt *st, int col)
{
        return have_value(st, col) ? PQgetvalue(st->res, st->row, col) : NULL;
}

static int64_t db_column_int64(struct floe_sql_stmt *st, int col)
{
        return parse_int64(db_column_text(st, col));
}

static bool db_column_is_null(struct floe_sql_stmt *st, int col)
{
        return !have_value(st, col);
}

static int64_t db_changes(struct floe_sql *db)
{
        return db->changes;
}

/* -- SQL and URIs ----------------------------------------------------------------------- */

static int put(char *out, size_t size, size_t *w, const char *s, size_t len)
{
        if (!out)
                return 0;
        if (*w + len >= size)
                return -ENOBUFS;
        memcpy(out + *w, s, len);
        *w += len;
        out[*w] = '\0';
        return 0;
}

int floe_sql_placeholders(const char *sql, char *out, size_t size, size_t *ret_n)
{
        enum { CODE, QUOTED, LINE_COMMENT, BLOCK_COMMENT } state = CODE;
        char quote = 0, num[8];
        size_t n = 0, w = 0;
        int r = put(out, size, &w, "", 0);

        for (const char *p = sql; *p && r >= 0; p++) {
                size_t len = 1;

                switch (state) {
                case QUOTED:
                        if (*p == quote)
                                state = CODE; /* '' and "" reopen at once: escapes work */
                        break;
                case LINE_COMMENT:
                        if (*p == '\n')
                                state = CODE;
                        break;
                case BLOCK_COMMENT:
                        if (p[0] == '*' && p[1] == '/') {
                                state = CODE;
                                len = 2;
                        }
                        break;
                case CODE:
                        if (*p == '\'' || *p == '"') {
                                state = QUOTED;
                                quote = *p;
                        } else if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*')) {
                                state = *p == '-' ? LINE_COMMENT : BLOCK_COMMENT;
                                len = 2;
                        } else if (*p == '?') {
                                if (++n > 65535)
                                        return -E2BIG;
                                snprintf(num, sizeof(num), "$%zu", n);
                                r = put(out, size, &w, num, strlen(num));
                                continue;
                        }
                        break;
                }
                r = put(out, size, &w, p, len);
                p += len - 1;
        }
        if (r < 0)
                return r;
        *ret_n = n;
        return 0;
}

static int hex_digit(char c)
{
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* A URI parameter key (percent-decoded, as libpq does) is password or sslpassword. */
static bool secret_key(const char *k, size_t len)
{
        char key[16];
        size_t n = 0;

        for (size_t i = 0; i < len; i++) {
                int hi = i + 2 < len && k[i] == '%' ? hex_digit(k[i + 1]) : -1;
                int lo = hi >= 0 ? hex_digit(k[i + 2]) : -1;

                if (n + 1 >= sizeof(key))
                        return false;
                if (lo >= 0) {
                        key[n++] = (char)(hi * 16 + lo);
                        i += 2;
                } else {
                        key[n++] = k[i];
                }
        }
        key[n] = '\0';
        return strcmp(key, "password") == 0 || strcmp(key, "sslpassword") == 0;
}

/* Calls fn for consecutive pieces of a PostgreSQL URI, flagging the secret ones:
 * the password of user:password@ (up to the last '@' before the path, so
 * libpq's reading and a sloppy one are both covered) and the values of
 * password= and sslpassword=. */
static void uri_pieces(const char *uri, piece_fn fn, void *userdata)
{
        const char *auth = strstr(uri, "://") + 3, *at, *colon, *p = uri;
        size_t len;

        len = strcspn(auth, "/");
        at = memrchr(auth, '@', len);
        colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
        if (colon) {
                fn(uri, (size_t)(colon + 1 - uri), false, userdata);
                fn(colon + 1, (size_t)(at - colon - 1), true, userdata);
                p = at;
        }
        len = strcspn(p, "?");
        fn(p, len, false, userdata);
        p += len;
        while (*p == '?' || *p == '&') {
                size_t key = strcspn(p + 1, "=&");

                fn(p, key + 1, false, userdata);
                p += key + 1;
                if (*p != '=')
                        continue;
                len = strcspn(p + 1, "&");
                fn(p, 1, false, userdata);
                fn(p + 1, len, secret_key(p - key, key), userdata);
                p += len + 1;
        }
}

/* The same for libpq's key=value words (values bare or quoted with '...' and
 * backslash escapes): the values of password and sslpassword are secret. */
static void kv_pieces(const char *s, piece_fn fn, void *userdata)
{
        const char *p = s;

        while (*p) {
                const char *key = p + strspn(p, " \t\n\r\f\v"), *v;
                size_t klen = strcspn(key, " \t\n\r\f\v=");

                v = key + klen;
                v += strspn(v, " \t\n\r\f\v");
                if (*v != '=') {
                        fn(p, strlen(p), false, userdata); /* malformed: libpq says so */
                        return;
                }
                v++;
                v += strspn(v, " \t\n\r\f\v");
                fn(p, (size_t)(v - p), false, userdata);
                p = v;
                if (*p == '\'') {
                        for (p++; *p && *p != '\''; p++)
                                if (*p == '\\' && p[1])
                                        p++;
                        if (*p)
                                p++;
                } else {
                        for (; *p && !strchr(" \t\n\r\f\v", *p); p++)
                                if (*p == '\\' && p[1])
                                        p++;
                }
                fn(v, (size_t)(p - v), secret_key(key, klen), userdata);
        }
}

static void location_pieces(const char *location, piece_fn fn, void *userdata)
{
        const char *conninfo = conninfo_of(location);

        if (!conninfo) {
                fn(location, strlen(location), false, userdata);
        } else if (conninfo == location) {
                uri_pieces(location, fn, userdata);
        } else {
                fn(location, (size_t)(conninfo - location), false, userdata);
                kv_pieces(conninfo, fn, userdata);
        }
}

struct text {
        char *buf;
        size_t size, len;
};

static void redact_piece(const char *s, size_t len, bool secret, void *userdata)
{
        struct text *t = userdata;

        if (secret) {
                s = "***";
                len = 3;
        }
        if (len > t->size - 1 - t->len)
                len = t->size - 1 - t->len; /* truncated, never overrun */
        memcpy(t->buf + t->len, s, len);
        t->len += len;
        t->buf[t->len] = '\0';
}

const char *registry_location_redact(const char *location, char *buf, size_t size)
{
        struct text t = {buf, size, 0};

        if (size == 0)
                return "";
        buf[0] = '\0';
        if (!location)
                return buf;
        location_pieces(location, redact_piece, &t);
        return buf;
}

static int db_lock(struct floe_sql *db, const char *name)
{
        uint64_t key = 0xcbf29ce484222325ULL; /* FNV-1a: the same key in every process */
        char sql[64];

        if (!db->in_tx)
                return -EINVAL;
        if (db->lost)
                return -EIO;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
                key = (key ^ *p) * 0x100000001b3ULL;
        snprintf(sql, sizeof(sql), "SELECT pg_advisory_xact_lock(%" PRId64 ")", (int64_t)key);
        return command(db, sql, NULL);
}

const struct floe_sql_ops floe_sql_pg_ops = {
        .scheme = "postgresql",
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
