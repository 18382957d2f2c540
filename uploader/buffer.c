/* SPDX-License-Identifier: Apache-2.0 */
/* Buffered batches: per table and tenant, and the index over all of them. */
#include "buffer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "floe-alloc.h"

int upl_item_new(const char *identity, uint64_t epoch, uint64_t seq, enum floe_batch_kind kind,
                 const void *data, size_t len, struct upl_item **ret)
{
        size_t n = strlen(identity);
        struct upl_item *it;

        if (n > FLOE_IDENTITY_MAX)
                return -EINVAL;
        it = floe_calloc(1, sizeof(*it) + n + 1);
        if (!it)
                return -ENOMEM;
        it->data = floe_malloc(len ? len : 1);
        if (!it->data) {
                floe_free(it);
                return -ENOMEM;
        }
        if (len)
                memcpy(it->data, data, len);
        it->len = len;
        memcpy(it->identity, identity, n + 1);
        it->epoch = epoch;
        it->seq = seq;
        it->kind = kind;
        it->claim =
                (struct upl_claim){.identity = it->identity, .epoch = epoch, .seq = seq, .tag = it};
        *ret = it;
        return 0;
}

struct upl_item *upl_item_free(struct upl_item *it)
{
        if (!it)
                return NULL;
        floe_free(it->data);
        floe_free(it);
        return NULL;
}

uint64_t upl_item_bytes(const struct upl_item *it)
{
        return it->len + sizeof(*it) + strlen(it->identity) + 1;
}

size_t upl_item_tenant(const struct upl_item *it, const char **ret)
{
        *ret = it->identity;
        return strcspn(it->identity, ".");
}

static struct upl_tenant_buf *tenant_get(struct upl_buffer *b, const char *t, size_t len)
{
        struct upl_tenant_buf *tb;

        if (len > FLOE_IDENTITY_PART_MAX)
                return NULL;
        for (size_t i = 0; i < b->n_tenants; i++)
                if (strncmp(b->tenants[i].tenant, t, len) == 0 && b->tenants[i].tenant[len] == 0)
                        return &b->tenants[i];
        if (b->n_tenants == b->cap_tenants) {
                size_t cap = b->cap_tenants ? 2 * b->cap_tenants : 8;

                tb = floe_reallocarray(b->tenants, cap, sizeof(*tb));
                if (!tb)
                        return NULL;
                b->tenants = tb;
                b->cap_tenants = cap;
        }
        tb = &b->tenants[b->n_tenants++];
        *tb = (struct upl_tenant_buf){0};
        memcpy(tb->tenant, t, len);
        tb->tenant[len] = '\0';
        return tb;
}

int upl_buffer_add(struct upl_buffer *b, struct upl_item *it)
{
        const char *t;
        size_t len = upl_item_tenant(it, &t);
        struct upl_tenant_buf *tb = tenant_get(b, t, len);

        if (!tb)
                return -ENOMEM;
        it->next = NULL;
        if (tb->tail)
                tb->tail->next = it;
        else
                tb->head = it;
        tb->tail = it;
        if (tb->n == 0 || it->received_us < tb->oldest_us)
                tb->oldest_us = it->received_us;
        tb->n++;
        tb->bytes += upl_item_bytes(it);
        tb->rows += it->rows;
        if (b->n_items == 0 || it->received_mono < b->first_mono)
                b->first_mono = it->received_mono;
        b->n_items++;
        b->bytes += upl_item_bytes(it);
        b->rows += it->rows;
        return 0;
}

int upl_buffer_merge(struct upl_buffer *dst, struct upl_buffer *src)
{
        /* tenants first, so that a failure leaves both buffers whole */
        for (size_t i = 0; i < src->n_tenants; i++)
                if (!tenant_get(dst, src->tenants[i].tenant, strlen(src->tenants[i].tenant)))
                        return -ENOMEM;
        for (size_t i = 0; i < src->n_tenants; i++) {
                struct upl_item *it = src->tenants[i].head;

                while (it) {
                        struct upl_item *next = it->next;

                        upl_buffer_add(dst, it); /* cannot fail: the tenant exists */
                        it = next;
                }
        }
        src->n_tenants = 0;
        src->n_items = 0;
        src->bytes = src->rows = 0;
        src->first_mono = 0;
        return 0;
}

void upl_buffer_clear(struct upl_buffer *b)
{
        for (size_t i = 0; i < b->n_tenants; i++) {
                struct upl_item *it = b->tenants[i].head;

                while (it) {
                        struct upl_item *next = it->next;

                        upl_item_free(it);
                        it = next;
                }
        }
        floe_free(b->tenants);
        *b = (struct upl_buffer){0};
}

static int item_cmp(const void *a, const void *b)
{
        const struct upl_item *x = *(const struct upl_item *const *)a;
        const struct upl_item *y = *(const struct upl_item *const *)b;
        const char *tx, *ty;
        size_t lx = upl_item_tenant(x, &tx), ly = upl_item_tenant(y, &ty);
        int c = strncmp(tx, ty, lx < ly ? lx : ly);

        if (c)
                return c;
        if (lx != ly)
                return lx < ly ? -1 : 1;
        if (x->ts_min != y->ts_min)
                return x->ts_min < y->ts_min ? -1 : 1;
        c = strcmp(x->identity, y->identity);
        if (c)
                return c;
        if (x->epoch != y->epoch)
                return x->epoch < y->epoch ? -1 : 1;
        return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int upl_buffer_order(const struct upl_buffer *b, struct upl_item ***ret)
{
        struct upl_item **v = floe_calloc(b->n_items + 1, sizeof(*v));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < b->n_tenants; i++)
                for (struct upl_item *it = b->tenants[i].head; it && n < b->n_items; it = it->next)
                        v[n++] = it;
        qsort(v, n, sizeof(*v), item_cmp);
        *ret = v;
        return 0;
}

int64_t upl_buffer_tenant_oldest(const struct upl_buffer *b, const char *tenant)
{
        for (size_t i = 0; i < b->n_tenants; i++)
                if (strcmp(b->tenants[i].tenant, tenant) == 0)
                        return b->tenants[i].n ? b->tenants[i].oldest_us : 0;
        return 0;
}

/* -- the index ----------------------------------------------------------------------------- */

static uint64_t key_hash(const char *identity, uint64_t epoch, uint64_t seq)
{
        uint64_t h = 0xcbf29ce484222325ULL;

        for (const unsigned char *p = (const unsigned char *)identity; *p; p++)
                h = (h ^ *p) * 0x100000001b3ULL;
        h ^= epoch * 0x9e3779b97f4a7c15ULL;
        h = (h ^ (h >> 29)) * 0xbf58476d1ce4e5b9ULL;
        h ^= seq * 0x94d049bb133111ebULL;
        return h ^ (h >> 31);
}

int upl_index_init(struct upl_index *x)
{
        *x = (struct upl_index){.n_slots = 4096};
        x->slots = floe_calloc(x->n_slots, sizeof(*x->slots));
        return x->slots ? 0 : -ENOMEM;
}

void upl_index_clear(struct upl_index *x)
{
        floe_free(x->slots);
        *x = (struct upl_index){0};
}

static struct upl_item **find_slot(const struct upl_index *x, const char *identity, uint64_t epoch,
                                   uint64_t seq)
{
        struct upl_item **p = &x->slots[key_hash(identity, epoch, seq) & (x->n_slots - 1)];

        while (*p &&
               ((*p)->seq != seq || (*p)->epoch != epoch || strcmp((*p)->identity, identity) != 0))
                p = &(*p)->hnext;
        return p;
}

struct upl_item *upl_index_find(const struct upl_index *x, const char *identity, uint64_t epoch,
                                uint64_t seq)
{
        return *find_slot(x, identity, epoch, seq);
}

static void grow(struct upl_index *x)
{
        size_t n = x->n_slots * 2;
        struct upl_item **s;

        if (x->n < x->n_slots || n > SIZE_MAX / sizeof(*s))
                return;
        s = floe_calloc(n, sizeof(*s));
        if (!s)
                return; /* longer chains */
        for (size_t i = 0; i < x->n_slots; i++)
                while (x->slots[i]) {
                        struct upl_item *it = x->slots[i];
                        size_t k = key_hash(it->identity, it->epoch, it->seq) & (n - 1);

                        x->slots[i] = it->hnext;
                        it->hnext = s[k];
                        s[k] = it;
                }
        floe_free(x->slots);
        x->slots = s;
        x->n_slots = n;
}

void upl_index_add(struct upl_index *x, struct upl_item *it)
{
        struct upl_item **p = find_slot(x, it->identity, it->epoch, it->seq);

        if (*p)
                return; /* the caller checked: never two */
        it->hnext = NULL;
        *p = it;
        x->n++;
        grow(x);
}

void upl_index_remove(struct upl_index *x, struct upl_item *it)
{
        struct upl_item **p = find_slot(x, it->identity, it->epoch, it->seq);

        if (*p == it) {
                *p = it->hnext;
                x->n--;
        }
}
