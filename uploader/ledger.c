/* SPDX-License-Identifier: Apache-2.0 */
/* The ledger: committed seqs per stream in the catalog database, and a cache of them. */
#include "ledger.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "floe-alloc.h"
#include "floe-config.h"

#define TABLE "floe_ledger"

static const char SQL_CREATE[] =
        "CREATE TABLE IF NOT EXISTS " TABLE " (catalog_name VARCHAR(255) NOT NULL, "
        "identity VARCHAR(255) NOT NULL, epoch BIGINT NOT NULL, hwm BIGINT NOT NULL, "
        "above TEXT NOT NULL, updated_ms BIGINT NOT NULL, "
        "PRIMARY KEY (catalog_name, identity, epoch))";
/* the upsert takes the row's lock (PostgreSQL) before it is read */
static const char SQL_TOUCH[] =
        "INSERT INTO " TABLE " (catalog_name, identity, epoch, hwm, above, updated_ms) "
        "VALUES (?, ?, ?, 0, '', ?) ON CONFLICT (catalog_name, identity, epoch) "
        "DO UPDATE SET updated_ms = excluded.updated_ms";
static const char SQL_READ[] =
        "SELECT hwm, above FROM " TABLE " WHERE catalog_name = ? AND identity = ? AND epoch = ?";
static const char SQL_WRITE[] = "UPDATE " TABLE " SET hwm = ?, above = ?, updated_ms = ? "
                                "WHERE catalog_name = ? AND identity = ? AND epoch = ?";

/* A cached stream: 44 bytes and the identity (docs/uploader.md, "Memory"). */
struct centry {
        struct centry *next;
        uint64_t epoch;
        struct upl_seqset set;
        uint32_t used_s; /* last use, in seconds of the monotonic clock */
        char identity[];
};

struct upl_ledger {
        char *catalog_name;
        uint32_t max_ranges;
        uint64_t cache_idle_us;
        struct centry **slots;
        size_t n_slots, n;
        bool ready; /* the table exists */
};

struct upl_stream_state {
        const char *identity;
        uint64_t epoch;
        size_t first, count; /* its claims */
        struct upl_seqset read, next;
        bool have_read;
};

/* Cache ages in whole seconds ([ledger] cache_idle is at least 1 s); 2^32 s are 136 years of
 * uptime. */
static uint32_t secs(uint64_t now_us)
{
        return (uint32_t)(now_us / 1000000);
}

static uint64_t hash(const char *identity, uint64_t epoch)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (const unsigned char *p = (const unsigned char *)identity; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        for (int i = 0; i < 8; i++)
                h = (h ^ ((epoch >> (8 * i)) & 0xff)) * 0x100000001b3ULL;
        return h;
}

int upl_ledger_new(const char *catalog_name, uint32_t max_ranges, uint64_t cache_idle_us,
                   struct upl_ledger **ret)
{
        struct upl_ledger *l = floe_calloc(1, sizeof(*l));

        if (!l)
                return -ENOMEM;
        l->catalog_name = floe_strdup(catalog_name ? catalog_name : "floe");
        l->n_slots = 1024;
        l->slots = floe_calloc(l->n_slots, sizeof(*l->slots));
        if (!l->catalog_name || !l->slots) {
                upl_ledger_free(l);
                return -ENOMEM;
        }
        upl_ledger_set_limits(l, max_ranges, cache_idle_us);
        *ret = l;
        return 0;
}

static struct centry *centry_free(struct centry *e)
{
        upl_seqset_clear(&e->set);
        floe_free(e);
        return NULL;
}

struct upl_ledger *upl_ledger_free(struct upl_ledger *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; l->slots && i < l->n_slots; i++)
                while (l->slots[i]) {
                        struct centry *e = l->slots[i];

                        l->slots[i] = e->next;
                        centry_free(e);
                }
        floe_free(l->slots);
        floe_free(l->catalog_name);
        floe_free(l);
        return NULL;
}

void upl_ledger_set_limits(struct upl_ledger *l, uint32_t max_ranges, uint64_t cache_idle_us)
{
        l->max_ranges = max_ranges ? max_ranges : 256;
        l->cache_idle_us = cache_idle_us;
}

static int create_fn(void *ud, struct lake_catalog_txn *t)
{
        int r;

        (void)ud;
        r = lake_catalog_txn_lock(t, "floe ledger schema");
        return r < 0 ? r : lake_catalog_txn_exec(t, SQL_CREATE, NULL, 0, 0, NULL, NULL, NULL);
}

int upl_ledger_setup(struct upl_ledger *l, struct lake_catalog *c)
{
        int r;

        r = lake_catalog_run(c, create_fn, l);
        if (r < 0) /* a lock timeout or a broken connection: once more */
                r = lake_catalog_run(c, create_fn, l);
        if (r == 0)
                l->ready = true;
        return r;
}

static struct centry **slot_of(struct upl_ledger *l, const char *identity, uint64_t epoch)
{
        struct centry **p = &l->slots[hash(identity, epoch) & (l->n_slots - 1)];

        while (*p && ((*p)->epoch != epoch || strcmp((*p)->identity, identity) != 0))
                p = &(*p)->next;
        return p;
}

static void grow(struct upl_ledger *l)
{
        size_t n = l->n_slots * 2;
        struct centry **s;

        if (l->n < l->n_slots || n > (SIZE_MAX / sizeof(*s)))
                return;
        s = floe_calloc(n, sizeof(*s));
        if (!s)
                return; /* longer chains, still correct */
        for (size_t i = 0; i < l->n_slots; i++)
                while (l->slots[i]) {
                        struct centry *e = l->slots[i];
                        size_t k = hash(e->identity, e->epoch) & (n - 1);

                        l->slots[i] = e->next;
                        e->next = s[k];
                        s[k] = e;
                }
        floe_free(l->slots);
        l->slots = s;
        l->n_slots = n;
}

/* Replaces the cached state of a stream (a later database state holds every earlier one). */
static void remember(struct upl_ledger *l, const char *identity, uint64_t epoch,
                     const struct upl_seqset *set, uint64_t now_us)
{
        struct centry **p = slot_of(l, identity, epoch), *e = *p;
        size_t len = strlen(identity);

        if (!e) {
                e = floe_calloc(1, offsetof(struct centry, identity) + len + 1);
                if (!e)
                        return; /* the cache is an optimisation */
                memcpy(e->identity, identity, len + 1);
                e->epoch = epoch;
                *p = e;
                l->n++;
        }
        if (set->n == 0) /* no ranges kept from an earlier state */
                upl_seqset_clear(&e->set);
        if (upl_seqset_copy(&e->set, set) < 0) {
                *p = e->next;
                centry_free(e);
                l->n--;
                return;
        }
        e->used_s = secs(now_us);
        grow(l);
}

struct read_ctx {
        struct upl_seqset *set;
        bool found;
        int error;
};

static int read_row(void *ud, int ncols, const char *const *cols)
{
        struct read_ctx *x = ud;
        int64_t hwm = 0;

        if (ncols != 2 || !cols[0] || !cols[1] || floe_parse_int64(cols[0], &hwm) < 0 || hwm < 0)
                x->error = -EBADMSG;
        else
                x->error = upl_seqset_parse(x->set, (uint64_t)hwm, cols[1],
                                            UPL_LEDGER_RANGES_HARD_MAX);
        x->found = true;
        return x->error;
}

static int read_state(struct upl_ledger *l, struct lake_catalog_txn *t, const char *identity,
                      uint64_t epoch, struct upl_seqset *set, bool *ret_found)
{
        const struct lake_param p[] = {
                {LAKE_PARAM_TEXT, l->catalog_name, 0},
                {LAKE_PARAM_TEXT, identity, 0},
                {LAKE_PARAM_INT64, NULL, (int64_t)epoch},
        };
        struct read_ctx x = {.set = set};
        int r;

        r = lake_catalog_txn_exec(t, SQL_READ, p, ELEMENTSOF(p), 2, read_row, &x, NULL);
        if (r < 0)
                return x.error < 0 ? x.error : r;
        *ret_found = x.found;
        return 0;
}

struct check_ctx {
        struct upl_ledger *l;
        const char *identity;
        uint64_t epoch;
        struct upl_seqset set;
};

static int check_fn(void *ud, struct lake_catalog_txn *t)
{
        struct check_ctx *x = ud;
        bool found = false;

        upl_seqset_clear(&x->set);
        return read_state(x->l, t, x->identity, x->epoch, &x->set, &found);
}

int upl_ledger_check(struct upl_ledger *l, struct lake_catalog *c, const char *identity,
                     uint64_t epoch, uint64_t seq, uint64_t now_us, bool *ret_committed)
{
        struct centry *e = *slot_of(l, identity, epoch);
        struct check_ctx x = {.l = l, .identity = identity, .epoch = epoch};
        int r;

        if (e && upl_seqset_has(&e->set, seq)) {
                e->used_s = secs(now_us);
                *ret_committed = true;
                return 0;
        }
        if (e || !c || !l->ready) {
                /* a cached stream is read again only by a commit: not committed as far as we
                 * know, and the commit's transaction decides */
                if (e)
                        e->used_s = secs(now_us);
                *ret_committed = false;
                return 0;
        }
        r = lake_catalog_run(c, check_fn, &x);
        if (r == 0) {
                remember(l, identity, epoch, &x.set, now_us);
                *ret_committed = upl_seqset_has(&x.set, seq);
        }
        upl_seqset_clear(&x.set);
        return r;
}

size_t upl_ledger_expire(struct upl_ledger *l, uint64_t now_us)
{
        uint64_t now_s = secs(now_us);

        for (size_t i = 0; i < l->n_slots; i++) {
                struct centry **p = &l->slots[i];

                while (*p) {
                        struct centry *e = *p;

                        if ((now_s - e->used_s) * 1000000 >= l->cache_idle_us) {
                                *p = e->next;
                                centry_free(e);
                                l->n--;
                        } else {
                                p = &e->next;
                        }
                }
        }
        return l->n;
}

size_t upl_ledger_cached(const struct upl_ledger *l)
{
        return l->n;
}

/* What the allocator holds for a block: its usable size and the one-word chunk header. */
static size_t held(const void *p)
{
        return p ? malloc_usable_size((void *)p) + sizeof(size_t) : 0;
}

size_t upl_ledger_memory(const struct upl_ledger *l)
{
        size_t sum = held(l->slots);

        for (size_t i = 0; i < l->n_slots; i++)
                for (const struct centry *e = l->slots[i]; e; e = e->next)
                        sum += held(e) + held(e->set.r);
        return sum;
}

/* -- commits ------------------------------------------------------------------------------- */

static int claim_cmp(const void *a, const void *b)
{
        const struct upl_claim *x = *(const struct upl_claim *const *)a;
        const struct upl_claim *y = *(const struct upl_claim *const *)b;
        int c = strcmp(x->identity, y->identity);

        if (c)
                return c;
        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int upl_ledger_commit_init(struct upl_ledger_commit *c, struct upl_ledger *l,
                           struct upl_claim **claims, size_t n, int64_t now_ms)
{
        *c = (struct upl_ledger_commit){.l = l, .claims = claims, .n = n, .now_ms = now_ms};
        if (n == 0)
                return 0;
        qsort(claims, n, sizeof(*claims), claim_cmp);
        for (size_t i = 0; i < n; i++) {
                struct upl_stream_state *s;

                if (i > 0 && claims[i]->epoch == claims[i - 1]->epoch &&
                    strcmp(claims[i]->identity, claims[i - 1]->identity) == 0) {
                        c->streams[c->n_streams - 1].count++;
                        continue;
                }
                if (c->n_streams == c->cap_streams) {
                        size_t cap = c->cap_streams ? 2 * c->cap_streams : 16;

                        s = floe_reallocarray(c->streams, cap, sizeof(*s));
                        if (!s) {
                                upl_ledger_commit_clear(c);
                                return -ENOMEM;
                        }
                        c->streams = s;
                        c->cap_streams = cap;
                }
                c->streams[c->n_streams++] = (struct upl_stream_state){
                        .identity = claims[i]->identity,
                        .epoch = claims[i]->epoch,
                        .first = i,
                        .count = 1,
                };
        }
        return 0;
}

void upl_ledger_commit_clear(struct upl_ledger_commit *c)
{
        for (size_t i = 0; i < c->n_streams; i++) {
                upl_seqset_clear(&c->streams[i].read);
                upl_seqset_clear(&c->streams[i].next);
        }
        floe_free(c->streams);
        *c = (struct upl_ledger_commit){0};
}

static int touch(struct upl_ledger_commit *c, struct lake_catalog_txn *t,
                 const struct upl_stream_state *s)
{
        const struct lake_param p[] = {
                {LAKE_PARAM_TEXT, c->l->catalog_name, 0},
                {LAKE_PARAM_TEXT, s->identity, 0},
                {LAKE_PARAM_INT64, NULL, (int64_t)s->epoch},
                {LAKE_PARAM_INT64, NULL, c->now_ms},
        };

        return lake_catalog_txn_exec(t, SQL_TOUCH, p, ELEMENTSOF(p), 0, NULL, NULL, NULL);
}

static int write_state(struct upl_ledger_commit *c, struct lake_catalog_txn *t,
                       const struct upl_stream_state *s)
{
        _cleanup_free_ char *above = NULL;
        int64_t changes = 0;
        int r;

        r = upl_seqset_format(&s->next, &above);
        if (r < 0)
                return r;
        {
                const struct lake_param p[] = {
                        {LAKE_PARAM_INT64, NULL, (int64_t)s->next.hwm},
                        {LAKE_PARAM_TEXT, above, 0},
                        {LAKE_PARAM_INT64, NULL, c->now_ms},
                        {LAKE_PARAM_TEXT, c->l->catalog_name, 0},
                        {LAKE_PARAM_TEXT, s->identity, 0},
                        {LAKE_PARAM_INT64, NULL, (int64_t)s->epoch},
                };

                r = lake_catalog_txn_exec(t, SQL_WRITE, p, ELEMENTSOF(p), 0, NULL, NULL, &changes);
        }
        if (r == 0 && changes != 1)
                r = -EIO;
        return r;
}

int upl_ledger_txn(void *ud, struct lake_catalog_txn *t)
{
        struct upl_ledger_commit *c = ud;
        bool conflict = false;
        int r;

        c->written_off = 0;
        c->error[0] = '\0';
        for (size_t i = 0; i < c->n; i++)
                c->claims[i]->conflict = false;
        /* streams in key order: two uploaders lock rows in the same order, never a deadlock */
        for (size_t i = 0; i < c->n_streams; i++) {
                struct upl_stream_state *s = &c->streams[i];
                bool found = false;

                s->have_read = false;
                r = touch(c, t, s);
                r = r ?: read_state(c->l, t, s->identity, s->epoch, &s->read, &found);
                if (r == 0 && !found)
                        r = -EIO;
                if (r == -EBADMSG)
                        snprintf(c->error, sizeof(c->error),
                                 "ledger row of %s epoch %" PRIu64 " does not parse", s->identity,
                                 s->epoch);
                if (r < 0)
                        return r;
                s->have_read = true;
                r = upl_seqset_copy(&s->next, &s->read);
                if (r < 0)
                        return r;
                for (size_t k = s->first; k < s->first + s->count; k++) {
                        struct upl_claim *cl = c->claims[k];

                        if (upl_seqset_has(&s->read, cl->seq)) {
                                cl->conflict = conflict = true;
                                continue;
                        }
                        r = upl_seqset_add(&s->next, cl->seq);
                        if (r < 0)
                                return r;
                }
        }
        if (conflict)
                return -EALREADY;
        for (size_t i = 0; i < c->n_streams; i++) {
                struct upl_stream_state *s = &c->streams[i];

                c->written_off += upl_seqset_trim(&s->next, c->l->max_ranges);
                r = write_state(c, t, s);
                if (r < 0)
                        return r;
        }
        return 0;
}

void upl_ledger_commit_finish(struct upl_ledger_commit *c, bool committed, uint64_t now_us)
{
        for (size_t i = 0; i < c->n_streams; i++) {
                struct upl_stream_state *s = &c->streams[i];

                if (!s->have_read)
                        continue;
                remember(c->l, s->identity, s->epoch, committed ? &s->next : &s->read, now_us);
        }
}
