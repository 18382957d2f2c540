/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "floe-batch.h"
#include "floe-wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool fuzz_same_col(const void *a, const void *b, size_t n)
{
        return n == 0 || memcmp(a, b, n) == 0;
}

/* Decoded batches must survive encode -> decode unchanged. */
/* Codec objects live for the whole run, as in a daemon: reuse is tested too. */
static struct floe_wire_encoder *fuzz_enc;
static struct floe_wire_decoder *fuzz_dec;
static struct floe_batch *fuzz_b;
static struct floe_batch *fuzz_c;

static void fuzz_check_roundtrip(const struct floe_batch *b)
{
        struct floe_batch *c = fuzz_c;
        struct floe_wire_error err;
        const uint8_t *data;
        size_t len;
        uint32_t n = b->nrows;

        if (floe_wire_encode(fuzz_enc, b, &data, &len) < 0)
                return; /* may exceed max_compressed: not a decoder bug */
        if (floe_wire_decode_into(fuzz_dec, data, len, c, &err) < 0)
                abort();
        if (c->nrows != n || c->kind != b->kind || c->epoch != b->epoch || c->seq != b->seq ||
            strcmp(c->identity, b->identity) != 0 || c->nseries != b->nseries ||
            !fuzz_same_col(c->row_series, b->row_series, n * sizeof(uint32_t)) ||
            !fuzz_same_col(c->ts, b->ts, n * sizeof(int64_t)))
                abort();
        if (b->kind == FLOE_KIND_EVENTS) {
                if (!fuzz_same_col(c->value, b->value, n * sizeof(double)) ||
                    !fuzz_same_col(c->value_null, b->value_null, n) ||
                    !fuzz_same_col(c->text, b->text, n * sizeof(uint32_t)))
                        abort();
        } else {
                for (int k = 0; k < FLOE_AGG_NCOLS; k++)
                        if (!fuzz_same_col(c->agg[k], b->agg[k], n * sizeof(double)) ||
                            !fuzz_same_col(c->agg_null[k], b->agg_null[k], n))
                                abort();
                if (!fuzz_same_col(c->count, b->count, n * sizeof(uint64_t)) ||
                    !fuzz_same_col(c->window_s, b->window_s, n * sizeof(uint32_t)))
                        abort();
        }
}

static void fuzz_wire_one(const uint8_t *data, size_t size, bool raw)
{
        struct floe_wire_error err;
        int r;

        if (!fuzz_dec) {
                struct floe_wire_limits lim;

                floe_wire_limits_default(&lim);
                /* small limits keep the fuzzer fast and reach the limit paths */
                lim.max_rows = 4096;
                lim.max_dict = 256;
                lim.max_series = 1024;
                lim.max_decompressed = 1 << 20;
                if (floe_wire_decoder_new(&lim, &fuzz_dec) < 0 ||
                    floe_wire_encoder_new(1, &lim, &fuzz_enc) < 0 ||
                    floe_batch_new(FLOE_KIND_EVENTS, &lim, &fuzz_b) < 0 ||
                    floe_batch_new(FLOE_KIND_EVENTS, &lim, &fuzz_c) < 0)
                        abort();
        }
        r = raw ? floe_wire_decode_raw(fuzz_dec, data, size, fuzz_b, &err)
                : floe_wire_decode_into(fuzz_dec, data, size, fuzz_b, &err);
        if (r < 0) {
                if (err.reason <= FLOE_WIRE_OK || err.reason >= FLOE_WIRE_REASON_MAX)
                        abort();
        } else {
                fuzz_check_roundtrip(fuzz_b);
        }
}
