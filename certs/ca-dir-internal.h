/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Shared by the ca-dir*.c files; not part of the API. */

#include <limits.h>

#include "ca-dir.h"

struct ca_dir {
        char path[PATH_MAX];
        struct ca_settings settings;
        struct registry *reg;
};

/* "a/b" (c NULL) or "a/b/c" into buf; -ENAMETOOLONG. */
int ca_path(char *buf, size_t size, const char *a, const char *b, const char *c);
/* An issuer from role_dir/ca.key and role_dir/trust.pem (the CA first). */
int ca_issuer_load_from(const char *role_dir, enum ca_role role, struct ca_issuer **ret);
/* rm -r of a directory tree this process made (no symlinks followed). */
void ca_remove_tree(const char *path);

/* Generations of a role's CA (ca-dir-gen.c; ca-dir.h explains them). */
#define CA_PEM_MAX (4 * 1024 * 1024)

struct ca_gen {
        unsigned number;
        X509 *cert;
        bool candidate; /* earlier generation: unexpired, unrevoked CA certificate */
        bool live;      /* the current one, or a candidate that issued unexpired certificates */
};

/* v[0] is the current CA; earlier generations follow, newest first. */
struct ca_gens {
        struct ca_gen v[CA_GENERATIONS_MAX + 1];
        size_t n;
        unsigned max_number;
};

/* The current CA (v[0]) and the earlier generations in DIR/<role>/gen-N, newest
 * first; with_live: which are live at now (a registry scan). */
int ca_gens_load(struct ca_dir *d, enum ca_role role, int64_t now, bool with_live,
                 struct ca_gens *g);
void ca_gens_clear(struct ca_gens *g);
/* DIR/<role>, and rdir/gen-N. */
int ca_role_dir(const struct ca_dir *d, enum ca_role role, char *buf, size_t size);
int ca_gen_dir(const char *rdir, unsigned number, char *buf, size_t size);
