/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by registry.c and registry-claim.c; not part of the API. */

#include "floe-sql.h"
#include "registry.h"

struct registry {
        const struct floe_sql_ops *ops;
        struct floe_sql *db;
        unsigned depth; /* 1 while a transaction is open */
        bool user_tx;   /* opened by registry_begin() */
        bool savepoint; /* registry_savepoint() open */
};

/* A statement parameter; REG_T/REG_I let the compiler check each one's type. */
struct reg_arg {
        char type; /* 't' or 'i' */
        const char *t;
        int64_t i;
};

#define REG_T(v) ((struct reg_arg){.type = 't', .t = (v)})
#define REG_I(v) ((struct reg_arg){.type = 'i', .i = (v)})
#define REG_ARGS(...)                            \
        ((const struct reg_arg[]){__VA_ARGS__}), \
                (sizeof((const struct reg_arg[]){__VA_ARGS__}) / sizeof(struct reg_arg))

/* Prepares sql and binds args to its '?' in order (-EINVAL unless there are
 * exactly as many args as '?'). Text NULL binds SQL NULL. */
int reg_query_args(struct registry *reg, struct floe_sql_stmt **ret, const char *sql,
                   const struct reg_arg *args, size_t n);
/* reg_query_args + step to the end: for statements without result rows.
 * ret_changes (may be NULL): rows changed. */
int reg_exec_args(struct registry *reg, int64_t *ret_changes, const char *sql,
                  const struct reg_arg *args, size_t n);
#define reg_query(reg, ret, sql, ...)    reg_query_args(reg, ret, sql, REG_ARGS(__VA_ARGS__))
#define reg_exec(reg, changes, sql, ...) reg_exec_args(reg, changes, sql, REG_ARGS(__VA_ARGS__))
void reg_finalize(struct registry *reg, struct floe_sql_stmt *st);

/* A transaction for one operation, unless the caller has one open:
 * reg_tx_begin sets *own; reg_tx_end commits (r >= 0) or rolls back. */
int reg_tx_begin(struct registry *reg, bool *own);
int reg_tx_end(struct registry *reg, bool own, int r);

/* Copies a column into buf; -EBADMSG if it does not fit or is NULL. */
int reg_column_copy(struct registry *reg, struct floe_sql_stmt *st, int col, char *buf,
                    size_t size);
