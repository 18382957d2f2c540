/* SPDX-License-Identifier: Apache-2.0 */
/* Batches in: identity from the topic, decoded within the limits, checked, dead-lettered or
 * acked as duplicates or buffered. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "catalog.h"
#include "deadletter.h"
#include "floe-alloc.h"
#include "store.h"
#include "uploader-internal.h"

#define PREFIX "floe/v1/"
#define SUFFIX "/batch"

/* The identity of "floe/v1/<identity>/batch"; -EINVAL for anything else. */
static int topic_identity(const char *topic, char *buf, size_t size)
{
        size_t n = strlen(topic), len;

        if (n <= strlen(PREFIX) + strlen(SUFFIX) || strncmp(topic, PREFIX, strlen(PREFIX)) != 0 ||
            strcmp(topic + n - strlen(SUFFIX), SUFFIX) != 0)
                return -EINVAL;
        len = n - strlen(PREFIX) - strlen(SUFFIX);
        if (len >= size || !floe_identity_valid(topic + strlen(PREFIX), len))
                return -EINVAL;
        memcpy(buf, topic + strlen(PREFIX), len);
        buf[len] = '\0';
        return 0;
}

int upl_reject(struct upl *u, const char *topic, const char *identity, bool have_seq,
               uint64_t epoch, uint64_t seq, const char *reason, const char *detail,
               int64_t received_us, const void *data, size_t len)
{
        struct upl_dead_letter d = {
                .topic = topic,
                .identity = identity,
                .have_seq = have_seq,
                .epoch = epoch,
                .seq = seq,
                .reason = reason,
                .detail = detail,
                .uploader = u->s.client_id,
                .received_us = received_us,
                .data = data,
                .len = len,
        };
        struct upl_tenant_stats *ts;
        char key[1100] = "";
        int r;

        (void)upl_lake_open(&u->lake, &u->s.lake); /* the store is enough */
        r = u->lake.store ? upl_dead_letter_write(u->lake.store, u->s.dead_letter_prefix, &d, key,
                                                  sizeof(key))
                          : -ENOTCONN;
        if (r < 0) {
                u->st.dead_letter_failures++;
                log_ratelimit_errno(&u->rl_reject, LOG_WARNING, r,
                                    "batch from %s (%s) not kept as a dead letter, not "
                                    "acknowledged (it comes again): %s",
                                    identity ? identity : topic, reason,
                                    u->lake.store ? lake_store_error(u->lake.store) : u->lake.why);
                return r;
        }
        upl_count_reason(u, reason);
        ts = identity ? upl_tenant(u, identity) : NULL;
        if (ts)
                ts->rejected++;
        if (have_seq)
                log_ratelimit(&u->rl_reject, LOG_WARNING,
                              "rejected batch %" PRIu64 "/%" PRIu64 " from %s: %s%s%s; kept as %s",
                              epoch, seq, identity ? identity : topic, reason, detail ? ": " : "",
                              detail ? detail : "", key);
        else
                log_ratelimit(&u->rl_reject, LOG_WARNING,
                              "rejected a batch on %s: %s%s%s; kept as %s", topic, reason,
                              detail ? ": " : "", detail ? detail : "", key);
        if (identity && have_seq)
                upl_ack(u, identity, epoch, seq, FLOE_ACK_REJECTED, reason);
        return 0;
}

static void defer(struct upl *u, const char *identity, const char *why)
{
        u->st.deferred++;
        log_ratelimit(&u->rl_defer, LOG_WARNING,
                      "a batch from %s was not taken (%s): not acknowledged, its agent sends it "
                      "again",
                      identity, why);
}

/* Values the tables cannot hold; the wire format allows them. */
static const char *out_of_range(const struct floe_batch *b)
{
        if (b->kind != FLOE_KIND_AGGREGATES)
                return NULL;
        for (uint32_t i = 0; i < b->nrows; i++) {
                if (b->window_s[i] > INT32_MAX)
                        return "window_s beyond an Iceberg int";
                if (b->count[i] > INT64_MAX)
                        return "count beyond an Iceberg long";
        }
        return NULL;
}

static int64_t ts_min(const struct floe_batch *b)
{
        int64_t m = b->nrows ? b->ts[0] : 0;

        for (uint32_t i = 1; i < b->nrows; i++)
                if (b->ts[i] < m)
                        m = b->ts[i];
        return m;
}

static void take(struct upl *u, const struct floe_batch *b, const char *identity,
                 const uint8_t *data, size_t len, int64_t received_us, uint64_t mono)
{
        struct upl_table *t = &u->tables[upl_table_index(b->kind)];
        struct upl_tenant_stats *ts;
        struct upl_item *it;
        bool committed = false;
        int r;

        if (upl_index_find(&u->index, identity, b->epoch, b->seq)) {
                u->st.resent_buffered++; /* acked with the commit that takes it */
                return;
        }
        r = upl_ledger_check(u->ledger, u->ledger_ready ? u->lake.catalog : NULL, identity,
                             b->epoch, b->seq, mono, &committed);
        if (r < 0) { /* the commit's transaction checks anyway */
                u->st.ledger_errors++;
                log_ratelimit_errno(&u->rl_flush, LOG_WARNING, r,
                                    "ledger: cannot check %s %" PRIu64 "/%" PRIu64 " (%s); "
                                    "buffered, the commit checks it",
                                    identity, b->epoch, b->seq,
                                    lake_catalog_error(u->lake.catalog));
        }
        if (committed) {
                u->st.duplicates++;
                ts = upl_tenant(u, identity);
                if (ts)
                        ts->duplicates++;
                upl_ack(u, identity, b->epoch, b->seq, FLOE_ACK_DUPLICATE, NULL);
                return;
        }
        r = upl_item_new(identity, b->epoch, b->seq, b->kind, data, len, &it);
        if (r < 0) {
                defer(u, identity, "out of memory");
                return;
        }
        it->received_us = received_us;
        it->received_mono = mono;
        it->ts_min = ts_min(b);
        it->rows = b->nrows;
        r = upl_table_add(t, it);
        if (r < 0) {
                upl_item_free(it);
                defer(u, identity, "out of memory");
                return;
        }
        u->st.batches++;
        u->st.bytes += len;
        u->st.events += b->nrows;
        ts = upl_tenant(u, identity);
        if (ts) {
                ts->batches++;
                ts->events += b->nrows;
        }
        if (t->phase == UPL_FLUSH_IDLE && (t->cur.bytes >= t->set.size || !t->set.interval_us))
                upl_flush_check(u, mono);
}

void upl_on_message(void *ud, const struct mosquitto_message *msg, const mosquitto_property *props)
{
        struct upl *u = ud;
        const uint8_t *data = msg->payload;
        size_t len = msg->payloadlen > 0 ? (size_t)msg->payloadlen : 0;
        int64_t received_us = upl_now_wall();
        uint64_t mono = upl_now_mono(), epoch = 0, seq = 0;
        char identity[FLOE_IDENTITY_MAX + 1];
        struct floe_wire_error err = {0};
        const struct floe_batch *b = u->batch;
        const char *why;
        bool have;
        int r;

        (void)props;
        u->st.messages++;
        if (topic_identity(msg->topic, identity, sizeof(identity)) < 0) {
                upl_reject(u, msg->topic, NULL, false, 0, 0, "bad-topic",
                           "not floe/v1/<identity>/batch", received_us, data, len);
                return;
        }
        if (u->stopping) {
                defer(u, identity, "stopping");
                return;
        }
        if (u->mem + len + 256 > u->s.max_memory) {
                defer(u, identity, "[buffer] max_memory reached");
                return;
        }
        r = floe_wire_decode_into(u->dec, data, len, u->batch, &err);
        if (r < 0 && err.reason == FLOE_WIRE_NOMEM) {
                defer(u, identity, "out of memory");
                return;
        }
        if (r < 0) {
                have = upl_peek_seq(data, len, u->s.limits.max_decompressed, &epoch, &seq) == 0;
                upl_reject(u, msg->topic, identity, have, epoch, seq,
                           floe_wire_reason_name(err.reason), err.detail, received_us, data, len);
                return;
        }
        why = NULL;
        if (strcmp(b->identity, identity) != 0)
                why = "identity-mismatch";
        else if (b->epoch == 0)
                why = "bad-epoch";
        else if (b->seq == 0 || b->seq > UPL_SEQ_MAX)
                why = "bad-seq";
        else if (out_of_range(b))
                why = "out-of-range";
        if (why) {
                char detail[FLOE_IDENTITY_MAX + 64];

                if (strcmp(why, "identity-mismatch") == 0)
                        snprintf(detail, sizeof(detail), "the batch names %s", b->identity);
                else if (strcmp(why, "out-of-range") == 0)
                        snprintf(detail, sizeof(detail), "%s", out_of_range(b));
                else
                        snprintf(detail, sizeof(detail), "epoch %" PRIu64 ", seq %" PRIu64,
                                 b->epoch, b->seq);
                upl_reject(u, msg->topic, identity, true, b->epoch, b->seq, why, detail,
                           received_us, data, len);
                return;
        }
        take(u, b, identity, data, len, received_us, mono);
}
