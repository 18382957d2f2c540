/* SPDX-License-Identifier: Apache-2.0 */
#include "floe-ack.h"

#include <cbor.h>
#include <errno.h>
#include <string.h>

#include "floe-alloc.h"
#include "floe-batch.h"
#include "floe-wire-internal.h"

static const char *const status_names[] = {
        [FLOE_ACK_OK] = "ok",
        [FLOE_ACK_DUPLICATE] = "duplicate",
        [FLOE_ACK_REJECTED] = "rejected",
};

const char *floe_ack_status_name(enum floe_ack_status s)
{
        return (unsigned)s < ELEMENTSOF(status_names) ? status_names[s] : "invalid";
}

struct out {
        uint8_t *p;
        size_t size;
        size_t len;
        bool full;
};

static void put(struct out *o, size_t n)
{
        if (n == 0)
                o->full = true;
        o->len += n;
}

static void put_str(struct out *o, const char *s)
{
        size_t n = strlen(s);

        put(o, cbor_encode_string_start(n, o->p + o->len, o->size - o->len));
        if (o->full || o->size - o->len < n) {
                o->full = true;
                return;
        }
        memcpy(o->p + o->len, s, n);
        o->len += n;
}

int floe_ack_encode(const struct floe_ack *a, uint8_t *buf, size_t size, size_t *ret_len)
{
        bool rejected = a->status == FLOE_ACK_REJECTED;
        struct out o = {.p = buf, .size = size};
        size_t rlen = strnlen(a->reason, sizeof(a->reason));

        if ((unsigned)a->status >= ELEMENTSOF(status_names) || rlen > FLOE_ACK_REASON_MAX ||
            (rejected && !floe_utf8_valid(a->reason, rlen)))
                return -EINVAL;
        put(&o, cbor_encode_map_start(rejected ? 5 : 4, buf, size));
        put_str(&o, "v");
        if (!o.full)
                put(&o, cbor_encode_uint(1, buf + o.len, size - o.len));
        put_str(&o, "epoch");
        if (!o.full)
                put(&o, cbor_encode_uint(a->epoch, buf + o.len, size - o.len));
        put_str(&o, "seq");
        if (!o.full)
                put(&o, cbor_encode_uint(a->seq, buf + o.len, size - o.len));
        put_str(&o, "status");
        put_str(&o, status_names[a->status]);
        if (rejected) {
                put_str(&o, "reason");
                put_str(&o, a->reason);
        }
        if (o.full)
                return -ENOSPC;
        *ret_len = o.len;
        return 0;
}

static bool key_is(const struct item *it, const char *s)
{
        return it->len == strlen(s) && memcmp(it->p, s, it->len) == 0;
}

int floe_ack_decode(const uint8_t *data, size_t len, struct floe_ack *ret)
{
        struct floe_wire_error err;
        struct rd r = {.buf = data, .len = len, .err = &err};
        struct floe_ack a = {0};
        bool seen_epoch = false, seen_seq = false, seen_status = false, seen_reason = false;
        struct item it;
        uint64_t n;

        if (len > FLOE_ACK_MAX)
                return -EMSGSIZE;
        if (floe_wire_rd_expect(&r, &it, IT_MAP, "ack") < 0)
                return -EBADMSG;
        n = it.u;
        if (n < 4 || floe_wire_rd_expect(&r, &it, IT_TSTR, "key") < 0 || !key_is(&it, "v") ||
            floe_wire_rd_expect(&r, &it, IT_UINT, "v") < 0)
                return -EBADMSG;
        if (it.u != 1)
                return -EPROTONOSUPPORT;
        for (uint64_t i = 1; i < n; i++) {
                bool *seen;

                if (floe_wire_rd_expect(&r, &it, IT_TSTR, "key") < 0)
                        return -EBADMSG;
                if (key_is(&it, "epoch") || key_is(&it, "seq")) {
                        bool epoch = key_is(&it, "epoch");

                        seen = epoch ? &seen_epoch : &seen_seq;
                        if (*seen || floe_wire_rd_expect(&r, &it, IT_UINT, "n") < 0)
                                return -EBADMSG;
                        if (epoch)
                                a.epoch = it.u;
                        else
                                a.seq = it.u;
                } else if (key_is(&it, "status")) {
                        seen = &seen_status;
                        if (*seen || floe_wire_rd_expect(&r, &it, IT_TSTR, "status") < 0)
                                return -EBADMSG;
                        if (key_is(&it, "ok"))
                                a.status = FLOE_ACK_OK;
                        else if (key_is(&it, "duplicate"))
                                a.status = FLOE_ACK_DUPLICATE;
                        else if (key_is(&it, "rejected"))
                                a.status = FLOE_ACK_REJECTED;
                        else
                                return -EBADMSG;
                } else if (key_is(&it, "reason")) {
                        seen = &seen_reason;
                        if (*seen || floe_wire_rd_expect(&r, &it, IT_TSTR, "reason") < 0 ||
                            it.len > FLOE_ACK_REASON_MAX || memchr(it.p, 0, it.len) ||
                            !floe_utf8_valid((const char *)it.p, it.len))
                                return -EBADMSG;
                        memcpy(a.reason, it.p, it.len);
                        a.reason[it.len] = '\0';
                } else if (it.len >= 2 && memcmp(it.p, "x-", 2) == 0) {
                        if (floe_wire_rd_skip(&r, 0, "extension") < 0)
                                return -EBADMSG;
                        continue;
                } else {
                        return -EBADMSG;
                }
                *seen = true;
        }
        if (r.pos != len || !seen_epoch || !seen_seq || !seen_status ||
            seen_reason != (a.status == FLOE_ACK_REJECTED))
                return -EBADMSG;
        *ret = a;
        return 0;
}
