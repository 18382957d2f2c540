/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Storage-class tiers on S3 (docs/storage.md "Tiers"): bucket lifecycle rules that move objects
 * under a prefix to colder storage classes as they age, installed only when the bucket's
 * configuration differs, and for servers without lifecycle support the same transitions done
 * by hand: CopyObject of each object onto itself with the new x-amz-storage-class.
 *
 * Rules are the caller's when their ID starts with its owned prefix ("floe-" by default): those
 * are replaced by the caller's rules; every other rule of the bucket is kept as the server sent
 * it. Prefixes are store keys ("floe/events/data/"): the store's own prefix is added.
 *
 * S3 only: -EOPNOTSUPP on file:// stores, and where the server has no lifecycle API (501
 * NotImplemented, 405). Other errors as store.h (lake_store_error() says what failed).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

#define LAKE_LIFECYCLE_TRANSITIONS 8
#define LAKE_LIFECYCLE_ID_MAX      255 /* bytes, as S3 allows */
#define LAKE_LIFECYCLE_CLASS_MAX   64
#define LAKE_LIFECYCLE_OWNED       "floe-"

struct lake_lifecycle_transition {
        uint32_t days;             /* object age in days, >= 1, ascending within a rule */
        const char *storage_class; /* "STANDARD_IA", "GLACIER", ...: A-Z 0-9 _ */
};

struct lake_lifecycle_rule {
        const char *id;     /* starts with the owned prefix */
        const char *prefix; /* store key prefix the rule covers ("floe/events/data/") */
        struct lake_lifecycle_transition transitions[LAKE_LIFECYCLE_TRANSITIONS];
        size_t n_transitions;
        uint32_t abort_multipart_days; /* AbortIncompleteMultipartUpload after N days; 0: none */
};

struct lake_lifecycle_result {
        bool changed;   /* the configuration was written (PUT, or DELETE when nothing is left) */
        size_t foreign; /* rules kept that are not the caller's */
        size_t ours;    /* the caller's rules now installed */
};

/*
 * Makes the caller's rules (IDs starting with owned, NULL: "floe-") exactly rules[0..n): GET
 * ?lifecycle, compare, and PUT (with Content-MD5) only if they differ; n == 0 removes them. A
 * bucket left without any rule gets DELETE ?lifecycle. -EINVAL for a rule that is malformed
 * (ID not starting with owned or longer than 255 bytes, no transition and no abort, days not
 * ascending, a bad class), -EOPNOTSUPP when the server has no lifecycle API.
 */
int lake_lifecycle_install(struct lake_store *s, const char *owned,
                           const struct lake_lifecycle_rule *rules, size_t n,
                           struct lake_lifecycle_result *ret);

/* The storage class of an existing object (HEAD; "STANDARD" when the server names none). */
int lake_store_get_class(struct lake_store *s, const char *key, char *buf, size_t size);

/*
 * The transitions of rules done by hand, where the server cannot: for every object under each
 * rule's prefix, its time (time_fn, or its LastModified when time_fn is NULL) gives its age in
 * days of day_ms; the last transition it has reached names the class it should have; an object
 * in STANDARD or in an earlier class of the rule is copied onto itself with that class
 * (lake_store_set_class: the metadata is kept). Objects in a class the rule does not name are
 * left alone, and none is moved back to a warmer class. Idempotent.
 * time_fn returns 0, or 1 to leave the object alone, or a negative errno to stop.
 */
typedef int (*lake_lifecycle_time_fn)(void *ud, const char *key, int64_t mtime_ms,
                                      int64_t *ret_time_ms);

struct lake_lifecycle_apply_result {
        size_t objects; /* listed under the prefixes */
        size_t due;     /* old enough for some transition */
        size_t changed; /* copied to a new class */
};

int lake_lifecycle_apply(struct lake_store *s, const struct lake_lifecycle_rule *rules, size_t n,
                         int64_t now_ms, int64_t day_ms, lake_lifecycle_time_fn time_fn, void *ud,
                         struct lake_lifecycle_apply_result *ret);

/* ---- the pure parts (store-lifecycle-xml.c; unit tests) ---- */

/* One rule of a bucket's configuration that is the caller's, as read. */
struct lake_lifecycle_seen {
        char id[LAKE_LIFECYCLE_ID_MAX + 1];
        char prefix[2048];
        bool enabled;
        bool other; /* something floe does not write (Expiration, tags, a date, ...) */
        struct {
                uint32_t days;
                char storage_class[LAKE_LIFECYCLE_CLASS_MAX + 1];
        } transitions[LAKE_LIFECYCLE_TRANSITIONS];
        size_t n_transitions;
        uint32_t abort_multipart_days;
};

struct lake_lifecycle_config {
        char *keep; /* the other rules, "<Rule>...</Rule>" each as the server sent them */
        size_t keep_len, n_keep;
        struct lake_lifecycle_seen *ours;
        size_t n_ours;
};

/* Reads a <LifecycleConfiguration>: the caller's rules (ID starting with owned) parsed, the
 * others kept verbatim. -EBADMSG for malformed XML or another root, -E2BIG past 1000 rules. */
int lake_lifecycle_parse(const char *xml, size_t len, const char *owned,
                         struct lake_lifecycle_config *ret);
void lake_lifecycle_config_clear(struct lake_lifecycle_config *c);

/* Checks rules against owned (see lake_lifecycle_install): 0 or -EINVAL. */
int lake_lifecycle_check(const char *owned, const struct lake_lifecycle_rule *rules, size_t n);

/* Whether the caller's rules as read equal rules (in any order; transitions in any order),
 * each rule's prefix taken under key_prefix ("" or "a/b": the store's prefix). */
bool lake_lifecycle_same(const struct lake_lifecycle_config *c,
                         const struct lake_lifecycle_rule *rules, size_t n, const char *key_prefix);

/* The document to PUT: the kept rules, then rules (prefixes under key_prefix), XML-escaped.
 * *ret (floe_malloc, NUL-terminated). */
int lake_lifecycle_xml(const struct lake_lifecycle_config *keep,
                       const struct lake_lifecycle_rule *rules, size_t n, const char *key_prefix,
                       char **ret, size_t *ret_len);
