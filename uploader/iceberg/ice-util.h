/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/* Small containers for the table operations: a set of strings (paths) and a string vector. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ice_strset {
        char **slots; /* open addressing; NULL: empty */
        size_t cap, n;
};

void ice_strset_clear(struct ice_strset *s);
/* 1 if added, 0 if it was there. The string is copied. */
int ice_strset_add(struct ice_strset *s, const char *str);
bool ice_strset_has(const struct ice_strset *s, const char *str);
bool ice_strset_remove(struct ice_strset *s, const char *str);

struct ice_strv {
        char **v;
        size_t n;
};

void ice_strv_clear(struct ice_strv *v);
int ice_strv_add(struct ice_strv *v, const char *s);
/* Sorts and drops duplicates. */
void ice_strv_sort_unique(struct ice_strv *v);
