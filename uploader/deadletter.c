/* SPDX-License-Identifier: Apache-2.0 */
/* Rejected batches kept in the warehouse with the reason. */
#include "deadletter.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "floe-alloc.h"
#include "floe-batch.h"
#include "store.h"

#define KEY_MAX 1024

static void hex(const uint8_t *p, size_t n, char *out)
{
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                out[2 * i] = digits[p[i] >> 4];
                out[2 * i + 1] = digits[p[i] & 15];
        }
        out[2 * n] = '\0';
}

static int sha256_hex(const void *data, size_t len, char out[65])
{
        uint8_t md[32];
        unsigned n = 0;

        if (!EVP_Digest(data, len, md, &n, EVP_sha256(), NULL) || n != 32)
                return -EIO;
        hex(md, 32, out);
        return 0;
}

static void utc(int64_t us, const char *fmt, char *buf, size_t size)
{
        time_t t = (time_t)(us / 1000000);
        struct tm tm;

        if (!gmtime_r(&t, &tm) || !strftime(buf, size, fmt, &tm))
                snprintf(buf, size, "1970-01-01");
}

/* A reason as a key level: [a-z0-9-], at most 64 characters. */
static void safe_reason(const char *reason, char *out, size_t size)
{
        size_t w = 0;

        for (const char *p = reason; *p && w + 1 < size && w < 64; p++)
                out[w++] = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ? *p : '-';
        if (w == 0)
                out[w++] = 'x';
        out[w] = '\0';
}

static int json_record(const struct upl_dead_letter *d, const char *sha, const char *key,
                       char **ret)
{
        char day[32], when[48], num[24];
        json_t *o = json_object();
        char *text;
        int bad = 0;

        if (!o)
                return -ENOMEM;
        utc(d->received_us, "%Y-%m-%dT%H:%M:%S", day, sizeof(day));
        snprintf(when, sizeof(when), "%s.%06" PRId64 "Z", day,
                 ((d->received_us % 1000000) + 1000000) % 1000000);
        bad |= json_object_set_new(o, "reason", json_string(d->reason));
        bad |= json_object_set_new(o, "detail", d->detail ? json_string(d->detail) : json_null());
        bad |= json_object_set_new(o, "topic", d->topic ? json_string(d->topic) : json_null());
        bad |= json_object_set_new(o, "identity",
                                   d->identity ? json_string(d->identity) : json_null());
        /* as strings: 64-bit values lose digits in many JSON readers */
        snprintf(num, sizeof(num), "%" PRIu64, d->epoch);
        bad |= json_object_set_new(o, "epoch", d->have_seq ? json_string(num) : json_null());
        snprintf(num, sizeof(num), "%" PRIu64, d->seq);
        bad |= json_object_set_new(o, "seq", d->have_seq ? json_string(num) : json_null());
        bad |= json_object_set_new(o, "received_at", json_string(when));
        bad |= json_object_set_new(o, "received_at_us", json_integer(d->received_us));
        bad |= json_object_set_new(o, "bytes", json_integer((json_int_t)d->len));
        bad |= json_object_set_new(o, "sha256", json_string(sha));
        bad |= json_object_set_new(o, "batch", json_string(key));
        bad |= json_object_set_new(o, "uploader",
                                   d->uploader ? json_string(d->uploader) : json_null());
        text = bad ? NULL : json_dumps(o, JSON_SORT_KEYS | JSON_ENSURE_ASCII);
        json_decref(o);
        if (!text)
                return -ENOMEM;
        *ret = text;
        return 0;
}

int upl_dead_letter_write(struct lake_store *s, const char *prefix, const struct upl_dead_letter *d,
                          char *key, size_t size)
{
        char sha[65], day[16], reason[72], name[160], k[KEY_MAX];
        const char *who = "_invalid";
        char *json = NULL;
        size_t n;
        int r;

        r = sha256_hex(d->data, d->len, sha);
        if (r < 0)
                return r;
        if (d->identity && floe_identity_valid(d->identity, strlen(d->identity)))
                who = d->identity;
        utc(d->received_us, "%Y-%m-%d", day, sizeof(day));
        safe_reason(d->reason, reason, sizeof(reason));
        if (d->have_seq)
                snprintf(name, sizeof(name), "%" PRIu64 "-%" PRIu64 "-%s", d->epoch, d->seq,
                         reason);
        else
                snprintf(name, sizeof(name), "x%.16s-%s", sha, reason);
        if (snprintf(k, sizeof(k), "%s/%s/%s/%s.batch", prefix, day, who, name) >= (int)sizeof(k))
                return -ENAMETOOLONG;
        r = lake_store_put(s, k, d->data, d->len, LAKE_PUT_REPLACE);
        if (r < 0)
                return r;
        r = json_record(d, sha, k, &json);
        if (r < 0)
                return r;
        n = strlen(k);
        memcpy(k + n - 6, ".json", 6);
        r = lake_store_put(s, k, json, strlen(json), LAKE_PUT_REPLACE);
        free(json); /* jansson's allocation */
        if (r < 0)
                return r;
        if (key && size)
                snprintf(key, size, "%.*s.batch", (int)(n - 6), k);
        return 0;
}
