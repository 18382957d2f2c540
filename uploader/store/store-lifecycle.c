/* SPDX-License-Identifier: Apache-2.0 */
/* Storage-class tiers on S3: bucket lifecycle rules installed when they differ, and the same
 * transitions by CopyObject where the server has no lifecycle (docs/storage.md "Tiers"). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "floe-alloc.h"
#include "s3-internal.h"
#include "store-lifecycle.h"

#define LIFECYCLE_MAX (1u << 20)
#define INSTALL_TRIES 3 /* PUT, then read back: another writer may have replaced it meanwhile */

static int need_s3(struct lake_store *s, const char *op)
{
        s->error[0] = '\0';
        if (s->be != &store_s3_backend)
                return store_fail(s, -EOPNOTSUPP, "%s: storage classes and lifecycle are S3's", op);
        return 0;
}

/* Content-MD5: the base64 of the body's MD5 (S3 requires it on PutBucketLifecycle). */
static int content_md5(const void *data, size_t len, char *out, size_t size)
{
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;

        if (size < 25 || !EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) || mdlen != 16)
                return -EIO;
        EVP_EncodeBlock((unsigned char *)out, md, 16);
        return 0;
}

/* The bucket's configuration; an absent one is empty. */
static int get_config(struct lake_store *s, const char *owned, struct lake_lifecycle_config *ret,
                      bool *ret_exists)
{
        struct s3 *c = S3(s);
        struct s3_buf b = {.max = LIFECYCLE_MAX};
        struct s3_request q = {
                .op = "GetBucketLifecycle", .method = "GET", .query = "lifecycle=", .buf = &b};
        int r;

        r = s3_perform(s, &q);
        if (r == -ENOENT && strcmp(q.code, "NoSuchLifecycleConfiguration") == 0) {
                s->error[0] = '\0';
                *ret = (struct lake_lifecycle_config){0};
                *ret_exists = false;
                s3_buf_free(&b);
                return 0;
        }
        if (r < 0 && (r == -EOPNOTSUPP || strcmp(q.code, "NotImplemented") == 0))
                r = -EOPNOTSUPP;
        if (r == 0) {
                r = lake_lifecycle_parse((const char *)b.data, b.len, owned, ret);
                if (r < 0)
                        store_fail(s, r, "GetBucketLifecycle %s: %s", c->bucket,
                                   r == -E2BIG ? "more than 1000 rules" : "malformed answer");
                else
                        *ret_exists = true;
        }
        s3_buf_free(&b);
        return r;
}

static int put_config(struct lake_store *s, const char *body, size_t len)
{
        struct s3_request q = {.op = "PutBucketLifecycle",
                               .method = "PUT",
                               .query = "lifecycle=",
                               .body = body,
                               .body_len = len};
        char md5[80], line[120];
        int r;

        r = content_md5(body, len, md5, sizeof(md5));
        if (r < 0)
                return store_fail(s, r, "PutBucketLifecycle %s: no MD5", S3(s)->bucket);
        snprintf(line, sizeof(line), "Content-MD5: %s", md5);
        q.headers[0] = line;
        q.headers[1] = "Content-Type: application/xml";
        r = s3_perform(s, &q);
        if (r < 0 && strcmp(q.code, "NotImplemented") == 0)
                r = -EOPNOTSUPP;
        return r;
}

static int delete_config(struct lake_store *s)
{
        struct s3_request q = {
                .op = "DeleteBucketLifecycle", .method = "DELETE", .query = "lifecycle="};
        int r = s3_perform(s, &q);

        if (r == -ENOENT) {
                s->error[0] = '\0';
                return 0;
        }
        return r;
}

int lake_lifecycle_install(struct lake_store *s, const char *owned,
                           const struct lake_lifecycle_rule *rules, size_t n,
                           struct lake_lifecycle_result *ret)
{
        struct lake_lifecycle_result res = {0};
        int r;

        r = need_s3(s, "PutBucketLifecycle");
        if (r < 0)
                return r;
        if (!owned)
                owned = LAKE_LIFECYCLE_OWNED;
        if (lake_lifecycle_check(owned, rules, n) < 0)
                return store_fail(s, -EINVAL, "PutBucketLifecycle %s: invalid rules",
                                  S3(s)->bucket);
        for (int attempt = 0;; attempt++) {
                struct lake_lifecycle_config cur;
                _cleanup_free_ char *xml = NULL;
                bool exists = false, same;
                size_t len = 0;

                r = get_config(s, owned, &cur, &exists);
                if (r < 0)
                        return r;
                res.foreign = cur.n_keep;
                res.ours = n;
                same = lake_lifecycle_same(&cur, rules, n, S3(s)->prefix);
                if (same || attempt == INSTALL_TRIES) {
                        lake_lifecycle_config_clear(&cur);
                        if (same)
                                break;
                        return store_fail(s, -EBUSY,
                                          "PutBucketLifecycle %s: the configuration keeps "
                                          "changing under us",
                                          S3(s)->bucket);
                }
                if (cur.n_keep == 0 && n == 0) {
                        r = exists ? delete_config(s) : 0;
                } else {
                        r = lake_lifecycle_xml(&cur, rules, n, S3(s)->prefix, &xml, &len);
                        if (r == 0)
                                r = put_config(s, xml, len);
                }
                lake_lifecycle_config_clear(&cur);
                if (r < 0)
                        return r;
                res.changed = true; /* read back on the next round */
        }
        if (ret)
                *ret = res;
        return 0;
}

int lake_store_get_class(struct lake_store *s, const char *key, char *buf, size_t size)
{
        char fkey[2048];
        struct s3_request q;
        int r;

        r = need_s3(s, "HEAD");
        if (r < 0)
                return r;
        if (lake_store_key_valid(key) < 0)
                return store_fail(s, -EINVAL, "HEAD: invalid key \"%.200s\"", key ? key : "");
        if (S3(s)->prefix[0])
                snprintf(fkey, sizeof(fkey), "%s/%s", S3(s)->prefix, key);
        else
                snprintf(fkey, sizeof(fkey), "%s", key);
        q = (struct s3_request){.op = "HEAD", .method = "HEAD", .key = fkey};
        r = s3_perform(s, &q);
        if (r < 0)
                return r;
        if ((size_t)snprintf(buf, size, "%s", q.storage_class[0] ? q.storage_class : "STANDARD") >=
            size)
                return -ENOBUFS;
        return 0;
}

struct sweep {
        struct lake_store *s;
        const struct lake_lifecycle_rule *rule;
        int64_t now_ms, day_ms;
        lake_lifecycle_time_fn time_fn;
        void *ud;
        struct lake_lifecycle_apply_result *res;
};

/* The index of class in the rule's transitions, -1 if it names none. */
static int class_index(const struct lake_lifecycle_rule *rule, const char *cls)
{
        for (size_t k = 0; k < rule->n_transitions; k++)
                if (strcmp(rule->transitions[k].storage_class, cls) == 0)
                        return (int)k;
        return -1;
}

static int sweep_one(void *ud, const char *key, uint64_t size, int64_t mtime_ms)
{
        struct sweep *w = ud;
        const struct lake_lifecycle_rule *rule = w->rule;
        int64_t t = mtime_ms, age;
        char cls[LAKE_LIFECYCLE_CLASS_MAX + 8];
        int target = -1, have, r;

        (void)size;
        w->res->objects++;
        if (w->time_fn) {
                r = w->time_fn(w->ud, key, mtime_ms, &t);
                if (r != 0)
                        return r > 0 ? 0 : r;
        }
        age = w->now_ms > t ? (w->now_ms - t) / w->day_ms : 0;
        for (size_t k = 0; k < rule->n_transitions; k++)
                if ((int64_t)rule->transitions[k].days <= age)
                        target = (int)k;
        if (target < 0)
                return 0;
        w->res->due++;
        r = lake_store_get_class(w->s, key, cls, sizeof(cls));
        if (r == -ENOENT)
                return 0; /* deleted since the listing */
        if (r < 0)
                return r;
        have = class_index(rule, cls);
        if (have >= target || (have < 0 && strcmp(cls, "STANDARD") != 0))
                return 0; /* there already, colder, or a class someone else chose */
        r = lake_store_set_class(w->s, key, rule->transitions[target].storage_class);
        if (r == -ENOENT)
                return 0;
        if (r == 0)
                w->res->changed++;
        return r;
}

int lake_lifecycle_apply(struct lake_store *s, const struct lake_lifecycle_rule *rules, size_t n,
                         int64_t now_ms, int64_t day_ms, lake_lifecycle_time_fn time_fn, void *ud,
                         struct lake_lifecycle_apply_result *ret)
{
        struct lake_lifecycle_apply_result res = {0};
        int r;

        r = need_s3(s, "COPY");
        if (r < 0)
                return r;
        if (day_ms <= 0 || lake_lifecycle_check("", rules, n) < 0)
                return store_fail(s, -EINVAL, "COPY: invalid rules");
        for (size_t i = 0; i < n; i++) {
                struct sweep w = {.s = s,
                                  .rule = &rules[i],
                                  .now_ms = now_ms,
                                  .day_ms = day_ms,
                                  .time_fn = time_fn,
                                  .ud = ud,
                                  .res = &res};

                r = lake_store_list(s, rules[i].prefix, sweep_one, &w);
                if (r < 0)
                        return r;
        }
        if (ret)
                *ret = res;
        return 0;
}
